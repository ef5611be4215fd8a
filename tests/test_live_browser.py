"""The live panel in headless Chromium: type, Generate, watch it unmask; offline, from disk too.

A minimal page (``live_page.build_site``: the panel's JS/CSS, the vendored onnxruntime-web and
the exported model, no book build) is served on 127.0.0.1; every request that would leave it is
recorded and aborted, every console error kept.  The panel must unmask the reader's prompt frame
by frame to a text with no mask, show a visible message for bad input, run from ``file://``, and
stay hidden without WebAssembly (the page's recorded animation is then the lesson).

``DIFFUSION_LAB_UPDATE_SCREENSHOT=1`` also writes the README's screenshot
(``book/_static/live/live_panel.png``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import no_running_asyncio_loop, serve_directory

sys.path.insert(0, str(Path(__file__).parent))
from live_page import BLOCK, CHROMIUM, CHROMIUM_ARGS, REPO, Visit, build_site, check_unmasking  # noqa: E402

import diffusion_lab as dl  # noqa: E402
from diffusion_lab import export as dl_export  # noqa: E402

TRAIN_STEPS = 300  # the parity test's model (cached by the zoo): shared, not trained twice
SCREENSHOT = REPO / "book" / "_static" / "live" / "live_panel.png"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    prof = dl.profile("smoke")
    files = dl_export.export("mdlm", prof, steps=TRAIN_STEPS)
    try:
        return build_site(tmp_path_factory.mktemp("live-site"), {"mdlm": files}, length=48,
                          steps=8)
    except RuntimeError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def browser(site):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (never `playwright install`)")
    from playwright.sync_api import sync_playwright

    with serve_directory(site) as url, no_running_asyncio_loop(), sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        b.site_url = url
        try:
            yield b
        finally:
            b.close()


def _output(v) -> str:
    return v.page.inner_text("[data-dl=output]")


def test_generate_unmasks_the_prompt_step_by_step(browser, tmp_path):
    v = Visit(browser, f"{browser.site_url}/index.html")
    try:
        page = v.page
        page.fill("[data-dl=prompt]", "JULIET:")
        page.select_option("[data-dl=strategy]", "low_confidence")
        page.fill("[data-dl=steps]", "8")
        page.click("[data-dl=generate]")
        seen, shot = [], tmp_path / "live_panel.png"
        for _ in range(400):  # poll the output while it plays (PACE_MS = 120 ms per frame)
            text = _output(v)
            if not seen or text != seen[-1]:
                seen.append(text)
                if not shot.exists() and 0.3 < text.count(BLOCK) / 48 < 0.6:  # mid-run picture
                    page.locator(".dl-live").screenshot(path=str(shot))
            if "done" in page.inner_text("[data-dl=status]"):
                break
            page.wait_for_timeout(25)
        final = _output(v)
        if final != seen[-1]:
            seen.append(final)
        check_unmasking(seen, final)
        assert page.get_attribute("[data-dl=output]", "data-step") == "8"
        assert page.locator("[data-dl=output] span.n").count() > 0  # this step's slots outlined
        bg = page.eval_on_selector("[data-dl=output] span[class^=c]",
                                   "e => getComputedStyle(e).backgroundColor")
        assert bg not in ("rgba(0, 0, 0, 0)", "transparent")  # confidence colours
        assert shot.stat().st_size > 5_000  # a picture of the panel mid-run
        if os.environ.get("DIFFUSION_LAB_UPDATE_SCREENSHOT"):
            shutil.copyfile(shot, SCREENSHOT)
        assert v.errors == [], v.errors
        assert v.external == [], v.external
    finally:
        v.close()


def test_step_button_advances_one_frame(browser):
    v = Visit(browser, f"{browser.site_url}/index.html")
    try:
        v.page.select_option("[data-dl=strategy]", "confidence_weighted")
        v.page.click("[data-dl=step]")  # start state: all masked
        v.page.wait_for_function("document.querySelector('[data-dl=output]').dataset.step === '0'")
        assert _output(v).count(BLOCK) == 48 - len("ROMEO:")
        v.page.click("[data-dl=step]")
        v.page.wait_for_function("document.querySelector('[data-dl=output]').dataset.step === '1'")
        assert _output(v).count(BLOCK) < 48 - len("ROMEO:")
        assert v.errors == [] and v.external == []
    finally:
        v.close()


@pytest.mark.parametrize("field, value, message", [
    ("prompt", "", "Type a prompt"),
    ("prompt", "x" * 49, "at most 48"),
    ("prompt", "ROMEO: \u2603\u00e9\u4e2d", "Not in the model's vocabulary"),
    ("steps", "0", "Steps must be"),
    ("temperature", "-1", "Temperature must be"),
])
def test_bad_input_shows_a_message(browser, field, value, message):
    v = Visit(browser, f"{browser.site_url}/index.html")
    try:
        v.page.fill(f"[data-dl={field}]", value)
        v.page.click("[data-dl=generate]")
        status = v.page.locator(".dl-live-status.dl-live-error")
        status.wait_for(timeout=5_000)
        assert message in status.inner_text()
        assert v.page.get_attribute("[data-dl=status]", "role") == "alert"
        assert v.errors == [] and v.external == []
    finally:
        v.close()


def test_runs_from_disk(browser, site):
    """file://: no fetch, no module import from disk; the *.js copies carry the bytes."""
    v = Visit(browser, (site / "index.html").as_uri())
    try:
        v.page.click("[data-dl=generate]")
        v.page.wait_for_function(
            "document.querySelector('[data-dl=status]').textContent.includes('done')",
            timeout=30_000)
        assert BLOCK not in _output(v) and _output(v).startswith("ROMEO:")
        assert v.errors == [] and v.external == []
    finally:
        v.close()


def test_without_webassembly_the_panel_stays_hidden(browser):
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.add_init_script("delete window.WebAssembly")
        page.goto(f"{browser.site_url}/index.html")
        page.wait_for_load_state("load")
        assert page.locator(".dl-live").is_hidden()
        assert "recorded animation" in page.inner_text("body")
        assert errors == []
    finally:
        ctx.close()
