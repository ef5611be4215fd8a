"""Sphinx extension: the live panels' models and runtime ship with the built site.

A page opts in with one line of HTML (a Markdown cell of the notebook)::

    <div class="dl-live" data-model="mdlm" data-prompt="ROMEO:"></div>

``data-model`` names a recipe of ``dl.zoo``, or ``qa`` for chapter 8's question-answering model
(``data-kind="qa"`` gives its question box and "force" toggle; ``dl.export.export("qa")``);
``book/_static/live/panel.js`` turns the div into the panel.  This extension

* ``html-page-context``: adds ``live/live.css`` and the scripts of `LIVE_SCRIPTS` (the sampler,
  byte-level BPE, revisable tokens, chapter 8's question box, the grammar's exact check, the
  panel) to the pages that hold
  such a div (and only to those);
* ``build-finished``: finds every ``data-model`` in the built pages, exports that zoo model for the
  profile of the build (``dl.export.export``, cached next to the zoo's models: the export of an
  unchanged model costs nothing) and copies the ONNX graph and its JSON into
  ``_static/live/models/``; writes the ``file://`` copies (``*.js``) of those files and of the
  vendored onnxruntime-web (fetched by ``vendor_assets`` at ``builder-inited``), so the panel runs
  from a site opened from disk too.  A failed export stops the build: a page whose panel could
  only show an error is the failure this exists to prevent.

Registered in ``_config.yml`` under ``sphinx: local_extensions: {live_models: book/_ext}``.
"""

from __future__ import annotations

import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

PANEL = re.compile(r"""<div\b[^>]*\bclass=["'][^"']*\bdl-live\b[^>]*>""")
MODEL = re.compile(r"""\bdata-model=["']([A-Za-z0-9_-]+)["']""")
# in load order: the tokenizer and the revisable start before the sampler, the panel last
LIVE_SCRIPTS = ("bpe.js", "revise.js", "sampler.js", "qa.js", "grammar.js", "panel.js")
ORT_FILES = {"ort-wasm-simd-threaded.mjs": "ort-mjs", "ort-wasm-simd-threaded.wasm": "ort-wasm"}


def add_panel_assets(app: Sphinx, pagename, templatename, context, doctree) -> None:
    if PANEL.search(context.get("body", "") or ""):
        app.add_css_file("live/live.css")
        for script in LIVE_SCRIPTS:
            app.add_js_file(f"live/{script}")


def models_in(outdir: Path) -> dict[str, list[str]]:
    """{model name: [pages]} for every panel in the built HTML."""
    found: dict[str, list[str]] = {}
    for page in sorted(outdir.rglob("*.html")):
        for div in PANEL.findall(page.read_text(encoding="utf-8", errors="replace")):
            m = MODEL.search(div)
            if m:
                found.setdefault(m.group(1), []).append(str(page.relative_to(outdir)))
    return found


def publish_models(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder is None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    wanted = models_in(outdir)
    if not wanted:
        return
    from diffusion_lab import export as dl_export

    static = outdir / "_static"
    ort = static / "vendor" / "onnxruntime-web"
    missing = [f for f in ("ort.wasm.min.js", *ORT_FILES) if not (ort / f).is_file()]
    if missing:
        raise ExtensionError(f"live_models: {ort} lacks {missing}; run scripts/fetch_web_assets.py")
    for name, pages in wanted.items():
        logger.info("live_models: exporting %r for %s", name, ", ".join(pages))
        try:
            files = dl_export.export(name)
        except Exception as e:  # noqa: BLE001 - any failure must stop the build, with its cause
            raise ExtensionError(f"live_models: could not export {name!r} ({pages}): {e}") from e
        dl_export.publish(files, static / "live" / "models")
        logger.info("live_models: %s: %.2f MB ONNX, %.1f kB JSON", name,
                    files["bytes"]["onnx"] / 1e6, files["bytes"]["json"] / 1e3)
    for filename, key in ORT_FILES.items():
        wrapper = ort / (filename + ".js")
        if not wrapper.is_file() or wrapper.stat().st_mtime < (ort / filename).stat().st_mtime:
            dl_export.script_wrapper(ort / filename, key)


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", add_panel_assets)
    app.connect("build-finished", publish_models)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
