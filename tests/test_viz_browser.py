"""The unmasking widget and the race play on a static HTML page with no kernel and no network.

Each widget's state is embedded (`ipywidgets.embed.embed_data` with `dependency_state`, which
also picks up the jslinks) into a page that loads the *vendored* ``require.js`` and
``@jupyter-widgets/html-manager`` ``embed-amd.js`` from ``book/_static/vendor/`` (fetched by
``scripts/fetch_web_assets.py`` when missing). The page is served on 127.0.0.1 and opened in
Debian's ``chromium`` driven by Playwright (never ``playwright install``); every request that
would leave 127.0.0.1 is recorded and aborted. Pressing Play must change the step label and the
visible text within 5 s, with no console error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import no_running_asyncio_loop, serve_directory
from ipywidgets.embed import dependency_state, embed_data, escape_script

sys.path.insert(0, str(Path(__file__).parent))
from test_viz import TEXT, make_trajectory  # noqa: E402

from diffusion_lab.viz import race, unmasking_widget  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / "book" / "_static" / "vendor"
FETCH_SCRIPT = REPO / "scripts" / "fetch_web_assets.py"
EMBED_JS = "html-manager/embed-amd.js"
REQUIRE_JS = "requirejs/require.js"
CHROMIUM = os.environ.get("DIFFUSION_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PLAY_TIMEOUT_MS = 5_000

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<script src="vendor/{require_js}"></script>
<script>
  // embed-amd.js finds its icon fonts from its AMD module URL, which RequireJS resolves against
  // the page (/@jupyter-widgets/...: 404). The book does the same in _static/widgets_config.js.
  var dir = new URL("vendor/html-manager", document.baseURI).href;
  window.__jupyter_widgets_assets_path__ = dir + "/";
  requirejs.config({{paths: {{
    "@jupyter-widgets/html-manager/dist": dir, "@jupyter-widgets": dir
  }}}});
</script>
<script src="vendor/{embed_js}"></script>
</head><body>
<script type="application/vnd.jupyter.widget-state+json">
{state}
</script>
<script type="application/vnd.jupyter.widget-view+json">
{view}
</script>
</body></html>
"""


def _vendor_dir() -> Path:
    if not all((VENDOR / f).is_file() for f in (EMBED_JS, REQUIRE_JS)):
        if not FETCH_SCRIPT.is_file():
            pytest.skip(f"{VENDOR} lacks {EMBED_JS} / {REQUIRE_JS} and {FETCH_SCRIPT} is missing")
        proc = subprocess.run(
            [sys.executable, str(FETCH_SCRIPT)], capture_output=True, text=True, timeout=600
        )
        if proc.returncode != 0:
            pytest.skip(f"could not vendor the web assets (npm registry?):\n{proc.stderr[-1500:]}")
    return VENDOR


def write_page(box, path: Path, title: str) -> None:
    """Embed the box (and every widget and jslink it depends on) into a standalone page."""
    data = embed_data(views=[box], state=dependency_state([box]))
    path.write_text(
        PAGE.format(
            title=title,
            require_js=REQUIRE_JS,
            embed_js=EMBED_JS,
            state=escape_script(json.dumps(data["manager_state"])),
            view=escape_script(json.dumps(data["view_specs"][0])),
        ),
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A served folder with the two pages and a link to the vendored assets."""
    root = tmp_path_factory.mktemp("viz-site")
    (root / "vendor").symlink_to(_vendor_dir(), target_is_directory=True)
    traj = make_trajectory(steps=8, prompt_len=6)
    write_page(unmasking_widget(traj, interval_ms=150, link="js"), root / "unmask.html", "unmask")
    ar = make_trajectory(steps=len(TEXT) - 6, prompt_len=6, remask=None, seconds=2.0)
    dm = make_trajectory(steps=6, prompt_len=6, remask=None, seconds=0.5)
    write_page(race(ar, dm, interval_ms=40, link="js"), root / "race.html", "race")
    with serve_directory(root) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"{CHROMIUM} not found: install Debian's chromium (`apt-get install -y chromium`) "
            "or set DIFFUSION_LAB_CHROMIUM. Do not use `playwright install`."
        )
    from playwright.sync_api import sync_playwright

    with no_running_asyncio_loop(), sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Visit:
    """A page opened with every non-local request aborted and every console error kept."""

    def __init__(self, browser, url: str):
        self.external, self.errors = [], []
        self.context = browser.new_context(service_workers="block")
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on(
            "response",
            lambda r: self.errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
        )
        self.page.route("**/*", self._route)
        self.page.goto(url)
        self.page.wait_for_selector("div.dlv", timeout=20_000)  # the widgets rendered

    def _route(self, route) -> None:
        url = route.request.url
        parsed = urlparse(url)
        if parsed.scheme in ("data", "blob") or parsed.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def press_play(self) -> None:
        self.page.locator(".widget-play button").first.click()

    def wait_until(self, js: str, arg=None) -> None:
        self.page.wait_for_function(js, arg=arg, timeout=PLAY_TIMEOUT_MS)

    def close(self) -> None:
        self.context.close()


LABEL_CHANGED = "(old) => document.querySelector('.dll').textContent !== old"
LABEL_HAS = "(s) => document.querySelector('.dll').textContent.includes(s)"


def test_unmasking_widget_plays_on_a_static_page(site, browser):
    v = Visit(browser, f"{site}/unmask.html")
    try:
        label0, text0 = v.text(".dll"), v.text("div.dlv")
        assert label0 == "step 0/8, 0 tokens revealed"
        assert text0.startswith("ROMEO:") and "\u2592" in text0
        assert v.page.locator("style").count() >= 1  # the shared CSS block arrived
        v.press_play()
        v.wait_until(LABEL_CHANGED, label0)
        assert v.text("div.dlv") != text0
        v.wait_until(LABEL_HAS, "step 8/8")  # plays to the end
        final = v.text("div.dlv")
        assert "\u2592" not in final and "through yonder window" in final
        assert final.count("\n") >= 2  # newlines in the text render as line breaks
        # confidence colours come from the one <style> block, not inline styles
        bg = v.page.eval_on_selector(
            "div.dlv span[class^=c]", "e => getComputedStyle(e).backgroundColor"
        )
        assert bg not in ("rgba(0, 0, 0, 0)", "transparent")
        assert v.errors == [], v.errors
        assert v.external == [], v.external
    finally:
        v.close()


def test_race_plays_both_runs_on_one_clock(site, browser):
    v = Visit(browser, f"{site}/race.html")
    try:
        label0 = v.text(".dll")
        assert label0.startswith("forward pass 0/")
        v.press_play()
        v.wait_until(LABEL_CHANGED, label0)
        v.wait_until(LABEL_HAS, f"diffusion: {len(TEXT) - 6} tokens (done)")  # after 6 passes
        texts = v.page.locator("div.dlv").all_inner_texts()
        assert len(texts) == 2
        assert "\u2592" not in texts[1] and "\u2592" in texts[0]  # AR still writing
        assert v.errors == [], v.errors
        assert v.external == [], v.external
    finally:
        v.close()
