"""Chapter 8's live panel in headless Chromium: byte-level BPE, the forced answer token, parity.

The QA diffusion model of the ``cpu`` profile (``dl.zoo.pretrained_qa("diffusion")``, cached by
the zoo) is exported with ``dl.export.export("qa")`` and served on 127.0.0.1 in a minimal page
(``live_page.build_site``, ``data-kind="qa"``).  Every request leaving it is aborted and recorded,
every console error kept.

* ``bpe.js`` encodes every question of the chapter and edge cases exactly as the ``tokenizers``
  library, and decodes back to the text;
* greedy parity: the page's sampler, fed by the exported graph under Python ``onnxruntime``, and
  ``dl.qa.ask(..., forced=..., revise_forced=True)`` on the same graph reveal every slot at the
  same step and end with the same text, for several claims, with the committing rules and with
  ``confidence_weighted`` at a remask scale that makes its remask draw certain (``1e30``: every
  decoded token with confidence < 1 is drawn, so the random numbers, which differ between torch
  and the page, decide nothing; the start confidence of the forced token and the float32
  confidences do);
* the chapter's own settings (remask_scale 0.5, random draws that torch and the page make with
  different generators): the share of 16 runs that revise the forced verdict agrees per claim;
* the panel, with the chapter's rule (``reread_remask``): a true claim, "force" ticked, Generate:
  no mask at the end, a frame shows the forced "no" revised into "yes", on claims the chapter's
  settings revise in Python (computed here); the false claim's forced "yes" waits on a QA model
  that checks false claims (issue 23);
* bad input (empty, too long, a question of no family, force on a sum, steps 0) gives a message.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import no_running_asyncio_loop, serve_directory

sys.path.insert(0, str(Path(__file__).parent))
from live_page import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    REVISION_RATE_JS,
    RUN_QA,
    OnnxMaskedLM,
    Visit,
    build_site,
    chapter_questions,
    near_tie,
    revised_by_chapter,
    summarise,
)

import diffusion_lab as dl  # noqa: E402
from diffusion_lab import export as dl_export  # noqa: E402
from diffusion_lab.export import bpe as export_bpe  # noqa: E402

BLOCK = "\u2592"
EDGE_CASES = ["", " ", "  two leading", "trailing  ", "a\n\nb", "tab\there\t", "x\r\ny",
              "don't we'll I'm they've she'd it's you're", "café naïve", "中文字", "emoji 🙂!",
              "1234567890", "3.14 + 2.71", "$$$ ~~~", "a  b   c    d", "\n", "is 3+4=7?no",
              "is 3+4=7? no", "ÿþ\u00a0nbsp", "WHAT IS 3+4?", "count 10 to 12? count", "?!?"]


@pytest.fixture(scope="module")
def qa_model():
    prof = dl.profile("cpu")  # the chapter's model: the smoke one (20 steps) answers nothing
    model, tok, _ = dl.zoo.pretrained_qa("diffusion", prof, progress=False)
    files = dl_export.export("qa", prof)
    return model, tok, files


@pytest.fixture(scope="module")
def page(qa_model, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (never `playwright install`)")
    from playwright.sync_api import sync_playwright

    model, tok, files = qa_model
    try:
        root = build_site(tmp_path_factory.mktemp("live-qa"), {"qa": files}, prompt="",
                          length=19, steps=14, attrs={"kind": "qa"})
    except RuntimeError as e:
        pytest.skip(str(e))
    onnx = OnnxMaskedLM(20, files["onnx"])
    with serve_directory(root) as url, no_running_asyncio_loop(), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        v = Visit(browser, f"{url}/index.html")

        def py_forward(ids: list[int], b: int, length: int) -> str:
            x = torch.tensor(ids, dtype=torch.long).view(b, length)
            return base64.b64encode(onnx(input_ids=x).logits.numpy().astype(np.float32)
                                    .tobytes()).decode()

        v.page.expose_function("pyForward", py_forward)
        v.browser, v.url, v.root = browser, url, root
        try:
            yield v, onnx
        finally:
            assert v.errors == [], v.errors
            assert v.external == [], v.external
            v.close()
            browser.close()


def test_python_reference_bpe_matches_tokenizers(qa_model):
    _, tok, _ = qa_model
    spec = export_bpe.byte_level_spec(tok)
    for text in chapter_questions() + EDGE_CASES:
        assert export_bpe.encode(spec, tok.get_vocab(), text) == tok(
            text, add_special_tokens=False)["input_ids"], text


def test_bpe_js_encodes_and_decodes_like_tokenizers(page, qa_model):
    v, _ = page
    _, tok, _ = qa_model
    texts = chapter_questions() + [q + f for q in chapter_questions()[:40] for f in ("no", "yes")]
    texts += EDGE_CASES
    got = v.page.evaluate("""async (texts) => {
        const {spec} = await DLLive.loadModel('qa');
        return texts.map((t) => { const e = DLLiveSampler.encode(spec, t);
          return [e.ids, e.unknown, DLLiveSampler.decode(spec, e.ids)]; });
      }""", texts)
    for text, (ids, unknown, back) in zip(texts, got, strict=True):
        assert ids == tok(text, add_special_tokens=False)["input_ids"], text
        assert unknown == [] and back == text == tok.decode(ids), (text, back)
    refused = v.page.evaluate("""async () => { const {spec} = await DLLive.loadModel('qa');
        return DLLiveSampler.encode(spec, 'is 1+1=[MASK]?').unknown; }""")
    assert refused == ["[MASK]"]  # Python would make it a slot to fill: the page refuses it


TIE = 2e-7  # a score gap of at most 3 float32 steps below 1 (5.96e-8 each) is a tie
PARITY_CLAIMS = ["is 4+4=8?", "is 9+0=9?", "is 8+5=13?", "is 2+6=8?", "is 6+6=12?", "is 5+7=12?",
                 "is 0+1=0?", "is 7+8=12?", "is 12+9=21?", "is 3+3=5?"]


@pytest.mark.parametrize("strategy, options", [
    ("low_confidence", {}), ("threshold", {}), ("confidence_weighted", {"remask_scale": 1e30}),
    ("reread_remask", {})])
def test_forced_greedy_reveal_order_matches_qa_ask(page, qa_model, strategy, options):
    v, onnx = page
    _, tok, _ = qa_model
    revised = compared = 0
    for q in PARITY_CLAIMS:
        forced = "no" if dl.qa.Claims.is_true(q) else "yes"
        js = v.page.evaluate(RUN_QA, ["qa", dict(question=q, length=19, steps=14,
                                                 strategy=strategy, temperature=0, seed=0,
                                                 options=options)])[0]
        answers, trajs = dl.qa.ask(onnx, tok, [q], length=19, forced=forced, revise_forced=True,
                                   strategy=strategy, steps=14, top_k=1, seed=0, **options)
        js_text = tok.decode(js["ids"], skip_special_tokens=False).split("[EOS]")[0]
        assert js_text[len(q):] == answers[0], (q, js_text, answers)  # the same answer, always
        if near_tie(trajs[0], onnx) < TIE:
            continue  # a decision between float32-equal scores: either order is right
        compared += 1
        py = summarise(trajs[0])[0]
        assert js["order"] == py["order"], (q, js["order"], py["order"])
        assert js["ids"] == py["ids"] and js["counts"] == py["counts"], q
        assert js["back"] == py["back"], q
        revised += not answers[0].startswith(forced)
    # measured: 5, 10 and 6 of 10 runs free of ties (low_confidence, threshold,
    # confidence_weighted); every answer identical, every tie-free run identical step by step
    assert compared >= len(PARITY_CLAIMS) // 2, compared
    if strategy in ("confidence_weighted", "reread_remask"):  # the rules that may take it back
        assert revised >= 2, revised
    else:  # the committing rules cannot, by construction
        assert revised == 0


def test_chapter_settings_revise_as_often_as_in_python(page, qa_model):
    """The chapter's own settings (remask_scale 0.5: random remask draws, torch's generator in
    Python, the page's in JS): the share of runs that take the forced verdict back agrees."""
    v, _ = page
    model, tok, _ = qa_model
    n = 16
    claims = list(dict.fromkeys(q for q in chapter_questions()
                                if dl.qa.family_of(q).name == "claims"))
    true = [q for q in claims if dl.qa.Claims.is_true(q)][:4]
    for q in true + [q for q in claims if not dl.qa.Claims.is_true(q)][:4]:
        forced = "no" if dl.qa.Claims.is_true(q) else "yes"
        py = sum(not dl.qa.ask(model, tok, [q], length=19, forced=forced, revise_forced=True,
                               strategy="confidence_weighted", steps=14, top_k=1,
                               seed=s)[0][0].startswith(forced) for s in range(n)) / n
        js = v.page.evaluate(REVISION_RATE_JS, [q, n])
        # measured: 1.00 in the page and 0.94 in Python on the true claims, 0 and 0 on the false
        assert abs(js - py) <= 0.3, (q, js, py)


