"""The live panel in headless Firefox (Debian's firefox-esr, driven over WebDriver BiDi).

The core of ``test_live_browser.py`` in the other engine: the same minimal page
(``live_page.build_site``) served on 127.0.0.1, a prompt typed, a strategy chosen, Generate
pressed; the output must unmask frame by frame to a text with no mask, with no console error and
no request leaving the loopback address; and the page opened from disk (``file://``) must work
too.  Chapter 8's panel (``data-kind="qa"``, as in ``test_live_qa.py``): a true claim that the
chapter's settings revise in Python, "force" ticked, Generate: no mask left, a frame shows the
forced "no" revised.  The page is driven through JavaScript (``tests/firefox_bidi.py``): set a
field's value and dispatch its ``input`` event, ``click()`` a button (or the force checkbox), poll
the output or record its frames with a MutationObserver.  Skipped without firefox-esr.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest
from conftest import serve_directory

sys.path.insert(0, str(Path(__file__).parent))
from firefox_bidi import Firefox  # noqa: E402
from live_page import BLOCK, build_site, chapter_questions, check_unmasking, revised_by_chapter  # noqa: E402

import diffusion_lab as dl  # noqa: E402
from diffusion_lab import export as dl_export  # noqa: E402

TRAIN_STEPS = 300  # the Chromium tests' model (cached by the zoo): shared, not trained twice
OUTPUT = "document.querySelector('[data-dl=output]')"
STATUS = "document.querySelector('[data-dl=status]').textContent"


@pytest.fixture(scope="module")
def firefox():
    ff = Firefox()  # skips first: no model is exported for a machine without firefox-esr
    try:
        yield ff
    finally:
        ff.close()


@pytest.fixture(scope="module")
def site(firefox, tmp_path_factory):
    files = dl_export.export("mdlm", dl.profile("smoke"), steps=TRAIN_STEPS)
    try:
        root = build_site(tmp_path_factory.mktemp("live-site-ff"), {"mdlm": files}, length=48,
                          steps=8)
    except RuntimeError as e:
        pytest.skip(str(e))
    with serve_directory(root) as url:
        yield SimpleNamespace(root=root, url=url)


def _visit(ff: Firefox, url: str) -> None:
    """Open ``url`` with fresh records; wait until the panel has loaded its model."""
    ff.errors.clear()
    ff.requests.clear()
    ff.open(url)
    ff.eval("document.querySelector('.dl-live').scrollIntoView()")  # it loads near the screen
    ff.wait_for("document.querySelector('.dl-live[data-ready=true]') !== null", timeout=60)


def _set(ff: Firefox, field: str, value: str) -> None:
    """Type into a field (or choose an option) as a reader would: its value, then the events."""
    now = ff.eval(f"""(() => {{ const el = document.querySelector('[data-dl={field}]');
        el.value = {json.dumps(value)}; el.dispatchEvent(new Event('input', {{bubbles: true}}));
        el.dispatchEvent(new Event('change', {{bubbles: true}})); return el.value; }})()""")
    assert now == value, (field, value, now)  # e.g. no such option


def _external(ff: Firefox) -> list[str]:
    """Requests that left the loopback address (data:, blob:, file: stay in the browser)."""
    return [u for u in ff.requests if urlparse(u).scheme not in ("data", "blob", "file")
            and urlparse(u).hostname != "127.0.0.1"]


def test_generate_unmasks_the_prompt_step_by_step(firefox, site):
    ff = firefox
    _visit(ff, f"{site.url}/index.html")
    _set(ff, "prompt", "JULIET:")
    _set(ff, "strategy", "low_confidence")
    _set(ff, "steps", "8")
    ff.eval("document.querySelector('[data-dl=generate]').click()")
    seen, end = [], time.monotonic() + 60
    while time.monotonic() < end:  # poll the output while it plays (120 ms per frame)
        text, status = ff.eval(f"[{OUTPUT}.innerText, {STATUS}]")
        if not seen or text != seen[-1]:
            seen.append(text)
        if "done" in status:
            break
        time.sleep(0.025)
    final = ff.eval(f"{OUTPUT}.innerText")
    if final != seen[-1]:
        seen.append(final)
    check_unmasking(seen, final)
    assert ff.eval(f"{OUTPUT}.dataset.step") == "8"
    assert ff.eval(f"{OUTPUT}.querySelectorAll('span.n').length") > 0  # this step outlined
    bg = ff.eval(f"getComputedStyle({OUTPUT}.querySelector('span[class^=c]')).backgroundColor")
    assert bg not in ("rgba(0, 0, 0, 0)", "transparent")  # confidence colours
    assert ff.errors == [], ff.errors
    assert _external(ff) == [], _external(ff)
    assert any(u.endswith(".wasm") for u in ff.requests)  # the requests were recorded


def test_bad_input_shows_a_message(firefox, site):
    ff = firefox
    _visit(ff, f"{site.url}/index.html")
    _set(ff, "prompt", "x" * 49)
    ff.eval("document.querySelector('[data-dl=generate]').click()")
    ff.wait_for("document.querySelector('.dl-live-status.dl-live-error') !== null", timeout=5)
    assert "at most 48" in ff.eval(STATUS)
    assert ff.errors == [] and _external(ff) == []


def test_runs_from_disk(firefox, site):
    """file://: no fetch, no module import from disk; the *.js copies carry the bytes."""
    ff = firefox
    _visit(ff, (site.root / "index.html").as_uri())
    ff.eval("document.querySelector('[data-dl=generate]').click()")
    ff.wait_for(f"{STATUS}.includes('done')", timeout=30)
    final = ff.eval(f"{OUTPUT}.innerText")
    assert BLOCK not in final and final.startswith("ROMEO:"), final
    assert ff.errors == [], ff.errors
    assert _external(ff) == [], _external(ff)


