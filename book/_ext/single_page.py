"""Sphinx extension: lets Jupyter Book's `singlehtml` builder (the PDF's first step) render
hidden code cells.

myst-nb registers the translator of its ``HideCodeCellNode`` (``hide-input``/``hide-output``
tags) for the ``html`` builder only, so ``jupyter-book build --builder singlehtml`` stops with
"departing unknown node type: HideCodeCellNode". This registers the same visit/depart for
``singlehtml``. Used by ``scripts/make_pdf.py``; registered in ``_config.yml`` under
``sphinx: local_extensions``.
"""

from __future__ import annotations

from sphinx.application import Sphinx


def setup(app: Sphinx) -> dict:
    from myst_nb.sphinx_ import HideCodeCellNode, depart_HideCellInput, visit_HideCellInput

    app.add_node(HideCodeCellNode, override=True,
                 html=(visit_HideCellInput, depart_HideCellInput),
                 singlehtml=(visit_HideCellInput, depart_HideCellInput))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