# A false claim's forced "yes" driven to "no" (ids "forced yes") joins when the QA model checks
# false claims: measured at chance so far (issue 23), so no false claim is revised to test here.
@pytest.mark.parametrize("true", [True], ids=["forced no"])
def test_force_toggle_shows_the_forced_token_revised(page, qa_model, true):
    """A true claim's forced "no" ends "yes" (a false claim's forced "yes" would end "no")."""
    v, _ = page
    model, tok, _ = qa_model
    claims = [q for q in chapter_questions() if dl.qa.family_of(q).name == "claims"
              and dl.qa.Claims.is_true(q) == true][:6]
    chosen = revised_by_chapter(model, tok, claims, seeds=[0])  # greedy: one seed says all
    assert chosen, f"no {'true' if true else 'false'} claim revised by the chapter's rule"
    forced, right = ("no", "yes") if true else ("yes", "no")
    w = Visit(v.browser, f"{v.url}/index.html")
    try:
        page_ = w.page
        page_.fill("[data-dl=prompt]", chosen[0])
        page_.check("[data-dl=force]")
        assert page_.input_value("[data-dl=strategy]") == "reread_remask"
        page_.click("[data-dl=generate]")
        frames_revised, first = [], None
        for _ in range(600):
            out = page_.locator("[data-dl=output]")
            if first is None and out.get_attribute("data-step") == "0":
                first = out.inner_text()
            frames_revised.append(int(out.get_attribute("data-revised") or 0))
            if "done" in page_.inner_text("[data-dl=status]"):
                break
            page_.wait_for_timeout(20)
        final, status = page_.inner_text("[data-dl=output]"), page_.inner_text("[data-dl=status]")
        frames_revised.append(int(page_.get_attribute("[data-dl=output]", "data-revised")))
        assert BLOCK not in final and final.startswith(chosen[0]), final
        assert first is None or forced in first  # the start frame shows the forced token
        assert max(frames_revised) >= 1 and page_.locator("[data-dl=output] span.r").count() == 1
        assert f'answer: "{right}' in status and "was revised" in status, status
        assert w.errors == [] and w.external == [], (w.errors, w.external)
    finally:
        w.close()


