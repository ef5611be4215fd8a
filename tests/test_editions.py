"""The student and teacher editions (diffusion_lab/classroom/editions.py): no solution survives
in the student edition, every check and the Colab install cell do; every exercise says its kind,
difficulty and time; ``python -m diffusion_lab editions`` writes both folders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from diffusion_lab.classroom import editions

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = editions.toc_notebooks(ROOT)
CHAPTERS = [p for p in NOTEBOOKS if "chapters" in p.parts]
MARKS = re.compile(r"solution-start|solution-end|BEGIN SOLUTION|END SOLUTION|#\s*SOLUTION\b")


def _read(path):
    return nbformat.read(path, as_version=4)


def _solution_lines(nb) -> set[str]:
    """Distinctive lines inside solution blocks (code between marks, model answers, prose)."""
    lines, inside = set(), False
    for cell in nb.cells:
        meta = cell.metadata.get("diffusion_lab", {})
        src = cell.source
        if "student" in meta:
            lines |= {ln.strip() for ln in src.splitlines() if len(ln.strip()) > 25}
            continue
        if cell.cell_type == "code":
            keep = re.findall(r"# BEGIN SOLUTION\n(.*?)# END SOLUTION", src, re.S)
            keep += re.findall(r"^(.*)#\s*SOLUTION\s*$", src, re.M)
            if inside and not keep:
                keep = [src]
            for block in keep:
                lines |= {ln.strip() for ln in block.splitlines() if len(ln.strip()) > 25}
        else:
            text, _ = editions._split_markdown(src, inside)
            removed = src
            for part in text.splitlines():
                removed = removed.replace(part, "")
            lines |= {ln.strip() for ln in removed.splitlines()
                      if len(ln.strip()) > 25 and "solution-" not in ln}
            _, inside = editions._split_markdown(src, inside)
    return lines


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_edition_has_no_solution(path):
    source = _read(path)
    student = editions.student_notebook(source)
    text = "\n".join(c.source for c in student.cells)
    assert not MARKS.search(text), MARKS.search(text)
    outside, inside = [], False  # the source's text outside solutions, stubs excluded
    for cell in source.cells:
        kept, inside_after = editions._split_markdown(cell.source, inside)
        if cell.cell_type == "markdown" and "student" not in cell.metadata.get("diffusion_lab", {}):
            outside.append(kept)
        elif cell.cell_type == "code" and not inside and not MARKS.search(cell.source):
            outside.append(cell.source)
        inside = inside_after if cell.cell_type == "markdown" else inside
    outside = "\n".join(outside)
    leaked = [ln for ln in _solution_lines(source) if ln in text and ln not in outside]
    assert not leaked, f"{path.name}: solution text in the student edition: {leaked[:3]}"
    assert "*Model answer.*" not in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_edition_keeps_checks_and_install_cell(path):
    source = _read(path)
    student = editions.student_notebook(source)
    first = next(c for c in source.cells if c.cell_type == "code")
    assert next(c for c in student.cells if c.cell_type == "code").source == first.source
    calls = lambda nb: re.findall(r"dl\.exercises\.[\w.]+\(", "\n".join(  # noqa: E731
        c.source for c in nb.cells if c.cell_type == "code"))
    assert sorted(calls(student)) == sorted(calls(source))
    labels = [e["label"] for e in editions.exercises(source)]
    assert [e["label"] for e in editions.exercises(student)] == labels
    answers = [c.metadata["diffusion_lab"]["answer"] for c in student.cells
               if "answer" in c.metadata.get("diffusion_lab", {})]
    assert answers == [e["label"] for e in editions.exercises(source) if e["kind"] == "explain"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_of_every_kind_with_metadata(path):
    nb = _read(path)
    found = editions.exercises(nb)
    kinds = {e["kind"] for e in found}
    assert kinds == set(editions.KIND_NAMES), f"{path.name}: kinds {kinds}"
    for e in found:
        assert e["difficulty"] in (1, 2, 3) and 0 < e["minutes"] <= 30, e
        cell = next(c for c in nb.cells if f":label: {e['label']}" in c.source)
        assert editions.exercise_line(e["kind"], e["difficulty"], e["minutes"]) in cell.source
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "def check_" not in code, "checks live in dl.exercises, not in the notebook"
    for e in found:
        if e["kind"] == "predict":
            assert f'check_prediction("{e["label"]}"' in code, e["label"]
    text = "\n".join(c.source for c in nb.cells)
    assert "## What you should now be able to explain" in text


def test_otter_syntax():
    src = "x = 1  # SOLUTION\ndef f():\n    # BEGIN SOLUTION\n    return 2\n    # END SOLUTION\ng()"
    assert editions.strip_solution_code(src) == (
        "x = ...  # your answer\ndef f():\n    ...  # your code here\ng()")
    with pytest.raises(ValueError, match="END SOLUTION"):
        editions.strip_solution_code("# BEGIN SOLUTION\nx = 1")


def test_markers_inside_a_cell():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "before\n\n```{solution-start} a\n:class: dropdown\n```\nsecret\n\n```{solution-end}\n```"
        "\n\nafter")])
    assert editions.student_notebook(nb).cells[0].source == "before\n\nafter"


def test_colab_url_uses_the_repository_of_config():
    url = editions.colab_url(CHAPTERS[0], root=ROOT)
    repo = editions.repository_url(ROOT).removeprefix("https://github.com/")
    assert url == (f"https://colab.research.google.com/github/{repo}/blob/editions/student/"
                   f"{CHAPTERS[0].relative_to(ROOT / 'book').as_posix()}")
    with pytest.raises(ValueError, match="edition"):
        editions.colab_url(CHAPTERS[0], edition="pupil", root=ROOT)


def test_cli_writes_both_editions(tmp_path):
    out = subprocess.run([sys.executable, "-m", "diffusion_lab", "editions", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    for path in NOTEBOOKS:
        rel = path.relative_to(ROOT / "book")
        student, teacher = tmp_path / "student" / rel, tmp_path / "teacher" / rel
        assert student.is_file() and teacher.is_file()
        assert _read(student).metadata["diffusion_lab"]["edition"] == "student"
        assert [c.source for c in _read(teacher).cells] == [c.source for c in _read(path).cells]
