"""The book's "Where each algorithm lives" page cannot go stale.

Every ``file:function`` it names must exist in the library, and every registered strategy and
training objective must have a row (a new sampler without a row fails here).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import diffusion_lab as dl

REPO = Path(__file__).resolve().parents[1]
PAGE = (REPO / "book" / "algorithms.md").read_text()
ROWS = [line for line in PAGE.splitlines() if line.startswith("| ") and "file:function" not in line]
LOCATIONS = re.findall(r"`(diffusion_lab/[\w/]+\.py):(\w+)`", PAGE)


def _defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def test_the_page_names_locations():
    assert len(LOCATIONS) >= 20


@pytest.mark.parametrize("path, function", LOCATIONS)
def test_every_location_exists(path, function):
    assert (REPO / path).is_file(), path
    assert function in _defined(REPO / path), f"{path} defines no {function}"


def _first_cells() -> set[str]:
    return {m.group(1) for row in ROWS if (m := re.match(r"\| `(\w+)`", row))}


@pytest.mark.parametrize("name", sorted(dl.STRATEGIES))
def test_every_strategy_has_a_row(name):
    assert name in _first_cells(), f"strategy {name!r} is missing from book/algorithms.md"


@pytest.mark.parametrize("name", dl.objectives.OBJECTIVES)
def test_every_objective_has_a_row(name):
    assert name in _first_cells(), f"objective {name!r} is missing from book/algorithms.md"


def test_the_page_is_in_the_back_matter():
    toc = (REPO / "_toc.yml").read_text()
    assert "file: book/algorithms" in toc.split("caption: Back matter")[1]
