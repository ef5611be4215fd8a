"""The built website, opened in a real browser with no network.

Needs the site built first (`jupyter-book build .`, which writes `_build/html/`) and Debian's
`chromium` (`apt-get install -y chromium`; never `playwright install`). The PyPI `playwright`
package drives `/usr/bin/chromium` (override with DIFFUSION_LAB_CHROMIUM). `_build/html` is
served on 127.0.0.1 and every request that would leave it is recorded and aborted.

For every page in `_toc.yml`: it loads (HTTP 200) with its main content, shows no error output,
renders its math with the vendored MathJax, raises no JavaScript error, and fetches nothing from
another host. Notebook pages show a figure. On pages with ipywidgets, the widgets render, and
pressing Play advances the animation within 5 s (the FontAwesome `autoReplaceSvg: "nest"`
setting and the vendored html-manager are what make this work on a static page).

    .venv/bin/jupyter-book build . && .venv/bin/pytest -m site tests/test_site.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import no_running_asyncio_loop, serve_directory

pytestmark = pytest.mark.site

REPO = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("DIFFUSION_LAB_SITE", REPO / "_build" / "html"))
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
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOCAL_SCHEMES = {"data", "blob", "about"}
PLAY_TIMEOUT_MS = 5_000
MAX_PLAYS_PER_PAGE = 20
NOT_BUILT = (
    f"The built site is missing ({HTML / 'index.html'} does not exist). "
    "Run `jupyter-book build .` at the repository root first, then rerun these tests."
)


# ----------------------------------------------------------------------------- the pages


def _toc_pages() -> list[tuple[str, str]]:
    """(docname, source suffix) for every page of _toc.yml, root first."""
    from sphinx_external_toc.parsing import parse_toc_yaml

    site_map = parse_toc_yaml(REPO / "_toc.yml")
    pages, seen = [], set()

    def add(docname: str) -> None:
        if docname in seen:
            return
        seen.add(docname)
        suffix = next(
            (s for s in (".ipynb", ".md", ".rst") if (REPO / f"{docname}{s}").is_file()), ""
        )
        pages.append((docname, suffix))

    add(site_map.root.docname)
    for docname in site_map:
        add(docname)
    return pages


PAGES = _toc_pages()
PAGE_IDS = [d for d, _ in PAGES]


# ----------------------------------------------------------------------------- server


@pytest.fixture(scope="session")
def server_url():
    with serve_directory(HTML) as url:
        yield url


# ----------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def browser_context():
    if not (HTML / "index.html").is_file():
        yield None  # each test fails with NOT_BUILT (a failure, not a skip)
        return
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (`apt-get install -y chromium`) "
            "or set DIFFUSION_LAB_CHROMIUM. Do not use `playwright install`."
        )
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="dl-site-chromium-")
    with no_running_asyncio_loop(), sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            service_workers="block",
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def _is_local(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme in LOCAL_SCHEMES:
        return True
    return parsed.scheme in {"http", "https", "ws", "wss"} and parsed.hostname in LOCAL_HOSTS


@dataclass
class Visit:
    """What one page did in the browser."""

    docname: str
    suffix: str
    status: int | None = None
    requests: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    local_failures: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    plays: list[dict] = field(default_factory=list)
    console_errors_after_play: list[str] = field(default_factory=list)


# Facts gathered from the DOM once MathJax and the widgets had their chance to run.
_FACTS_JS = """
() => {
  const q = (s) => Array.from(document.querySelectorAll(s));
  const main = document.querySelector(
    "main #main-content, main .bd-article, article.bd-article, main");
  const stderr = q(".output.stderr, .cell_output .stderr").map(e => e.innerText);
  const errorCells = q(".output.traceback, .output.error, .cell_output .traceback, " +
                       "div.cell.error");
  const mathjaxScripts = q("script[src*='mathjax'], script[src*='MathJax']").map(s => s.src);
  return {
    title: document.title,
    mainText: main ? main.innerText.trim().length : 0,
    hasMain: !!main,
    images: q("main img, main svg.figure, main figure, main .cell_output img").length,
    stderr: stderr,
    errorCells: errorCells.map(e => (e.innerText || "").slice(0, 300)),
    mathNodes: q("main .math, main span.math, main div.math").length,
    mjx: q("mjx-container").length,
    mjxErrors: q("mjx-merror, [data-mjx-error]")
      .map(e => e.getAttribute("data-mjx-error") || e.textContent),
    mathjaxScripts: mathjaxScripts,
    mathjaxVersion: (window.MathJax && window.MathJax.version) || null,
    widgetState: q("script[type='application/vnd.jupyter.widget-state+json']").length,
    widgetViews: q("script[type='application/vnd.jupyter.widget-view+json']").length,
    renderedWidgets: q(".jupyter-widgets, .widget-box, .widget-inline-hbox").length,
    renderedViews: q(".widget-subarea").filter(e => e.children.length > 0).length,
    playButtons: q(".widget-play").length,
  };
}
"""

# What Play is meant to change: slider readouts, the visible text of widget areas.
_WIDGET_SNAPSHOT_JS = """
(play) => {
  const area = play.closest(".cell_output, .output, .jupyter-widgets-view, .widget-subarea")
               || document.body;
  const all = (s) => Array.from(area.querySelectorAll(s));
  const readouts = all(".widget-readout")
    .map(e => e.tagName === "INPUT" ? e.value : e.innerText);
  const sliders = all(".noUi-handle[aria-valuenow], input[type=range]")
    .map(e => e.getAttribute("aria-valuenow") || e.value);
  return JSON.stringify({readouts, sliders, text: area.innerText});
}
"""


def _wait_for_mathjax(page) -> None:
    page.evaluate(
        """async () => {
          if (!document.querySelector("script[src*='mathjax'], script[src*='MathJax']")) return;
          const t0 = Date.now();
          while (!(window.MathJax && window.MathJax.startup && window.MathJax.startup.promise)) {
            if (Date.now() - t0 > 10000) return;
            await new Promise(r => setTimeout(r, 50));
          }
          await window.MathJax.startup.promise;
        }"""
    )


def _press_play(page, visit: Visit) -> None:
    """Click every Play button; record whether each animation advanced within 5 s."""
    n_console = len(visit.console_errors)
    n_page = len(visit.page_errors)
    plays = page.locator(".widget-play")
    for i in range(min(plays.count(), MAX_PLAYS_PER_PAGE)):
        play = plays.nth(i)
        play.scroll_into_view_if_needed()
        button = play.locator("button:has(.fa-play)").first
        if button.count() == 0:  # icon markup changed: Play is the first button
            button = play.locator("button").first
        before = play.evaluate(_WIDGET_SNAPSHOT_JS)
        button.click()
        changed = True
        try:
            page.wait_for_function(
                f"([el, before]) => ({_WIDGET_SNAPSHOT_JS})(el) !== before",
                arg=[play.element_handle(), before],
                timeout=PLAY_TIMEOUT_MS,
            )
        except Exception:
            changed = False
        after = play.evaluate(_WIDGET_SNAPSHOT_JS)
        visit.plays.append({"index": i, "changed": changed, "before": before, "after": after})
    visit.console_errors_after_play = visit.console_errors[n_console:] + visit.page_errors[n_page:]


def _load(context, base_url: str, docname: str, suffix: str) -> Visit:
    """Open one page, record everything it does, press Play if it has one."""
    visit = Visit(docname=docname, suffix=suffix)
    page = context.new_page()

    def on_request(request):
        visit.requests.append(request.url)
        if not _is_local(request.url):
            visit.external.append(request.url)

    def on_route(route):
        if _is_local(route.request.url):
            route.continue_()
        else:  # never let the test touch the network, whatever the machine allows
            route.abort("blockedbyclient")

    def on_response(response):
        if response.status >= 400 and _is_local(response.url):
            if not response.url.endswith("/favicon.ico"):
                visit.local_failures.append(f"{response.status} {response.url}")

    def on_request_failed(request):
        if _is_local(request.url):
            visit.local_failures.append(f"failed {request.url}: {request.failure}")

    page.on("request", on_request)
    page.on("response", on_response)
    page.on("requestfailed", on_request_failed)
    page.on(
        "console",
        lambda msg: (
            visit.console_errors.append(f"{msg.text} @ {msg.location.get('url', '')}")
            if msg.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda exc: visit.page_errors.append(str(exc)))
    page.route("**/*", on_route)
    try:
        response = page.goto(f"{base_url}/{docname}.html", wait_until="load", timeout=30_000)
        visit.status = response.status if response is not None else None
        _wait_for_mathjax(page)
        has_views = page.locator("script[type='application/vnd.jupyter.widget-view+json']").count()
        if has_views:
            try:  # the html-manager renders the views after the load event
                page.wait_for_selector(".jupyter-widgets", timeout=10_000)
            except Exception:
                pass
            if page.locator(".widget-play").count():
                _press_play(page, visit)
        page.wait_for_timeout(300)  # late console errors
        visit.facts = page.evaluate(_FACTS_JS)
    finally:
        page.close()
    return visit


@pytest.fixture(scope="session")
def _visits() -> dict[str, Visit]:
    return {}


@pytest.fixture
def visit(browser_context, server_url, _visits):
    """visit(docname, suffix) -> Visit; each page is loaded once per session."""

    def _visit(docname: str, suffix: str) -> Visit:
        if browser_context is None:
            pytest.fail(NOT_BUILT)  # inside the test: reported as a failure, not a setup error
        if docname not in _visits:
            _visits[docname] = _load(browser_context, server_url, docname, suffix)
        return _visits[docname]

    return _visit


def _ignorable_console(msg: str) -> bool:
    # The request guard aborts anything non-local: test_no_request_leaves_localhost reports it.
    return "ERR_BLOCKED_BY_CLIENT" in msg


# ----------------------------------------------------------------------------- tests


def test_site_is_built():
    assert (HTML / "index.html").is_file(), NOT_BUILT
    vendor = HTML / "_static" / "vendor"
    for rel in (
        "mathjax/tex-chtml.js",
        "requirejs/require.js",
        "html-manager/embed-amd.js",
        "VERSIONS.json",
    ):
        assert (vendor / rel).is_file(), f"vendored asset missing from the site: {vendor / rel}"
    assert (HTML / "_static" / "fontawesome_config.js").is_file()


@pytest.mark.parametrize("docname,suffix", PAGES, ids=PAGE_IDS)
def test_page_loads_with_content(visit, docname, suffix):
    v = visit(docname, suffix)
    assert v.status == 200, f"{docname}.html answered HTTP {v.status} (is it in the build?)"
    assert v.facts["hasMain"] and v.facts["mainText"] > 100, (
        f"{docname}: the main content is missing or nearly empty ({v.facts['mainText']} chars)"
    )
    assert not v.local_failures, f"{docname}: local resources failed to load: {v.local_failures}"


NOTEBOOK_PAGES = [p for p in PAGES if p[1] == ".ipynb" and p[0] not in ("book/teacher",
                                                                        "book/problems")]


@pytest.mark.parametrize("docname,suffix", NOTEBOOK_PAGES, ids=[d for d, _ in NOTEBOOK_PAGES])
def test_notebook_page_has_figure(visit, docname, suffix):
    v = visit(docname, suffix)
    assert v.facts["images"] >= 1, f"{docname}: a chapter page with no <img> or figure"


@pytest.mark.parametrize("docname,suffix", PAGES, ids=PAGE_IDS)
def test_no_error_output(visit, docname, suffix):
    v = visit(docname, suffix)
    bad = [s for s in v.facts["stderr"] if "Traceback" in s or "Error" in s]
    assert not bad, f"{docname}: stderr output shows an error:\n" + "\n---\n".join(
        s[:1000] for s in bad
    )
    assert not v.facts["errorCells"], f"{docname}: error outputs: {v.facts['errorCells']}"


@pytest.mark.parametrize("docname,suffix", PAGES, ids=PAGE_IDS)
def test_math_rendered_by_vendored_mathjax(visit, docname, suffix):
    v = visit(docname, suffix)
    f = v.facts
    if not f["mathNodes"]:
        pytest.skip(f"{docname} has no math")
    assert f["mathjaxScripts"], f"{docname}: has math but loads no MathJax"
    for src in f["mathjaxScripts"]:
        assert _is_local(src) and "/_static/vendor/mathjax/" in src, (
            f"{docname}: MathJax is not the vendored copy: {src}"
        )
    assert f["mathjaxVersion"] and f["mathjaxVersion"].startswith("3."), f
    assert f["mjx"] >= 1, f"{docname}: {f['mathNodes']} math nodes but no <mjx-container>"
    assert not f["mjxErrors"], f"{docname}: MathJax errors: {f['mjxErrors']}"


@pytest.mark.parametrize("docname,suffix", PAGES, ids=PAGE_IDS)
def test_no_request_leaves_localhost(visit, docname, suffix):
    v = visit(docname, suffix)
    assert v.requests, f"{docname}: no request recorded at all"
    assert not v.external, f"{docname}: requests left 127.0.0.1:\n" + "\n".join(v.external)


@pytest.mark.parametrize("docname,suffix", PAGES, ids=PAGE_IDS)
def test_no_javascript_errors(visit, docname, suffix):
    v = visit(docname, suffix)
    errors = v.page_errors + [m for m in v.console_errors if not _ignorable_console(m)]
    assert not errors, f"{docname}: JavaScript errors:\n" + "\n".join(errors)


@pytest.mark.parametrize("docname,suffix", PAGES, ids=PAGE_IDS)
def test_widgets_render_and_play_advances(visit, docname, suffix):
    v = visit(docname, suffix)
    f = v.facts
    if not f["widgetViews"]:
        pytest.skip(f"{docname} has no ipywidgets view")
    assert f["widgetState"], f"{docname}: widget views but no embedded widget state"
    assert f["renderedWidgets"] >= 1, (
        f"{docname}: {f['widgetViews']} widget views, none rendered "
        f"(html-manager/require.js not loaded?) console: {v.console_errors + v.page_errors}"
    )
    assert f["renderedViews"] >= f["widgetViews"], (
        f"{docname}: only {f['renderedViews']} of {f['widgetViews']} widget views rendered; "
        f"console: {v.console_errors + v.page_errors}"
    )
    if not f["playButtons"]:
        return
    assert v.plays, f"{docname}: {f['playButtons']} Play widgets, none pressed"
    stuck = [p for p in v.plays if not p["changed"]]
    assert not stuck, f"{docname}: pressing Play changed nothing within {PLAY_TIMEOUT_MS} ms:\n" + (
        "\n".join(f"  Play #{p['index']}: before={p['before'][:200]!r}" for p in stuck)
        + f"\nerrors: {v.console_errors_after_play}"
    )
    assert not v.console_errors_after_play, (
        f"{docname}: the widget manager logged errors after Play: {v.console_errors_after_play}"
    )


# ----------------------------------------------------------------------------- classroom

CHAPTER_PAGES = [d for d, s in PAGES if "/chapters/" in d and s == ".ipynb"]


def test_teacher_page_links_a_student_notebook_per_chapter(browser_context, server_url):
    """The teacher's page links every chapter's student notebook in Colab (from the `editions`
    branch of _config.yml's repository) and as a download that the site serves."""
    from diffusion_lab.classroom import editions

    if browser_context is None:
        pytest.fail(NOT_BUILT)
    page = browser_context.new_page()
    page.route("**/*", lambda route: route.continue_() if _is_local(route.request.url)
               else route.abort("blockedbyclient"))
    try:
        response = page.goto(f"{server_url}/book/teacher.html", wait_until="load", timeout=30_000)
        assert response is not None and response.status == 200
        colab = page.eval_on_selector_all("a.student-notebook", "els => els.map(e => e.href)")
        downloads = page.eval_on_selector_all("a[download]", "els => els.map(e => e.href)")
    finally:
        page.close()
    repo = editions.repository_url(REPO).removeprefix("https://github.com/")
    assert CHAPTER_PAGES
    for docname in CHAPTER_PAGES:
        rel = docname.removeprefix("book/") + ".ipynb"
        want = f"https://colab.research.google.com/github/{repo}/blob/editions/student/{rel}"
        assert want in colab, f"the teacher's page does not link {docname}'s student notebook"
        assert any(d.endswith(f"/editions/student/{rel}") for d in downloads), docname
        served = HTML / "editions" / "student" / rel
        assert served.is_file(), f"the site does not serve {served}"
        assert "solution-start" not in served.read_text(encoding="utf-8")
        chapter_html = (HTML / f"{docname}.html").read_text(encoding="utf-8")
        assert f'class="student-notebook" href="{want}"' in chapter_html, (
            f"{docname}: the chapter page has no 'Open student notebook in Colab' link")
