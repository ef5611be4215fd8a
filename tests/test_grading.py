"""``python -m diffusion_lab grade``: a correct, a blank and a broken submission of a mini
chapter (tests/fixtures/classroom/mini.ipynb: one exercise of each kind, seconds to run)."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from diffusion_lab.classroom import editions, grading

ROOT = Path(__file__).resolve().parent.parent
MINI = ROOT / "tests" / "fixtures" / "classroom" / "mini.ipynb"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    source = nbformat.read(MINI, as_version=4)
    student = editions.student_notebook(source)
    nbformat.write(editions.teacher_notebook(source), folder / "alice.ipynb")  # all solved
    nbformat.write(student, folder / "bob.ipynb")  # handed in untouched
    (folder / "carol.ipynb").write_text('{"cells": [ not json', encoding="utf-8")  # broken
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    out = folder.parent / "grades.csv"
    run = subprocess.run([sys.executable, "-m", "diffusion_lab", "grade", str(folder),
                          "--chapter", str(MINI), "--out", str(out), "--profile", "smoke",
                          "--timeout", "120"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, before, after, run.stdout


def _row(rows, student, exercise):
    return next(r for r in rows if r["student"] == student and r["exercise"] == exercise)


def test_one_row_per_student_and_exercise(graded):
    rows, *_ = graded
    assert list(rows[0]) == ["student", "exercise", "passed", "hint"]
    assert [(r["student"], r["exercise"]) for r in rows] == [
        (s, e) for s in ("alice", "bob", "carol") for e in ("ch4-ex1", "ch0-ex2", "ch0-ex3")]


def test_correct_submission_passes(graded):
    rows, *_ = graded
    assert _row(rows, "alice", "ch4-ex1")["passed"] == "1"
    assert _row(rows, "alice", "ch0-ex2")["passed"] == "1"
    hand = _row(rows, "alice", "ch0-ex3")
    assert hand["passed"] == "" and hand["hint"].startswith("hand-graded:")
    assert "no answer" not in hand["hint"]


def test_blank_submission_fails_with_hints(graded):
    rows, *_ = graded
    assert _row(rows, "bob", "ch4-ex1")["passed"] == "0"
    assert "function" in _row(rows, "bob", "ch4-ex1")["hint"] or "empty" in _row(
        rows, "bob", "ch4-ex1")["hint"]
    assert _row(rows, "bob", "ch0-ex2")["passed"] == "0"
    assert "empty" in _row(rows, "bob", "ch0-ex2")["hint"]
    assert _row(rows, "bob", "ch0-ex3") == {"student": "bob", "exercise": "ch0-ex3",
                                            "passed": "", "hint": "hand-graded: no answer written"}


def test_broken_submission_scores_zero_with_its_error(graded):
    rows, *_ = graded
    for exercise in ("ch4-ex1", "ch0-ex2"):
        row = _row(rows, "carol", exercise)
        assert row["passed"] == "0" and "not executable" in row["hint"]


def test_submissions_untouched_and_report_printed(graded):
    _, before, after, stdout = graded
    assert before == after
    assert "alice: 2/2 checked exercises passed; 1 to grade by hand" in stdout
    assert "carol: 0/2" in stdout


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        grading.grade(tmp_path / "nope", 1, tmp_path / "g.csv")
    with pytest.raises(ValueError, match="no .ipynb"):
        grading.grade(tmp_path, MINI, tmp_path / "g.csv")
    with pytest.raises(ValueError, match="profile"):
        grading.grade(tmp_path, MINI, tmp_path / "g.csv", profile="fast")
    with pytest.raises(ValueError, match="chapter"):
        grading.find_chapter("99", ROOT)
    assert grading.find_chapter(5, ROOT).parent.name.startswith("05_")
