"""Sphinx extension: the student and teacher editions of every notebook, built with the site.

* ``build-finished`` (HTML): ``diffusion_lab.classroom.editions.build_editions`` writes
  ``_build/html/editions/student/`` and ``…/teacher/`` (one notebook per notebook of
  ``_toc.yml``, at its path under ``book/``). The site serves them for download, and the Pages
  workflow pushes that folder to the ``editions`` branch, which the Colab links open.
* ``html-page-context``: every page built from a notebook that has exercises gets a line at the
  top: "Open student notebook in Colab" · "download" · "full chapter (teacher edition) in Colab".

The same code as ``python -m diffusion_lab editions OUTDIR``. Registered in ``_config.yml`` under
``sphinx: local_extensions: {editions: book/_ext}``.
"""

from __future__ import annotations

import html
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]


def _exercise_pages() -> dict[str, Path]:
    """{docname: notebook} for every toc notebook with at least one exercise."""
    import nbformat

    from diffusion_lab.classroom import editions

    pages = {}
    for path in editions.toc_notebooks(REPO):
        if editions.exercises(nbformat.read(path, as_version=4)):
            pages[path.relative_to(REPO).with_suffix("").as_posix()] = path
    return pages


def add_links(app: Sphinx, pagename, templatename, context, doctree) -> None:
    from diffusion_lab.classroom import editions

    pages = app.env.diffusion_lab_exercise_pages
    if pagename not in pages or "body" not in context:
        return
    path = pages[pagename]
    rel = editions.edition_path(path, REPO).as_posix()
    depth = pagename.count("/")
    download = "../" * depth + f"editions/student/{rel}"
    student = html.escape(editions.colab_url(path, "student", REPO))
    teacher = html.escape(editions.colab_url(path, "teacher", REPO))
    links = (f'<a class="student-notebook" href="{student}">Open student notebook in Colab</a> · '
             f'<a href="{html.escape(download)}" download>download the student notebook</a> · '
             f'<a class="teacher-notebook" href="{teacher}">full chapter (teacher edition) in '
             "Colab</a>")
    context["body"] = f'<p class="edition-links">{links}</p>\n' + context["body"]


def init(app: Sphinx) -> None:
    app.env.diffusion_lab_exercise_pages = _exercise_pages()


def write_editions(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder is None or app.builder.format != "html":
        return
    from diffusion_lab.classroom.editions import build_editions

    written = build_editions(Path(app.outdir) / "editions", REPO)
    logger.info("editions: wrote %d student and teacher notebooks", len(written))


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", init)
    app.connect("html-page-context", add_links)
    app.connect("build-finished", write_editions)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
