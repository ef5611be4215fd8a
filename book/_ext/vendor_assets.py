"""Sphinx extension: make `jupyter-book build .` self-contained and offline.

* ``builder-inited``: when ``book/_static/vendor/`` lacks a file the pages load (the ipywidgets
  html-manager, require.js, MathJax 3), fetch it with ``scripts/fetch_web_assets.py``
  (``npm pack``). Sphinx copies ``html_static_path`` after the build, so the files fetched here
  are published with the site. A fetch that fails stops the build: a site whose widgets or math
  silently need a CDN is the failure this exists to prevent.
* Adds ``_static/fontawesome_config.js`` as the first script of every page: a blocking script
  that runs before the theme's deferred FontAwesome bundle reads ``window.FontAwesomeConfig``.
* Removes repeated identical inline ``<script>``s (sphinx-thebe's config is emitted twice, and
  the second ``const THEBE_JS_URL`` is a SyntaxError on every page).
* Checks that ``mathjax_path`` and ``nb_ipywidgets_js`` point at vendored files.
* ``build-finished``: warns about any ``http(s)://`` script, stylesheet, font or image that a
  built page would make the browser fetch (links the reader clicks are fine).

Registered in ``_config.yml`` under ``sphinx: local_extensions: {vendor_assets: book/_ext}``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

BOOK = Path(__file__).resolve().parents[1]
REPO = BOOK.parent
STATIC = BOOK / "_static"
FETCH_SCRIPT = REPO / "scripts" / "fetch_web_assets.py"


def _fetch_module():
    name = "_diffusion_lab_fetch_web_assets"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FETCH_SCRIPT)
    if spec is None or spec.loader is None:
        raise ExtensionError(f"vendor_assets: cannot load {FETCH_SCRIPT}")
    mod = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the class body runs
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def _is_remote(url: str) -> bool:
    return bool(re.match(r"^(https?:)?//", url.strip()))


def ensure_assets(app: Sphinx) -> None:
    if app.builder is None or app.builder.format != "html":
        return
    fwa = _fetch_module()
    vendor = STATIC / "vendor"
    missing = fwa.missing_assets(vendor)
    if missing:
        logger.info(
            "vendor_assets: fetching %s into %s", ", ".join(a.spec for a in missing), vendor
        )
        try:
            fwa.fetch(vendor)
        except fwa.FetchError as e:
            raise ExtensionError(f"vendor_assets: {e}") from e

    # The configured URLs must be the vendored files, not a CDN.
    cfg = app.config
    mathjax_path = getattr(cfg, "mathjax_path", "") or ""
    if _is_remote(mathjax_path):
        logger.warning(
            "vendor_assets: mathjax_path is remote (%s): use vendor/mathjax/tex-chtml.js",
            mathjax_path,
        )
    elif mathjax_path and not (STATIC / mathjax_path).is_file():
        raise ExtensionError(f"vendor_assets: mathjax_path {mathjax_path!r} is not in {STATIC}")
    for url in getattr(cfg, "nb_ipywidgets_js", None) or {}:
        if _is_remote(url):
            logger.warning("vendor_assets: nb_ipywidgets_js loads %s from the network", url)
        elif not (STATIC / url).is_file():
            raise ExtensionError(f"vendor_assets: nb_ipywidgets_js {url!r} is not in {STATIC}")


# src/href of things the browser fetches by itself (not <a href>).
_FETCHED = re.compile(
    r"""<(?:script|img|iframe|source|video|audio)\b[^>]*?\bsrc\s*=\s*["']((?:https?:)?//[^"']+)"""
    r"""|<link\b(?=[^>]*\brel\s*=\s*["'](?:stylesheet|preload|modulepreload|icon|"""
    r"""shortcut icon|prefetch|preconnect|dns-prefetch)["'])"""
    r"""[^>]*?\bhref\s*=\s*["']((?:https?:)?//[^"']+)"""
    r"""|@import\s+(?:url\()?["']?((?:https?:)?//[^"')\s]+)"""
    r"""|url\(\s*["']?((?:https?:)?//[^"')\s]+)""",
    re.IGNORECASE,
)


def scan_remote(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder is None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    hits: dict[str, set[str]] = {}
    for path in list(outdir.rglob("*.html")) + [
        p for p in (outdir / "_static").rglob("*.css") if "vendor" not in p.parts
    ]:
        text = path.read_text(encoding="utf-8", errors="replace")
        # drop HTML comments and the ipywidgets state JSON (it holds text, not fetches)
        text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
        text = re.sub(
            r'<script type="application/vnd\.jupyter\.widget-state\+json">.*?</script>',
            "",
            text,
            flags=re.S,
        )
        for m in _FETCHED.finditer(text):
            url = next(g for g in m.groups() if g)
            hits.setdefault(url, set()).add(str(path.relative_to(outdir)))
    for url, pages in sorted(hits.items()):
        logger.warning(
            "vendor_assets: the browser would fetch %s (in %s%s)",
            url,
            ", ".join(sorted(pages)[:3]),
            "…" if len(pages) > 3 else "",
        )


def dedupe_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Drop repeated identical <script>s (same src/body, any priority).

    With Jupyter Book 1 the sphinx-thebe and togglebutton inline configs end up twice on every
    page; the second `const THEBE_JS_URL = ...` is a SyntaxError in the browser console.
    """
    files = context.get("script_files")
    if not isinstance(files, list):
        return
    seen: set = set()
    keep = []
    for js in sorted(files, key=lambda j: getattr(j, "priority", 500)):
        key = (
            str(getattr(js, "filename", js) or ""),  # None and "" both mean inline
            tuple(sorted((k, str(v)) for k, v in (getattr(js, "attributes", {}) or {}).items())),
        )
        if key in seen:
            continue
        seen.add(key)
        keep.append(js)
    if len(keep) != len(files):
        files[:] = keep


def setup(app: Sphinx) -> dict:
    # First script on every page, blocking: runs before the theme's deferred FontAwesome.
    app.add_js_file("fontawesome_config.js", priority=1)
    app.connect("builder-inited", ensure_assets)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.connect("build-finished", scan_remote)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
