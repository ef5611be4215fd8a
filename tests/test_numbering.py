"""Chapter and exercise numbers: the sidebar, the prose and the syllabus use the same ones.

Sphinx numbers a numbered toctree 1, 2, 3, ...: chapter 5b would be "6." in the sidebar and its
exercises "Exercise 6.1" while the prose says "chapter 5b" (issue 24).  So the toc is not
numbered; each chapter's title carries its number (from its folder, ``05b_parallel_decoding`` ->
"5b."), and each exercise is ``:nonumber:`` with "N.k · " in its title.
"""

from __future__ import annotations

import re

import pytest

from diffusion_lab.classroom import editions
from diffusion_lab.course.book import book_root

CHAPTERS = [p for p in editions.toc_notebooks() if "chapters" in p.parts]
EXERCISE = re.compile(r"^[`:]{3,}\s*\{exercise\}(?P<title>[^\n]*)\n(?P<options>(?::\w+:.*\n)*)",
                      re.M)


def chapter_number(path) -> str:
    return path.parent.name.split("_")[0].lstrip("0") or "0"


def markdown(path) -> list[str]:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def test_the_sidebar_does_not_renumber_the_chapters():
    toc = (book_root() / "_toc.yml").read_text()
    assert re.search(r"^\s*numbered:\s*false", toc, re.M)
    assert not re.search(r"^\s*numbered:\s*true", toc, re.M)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.parent.name)
def test_chapter_title_carries_its_number(path):
    title = next(s for s in markdown(path) if s.startswith("# ")).splitlines()[0]
    assert title.startswith(f"# {chapter_number(path)}. "), title


@pytest.mark.parametrize("path", CHAPTERS + [book_root() / "book" / "problems.ipynb"],
                         ids=lambda p: p.stem)
def test_exercises_are_numbered_within_their_chapter(path):
    number = "P" if path.stem == "problems" else chapter_number(path)
    found = [m for s in markdown(path) for m in EXERCISE.finditer(s + "\n")]
    assert found, f"{path.name} has no exercise"
    for k, m in enumerate(found, start=1):
        assert m.group("title").strip().startswith(f"{number}.{k} · "), m.group("title")
        assert ":nonumber:" in m.group("options"), f"{number}.{k} is numbered by Sphinx"