@pytest.fixture(scope="module")
def qa_site(firefox, tmp_path_factory):
    """Chapter 8's panel (data-kind="qa") on the ``cpu`` profile's QA model, as test_live_qa."""
    prof = dl.profile("cpu")
    model, tok, _ = dl.zoo.pretrained_qa("diffusion", prof, progress=False)
    files = dl_export.export("qa", prof)
    try:
        root = build_site(tmp_path_factory.mktemp("live-qa-ff"), {"qa": files}, prompt="",
                          length=19, steps=14, attrs={"kind": "qa"})
    except RuntimeError as e:
        pytest.skip(str(e))
    with serve_directory(root) as url:
        yield SimpleNamespace(root=root, url=url, model=model, tok=tok)


def test_force_toggle_shows_the_forced_token_revised(firefox, qa_site):
    ff, model, tok = firefox, qa_site.model, qa_site.tok
    true_claims = [q for q in chapter_questions() if dl.qa.family_of(q).name == "claims"
                   and dl.qa.Claims.is_true(q)][:6]
    chosen = revised_by_chapter(model, tok, true_claims, seeds=[0])  # greedy: one seed
    assert chosen, "no true claim whose forced 'no' the chapter's rule revises in Python"
    _visit(ff, f"{qa_site.url}/index.html")
    _set(ff, "prompt", chosen[0])
    ff.eval("""(() => { const el = document.querySelector('[data-dl=force]');
        if (!el.checked) el.click(); return el.checked; })()""")  # a click, as a reader ticks it
    assert ff.eval("document.querySelector('[data-dl=force]').checked") is True
    assert ff.eval("document.querySelector('[data-dl=strategy]').value") == "reread_remask"
    # every frame's data-step / data-revised, recorded in the page as the panel draws it
    ff.eval(f"""(() => {{ window.dlFrames = [];
        new MutationObserver(() => window.dlFrames.push([{OUTPUT}.dataset.step,
          {OUTPUT}.dataset.revised, {OUTPUT}.innerText])).observe({OUTPUT},
          {{attributes: true, attributeFilter: ['data-revised']}}); return true; }})()""")
    ff.eval("document.querySelector('[data-dl=generate]').click()")
    ff.wait_for(f"{STATUS}.includes('done') || "
                "document.querySelector('.dl-live-status.dl-live-error') !== null", timeout=60)
    final, status = ff.eval(f"[{OUTPUT}.innerText, {STATUS}]")
    frames = ff.eval("window.dlFrames")
    assert BLOCK not in final and final.startswith(chosen[0]), (final, status)
    first = [t for s, _, t in frames if s == "0"]
    assert first and "no" in first[0], frames  # the start frame shows the forced "no"
    assert max(int(r or 0) for _, r, _ in frames) >= 1, frames
    assert ff.eval(f"{OUTPUT}.querySelectorAll('span.r').length") == 1
    assert 'answer: "yes' in status and "was revised" in status, status
    assert ff.errors == [], ff.errors
    assert _external(ff) == [], _external(ff)