@pytest.mark.parametrize("question, force, steps, message", [
    ("", False, "14", "Type a question"),
    ("is 1+1=2?" * 8, False, "14", "keep it under"),
    ("who are you?", False, "14", "three forms of question"),
    ("what is 3+4?", True, "14", "applies to yes/no questions"),
    ("is 1+1=2?", True, "0", "Steps must be"),
])
def test_bad_questions_show_a_message(page, question, force, steps, message):
    v, _ = page
    w = Visit(v.browser, f"{v.url}/index.html")
    try:
        w.page.fill("[data-dl=prompt]", question)
        w.page.fill("[data-dl=steps]", steps)
        if force:
            w.page.check("[data-dl=force]")
        w.page.click("[data-dl=generate]")
        status = w.page.locator(".dl-live-status.dl-live-error")
        status.wait_for(timeout=5_000)
        assert message in status.inner_text()
        assert w.errors == [] and w.external == []
    finally:
        w.close()


def test_example_dropdown_fills_the_question(page, qa_model):
    v, _ = page
    w = Visit(v.browser, f"{v.url}/index.html")
    try:
        options = w.page.eval_on_selector_all("[data-dl=examples] option",
                                              "os => os.map(o => o.value)")
        assert len(options) > 4 and all(dl.qa.family_of(q) for q in options[1:])
        w.page.select_option("[data-dl=examples]", options[3])
        assert w.page.input_value("[data-dl=prompt]") == options[3]
    finally:
        w.close()


def test_step_shows_the_forced_token_then_runs_from_disk(page):
    """Step: the start frame holds the forced "no" (decoded, outlined as given); file:// runs."""
    v, _ = page
    w = Visit(v.browser, f"{v.url}/index.html")
    try:
        w.page.fill("[data-dl=prompt]", "is 4+4=8?")
        w.page.check("[data-dl=force]")
        w.page.click("[data-dl=step]")
        w.page.wait_for_function("document.querySelector('[data-dl=output]').dataset.step === '0'")
        assert w.page.inner_text("[data-dl=output] span.g") == "no"
        assert w.page.inner_text("[data-dl=output]").count(BLOCK) == 19 - 8  # is Ġ4 + 4 = 8 ? no
        w.page.click("[data-dl=step]")
        w.page.wait_for_function("document.querySelector('[data-dl=output]').dataset.step === '1'")
        assert w.errors == [] and w.external == []
    finally:
        w.close()
    w = Visit(v.browser, (v.root / "index.html").as_uri())
    try:
        w.page.fill("[data-dl=prompt]", "what is 3+4?")
        w.page.click("[data-dl=generate]")
        w.page.wait_for_function(
            "document.querySelector('[data-dl=status]').textContent.includes('done')",
            timeout=30_000)
        assert 'answer: "7."' in w.page.inner_text("[data-dl=status]")
        assert w.errors == [] and w.external == []
    finally:
        w.close()


def test_chapter_8_holds_the_panel():
    """The div sits after the chapter's revision animation, hidden until panel.js shows it."""
    import nbformat
    from live_page import REPO

    nb = nbformat.read(REPO / "book" / "chapters" / "08_answering" / "answering.ipynb", 4)
    where = [i for i, c in enumerate(nb.cells) if 'data-model="qa"' in c.source]
    assert len(where) == 1 and nb.cells[where[0]].cell_type == "markdown"
    source = nb.cells[where[0]].source
    assert '<div class="dl-live" data-model="qa" data-kind="qa" hidden></div>' in source
    assert "revisable=[n_q]" in nb.cells[where[0] - 1].source  # right after the chapter's demo
    assert "force" in source and "Generate" in source
