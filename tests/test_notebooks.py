"""The book's notebooks as files: stripped, installable on Colab, with exercises and solutions.

(Executing them is nbval's job: the README's test command runs ``--nbval-lax`` on the copies
that ``jupyter-book build .`` executed.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import diffusion_lab as dl

ROOT = Path(__file__).resolve().parent.parent


def _toc_files() -> list[Path]:
    toc = (ROOT / "_toc.yml").read_text()
    names = re.findall(r"^\s*(?:root|-\s*file):\s*(\S+)", toc, flags=re.M)
    return [ROOT / f"{name}.ipynb" for name in names if (ROOT / f"{name}.ipynb").exists()]


NOTEBOOKS = _toc_files()
CHAPTERS = [p for p in NOTEBOOKS if "chapters" in p.parts]


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_every_toc_entry_exists():
    toc = (ROOT / "_toc.yml").read_text()
    for name in re.findall(r"^\s*(?:root|-\s*file):\s*(\S+)", toc, flags=re.M):
        assert any((ROOT / f"{name}{ext}").exists() for ext in (".ipynb", ".md")), name
    assert len(CHAPTERS) >= 5, f"expected the five chapters of the lineage, found {CHAPTERS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    for cell in _cells(path):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, (
                f"{path.name} has outputs: run nbstripout on it")


def test_repository_url_is_set_once():
    config = (ROOT / "_config.yml").read_text()
    url = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", config, flags=re.M).group(1)
    assert url == dl.course.book.repository_url() == dl.course.book.repository_url(ROOT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_install_cell(path, monkeypatch, tmp_path):
    """The first code cell installs the library inside Colab under constraints that keep every
    preinstalled package, and does nothing elsewhere (the Colab-like CI job runs it for real)."""
    from diffusion_lab.course import colab

    first = next(c for c in _cells(path) if c["cell_type"] == "code")
    assert "remove-cell" in first.get("metadata", {}).get("tags", []), "hide it on the site"
    assert _source(first) == colab.install_cell(), "run scripts/write_install_cells.py"
    calls = []

    def fake_run(cmd, check, **kwargs):
        calls.append(cmd)
        return types.SimpleNamespace(stdout="torch==2.11.0+cu128\nipywidgets==7.7.1\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    cell = _source(first).replace(colab.CONSTRAINTS, str(tmp_path / "pins.txt"))
    monkeypatch.delenv("DIFFUSION_LAB_SOURCE", raising=False)
    exec(compile(cell, path.name, "exec"), {})
    assert calls == [], "outside Colab the install cell must not install anything"
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(compile(cell, path.name, "exec"), {})
    source = f"git+{dl.course.book.repository_url()}"
    want = colab.install_commands(source, sys.executable)
    want[1][want[1].index("-c") + 1] = str(tmp_path / "pins.txt")
    assert calls == want
    assert (tmp_path / "pins.txt").read_text() == "torch==2.11.0+cu128\nipywidgets==7.7.1\n"
    calls.clear()
    monkeypatch.setenv("DIFFUSION_LAB_SOURCE", "file:///wheels/diffusion_lab-0.1.0.whl")
    exec(compile(cell, path.name, "exec"), {})
    assert calls[1][-1] == "diffusion-lab @ file:///wheels/diffusion_lab-0.1.0.whl"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_sets_seed_and_profile(path):
    code = "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "code")
    assert "dl.notebook.setup(" in code, "every chapter seeds and picks its profile via setup()"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_have_checked_solutions(path):
    """Every exercise has a solution; checks are calls into dl.exercises (tests/test_editions.py
    covers kinds, metadata and the student edition)."""
    text = "\n".join(_source(c) for c in _cells(path))
    labels = re.findall(r":label:\s*(\S+)", text)
    exercises = [lab for lab in labels if re.search(r"-ex\d+$", lab)]
    assert 3 <= len(exercises) <= 7, f"{path.name}: 3-7 exercises, found {exercises}"
    for label in exercises:
        assert re.search(rf"solution-start\}}\s*{re.escape(label)}", text), f"no solution: {label}"
    assert "def check_ex" not in text, "checks live in the library (dl.exercises)"
    assert len(re.findall(r"dl\.exercises\.[\w.]+\(", text)) >= len(exercises) - 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_checked_cells_only_print(path):
    """nbval compares a ``# NBVAL_CHECK_OUTPUT`` cell's outputs field by field: a glued value
    (an extra ``application/papermill.record`` output) or a figure in it fails the comparison."""
    for i, cell in enumerate(_cells(path)):
        src = _source(cell)
        if cell["cell_type"] == "code" and "NBVAL_CHECK_OUTPUT" in src:
            assert "glue(" not in src and "plt." not in src, f"{path.name} cell {i}: print only"
