"""Teaching cells teach (issue 26): in the chapters below, the asserts, `glue` and `claim` calls
that make the book trustworthy live in check cells tagged `hide-input` (folded on the site, run by
nbval and the book build like any cell), not in the cells a student reads. A cell that puts one
back at its top level fails here; one nested in a loop that also teaches is allowed, and
solutions (folded too) are not counted.

Visible code lines, measured on 2026-12-08 when the check cells were split out (chapters 1-7 and
5b): 2,407 before, 2,130 after; visible bookkeeping lines (assert, glue, claim, `# observed`)
207 before, 14 after, inside solutions, loops, a premise and an output nbval compares."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["intro", "01_mlm", "02_gibbs", "03_generative_mlm", "04_diffusion", "05_sampling",
            "05b_parallel_decoding", "06_remasking", "07_pretrained_race", "09_blocks",
            "10_edits"]
HIDDEN = {"hide-input", "remove-input", "remove-cell"}
# asserts that state an experiment's premise where the reader needs it, with the reason
PREMISES = {
    "assert not any((task.check(w + g[11:])": "ch6: every planted digit really clashes",
}


def _is_bookkeeping(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assert):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        return (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) in (
            "glue", "claim")
    if isinstance(node, ast.For):
        return all(_is_bookkeeping(b) for b in node.body)
    return False


def _notebook(chapter: str) -> Path:
    if chapter == "intro":
        return ROOT / "book" / "intro.ipynb"
    return next((ROOT / "book" / "chapters" / chapter).glob("*.ipynb"))


def teaching_cells(chapter: str):
    """(index, source) of every code cell a reader sees unfolded: not hidden, not a solution."""
    path = _notebook(chapter)
    nb = nbformat.read(path, as_version=4)
    in_solution = False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            in_solution = ("{solution-start}" in cell.source or in_solution) and (
                "{solution-end}" not in cell.source)
            continue
        if in_solution or HIDDEN & set(cell.metadata.get("tags", [])):
            continue
        yield i, cell.source


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_teaching_cells_hold_no_bookkeeping(chapter):
    offenders = []
    for i, source in teaching_cells(chapter):
        if "google.colab" in source or "# NBVAL_CHECK_OUTPUT" in source:
            continue  # the install cell; a cell whose printed output nbval compares
        tree = ast.parse(source)
        offenders += [f"cell {i}: {ast.unparse(node)[:60]}" for node in tree.body
                      if _is_bookkeeping(node)
                      and not any(ast.unparse(node).startswith(p) for p in PREMISES)]
    assert not offenders, (f"{chapter}: move these into a check cell tagged hide-input: "
                           f"{offenders}")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_check_cell_follows_what_it_checks(chapter):
    """A hidden check cell never opens a chapter: it checks the cell before it."""
    path = _notebook(chapter)
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    first_teaching = next(i for i, c in enumerate(code) if "google.colab" not in c.source)
    assert "hide-input" not in code[first_teaching].metadata.get("tags", [])
