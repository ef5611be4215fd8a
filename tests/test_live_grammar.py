"""The intro's live panel writes sentences of the book's grammar and says whether each is in the
language: ``grammar.js`` must agree with `Grammar.is_valid` sentence by sentence (sampled
sentences of the truth, and the same sentences broken in the ways a sampler breaks them), and a
Generate in headless Chromium must end with that verdict in the status line."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from conftest import no_running_asyncio_loop, serve_directory

sys.path.insert(0, str(Path(__file__).parent))
from live_page import BLOCK, CHROMIUM, CHROMIUM_ARGS, Visit, build_site  # noqa: E402

import diffusion_lab as dl  # noqa: E402
from diffusion_lab import export as dl_export  # noqa: E402

LANG = dl.worlds.grammar.book_language()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (never `playwright install`)")
    files = dl_export.export("grammar-mdlm", dl.profile("smoke"))
    try:
        site = build_site(tmp_path_factory.mktemp("grammar-site"), {"grammar-mdlm": files},
                          prompt="", length=LANG.max_len, steps=LANG.max_len,
                          attrs={"allow-empty": "true", "strategy": "ancestral"})
    except RuntimeError as e:
        pytest.skip(str(e))
    from playwright.sync_api import sync_playwright

    with serve_directory(site) as url, no_running_asyncio_loop(), sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        b.site_url = url
        try:
            yield b
        finally:
            b.close()


def _broken(sentences: list[str], seed: int = 0) -> list[str]:
    """The truth's sentences broken as samplers break them: a word swapped for another word, a
    word dropped, an [EOS] in the middle, a special token, padding added past the end."""
    rng = random.Random(seed)
    out = []
    for s in sentences:
        words = s.split()
        i = rng.randrange(len(words))
        kind = rng.randrange(5)
        if kind == 0:
            words[i] = rng.choice(LANG.words[1:])
        elif kind == 1 and len(words) > 1:
            del words[i]
        elif kind == 2:
            words.insert(i, "[EOS]")
        elif kind == 3:
            words[i] = "[UNK]"
        else:
            words += ["[EOS]"] * rng.randrange(1, 4)
        out.append(" ".join(words))
    return out


def test_the_page_checks_sentences_as_the_grammar_does(browser):
    truth = LANG.sample(150, seed=0)
    texts = truth + _broken(truth) + ["", "[EOS] [EOS]", " ".join(["the"] * 20)]
    fits = [0 < len(t.split()) <= LANG.max_len for t in texts]
    valid = iter(LANG.is_valid([t for t, ok in zip(texts, fits, strict=True) if ok]).tolist())
    # is_valid refuses an empty text and one longer than max_len; the panel calls both "not in
    # the language" (its own canvas is max_len words, so it never writes a longer one)
    want = [bool(next(valid)) if ok else False for ok in fits]
    v = Visit(browser, f"{browser.site_url}/index.html")
    try:
        spec = v.page.evaluate("() => fetch('_static/live/models/grammar-mdlm.json')"
                               ".then((r) => r.json())")
        got = v.page.evaluate("([spec, texts]) => texts.map((t) => DLLiveGrammar.verdict(spec, t)"
                              ".valid)", [spec, texts])
        assert sum(want) >= 150 and sum(want) < len(texts)  # both kinds are tested
        wrong = [(t, w) for t, w, g in zip(texts, want, got, strict=True) if w != g]
        assert not wrong, wrong[:5]
        assert v.errors == [], v.errors
    finally:
        v.close()


def test_generate_ends_with_the_grammars_verdict(browser):
    v = Visit(browser, f"{browser.site_url}/index.html")
    try:
        page = v.page
        page.click("[data-dl=generate]")
        page.wait_for_function(
            "() => document.querySelector('[data-dl=status]').textContent.includes('done')",
            timeout=60_000)
        status = page.inner_text("[data-dl=status]")
        text = page.inner_text("[data-dl=output]")
        assert BLOCK not in text
        assert ("in the language ✓" in status) != ("not in the language ✗" in status), status
        assert v.errors == [] and v.external == [], (v.errors, v.external)
    finally:
        v.close()


def test_export_of_a_grammar_model_carries_the_grammar():
    spec = dl_export.grammar.grammar_settings(LANG)["grammar"]
    assert spec["max_len"] == LANG.max_len and spec["eos"] == "[EOS]"
    assert set(spec["category"]) == set(LANG.words)
    assert len(spec["templates"]) == len(LANG.templates)
