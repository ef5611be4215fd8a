"""Grade a class's submitted student notebooks in one command.

``python -m diffusion_lab grade SUBMISSIONS/ --chapter N --out grades.csv`` executes every
``*.ipynb`` in ``SUBMISSIONS/`` (a copy of it, in a temporary folder: the teacher's folder is only
read) with ``nbclient``, offline (``HF_HUB_OFFLINE=1``), on the ``cpu`` profile unless told
otherwise, with a per-cell timeout and ``allow_errors`` (a failing exercise does not hide the next
one). Each check in ``diffusion_lab.exercises`` appends its result to the file named by
``DIFFUSION_LAB_GRADE_LOG``; the grader reads it back. The CSV has one row per student and
exercise of the chapter: ``student`` (the file's stem), ``exercise`` (its label), ``passed``
(1/0; empty for exercises graded by hand) and ``hint`` (the check's message, the first error, or
for a hand-graded answer its length). A notebook that cannot be read or executed scores 0 on
every checked exercise, with the error in ``hint``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from . import editions
from .exercises import GRADE_LOG_ENV

PLACEHOLDER = "*Your answer here.*"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def find_chapter(chapter: str | int, root: Path | str | None = None) -> Path:
    """The source notebook of ``chapter``: a number (``5`` -> ``05_*``), a folder prefix
    (``05b``), a notebook stem (``sampling``) or a path to a notebook."""
    key = str(chapter)
    if key.endswith(".ipynb"):
        path = Path(key)
        if not path.is_file():
            raise ValueError(f"chapter: no notebook at {key!r}")
        return path
    prefix = f"{int(key):02d}_" if key.isdigit() else key
    notebooks = editions.toc_notebooks(root)
    hits = [nb for nb in notebooks if nb.parent.name.startswith(prefix) or nb.stem == key]
    if len(hits) != 1:
        names = ", ".join(nb.parent.name for nb in notebooks if nb.parent.name[:1].isdigit())
        raise ValueError(f"chapter {chapter!r} matches {len(hits)} notebooks; chapters: {names}")
    return hits[0]


@contextlib.contextmanager
def _environment(values: dict):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _first_error(nb) -> str:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"{out['ename']}: {out['evalue']}".strip()[:300]
    return ""


def _answers(nb) -> dict[str, str]:
    found = {}
    for cell in nb.cells:
        label = (cell.get("metadata", {}).get("diffusion_lab", {}) or {}).get("answer")
        if label:
            text = cell.source.replace(PLACEHOLDER, "")
            found[label] = re.sub(r"\*\*Your answer[^*]*\*\*", "", text).strip()
    return found


def grade_one(path: Path, expected: list[dict], *, profile: str, timeout: int) -> list[dict]:
    """Execute one submission; return one row per expected exercise."""
    import nbclient
    import nbformat

    rows = {e["label"]: None for e in expected}
    with tempfile.TemporaryDirectory(prefix="dl-grade-") as tmp:
        work = Path(tmp) / path.name
        shutil.copyfile(path, work)
        log = Path(tmp) / "results.jsonl"
        error, nb = "", None
        try:
            nb = nbformat.read(work, as_version=4)
            env = {GRADE_LOG_ENV: str(log), "DIFFUSION_LAB_PROFILE": profile, **OFFLINE}
            with _environment(env):
                nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                        allow_errors=True,
                                        resources={"metadata": {"path": tmp}}).execute()
            error = _first_error(nb)
        except Exception as err:  # noqa: BLE001 - any failure to run scores zero, with its reason
            error = f"not executable: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
        results = {}
        if log.is_file():
            for line in log.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                results[row["exercise"]] = row  # a re-run check: the last result counts
    answers = _answers(nb) if nb is not None else {}
    out = []
    for ex in expected:
        label = ex["label"]
        if ex["kind"] == "explain":
            text = answers.get(label, "")
            words = len(text.split())
            hint = f"hand-graded: {words} words" if words else "hand-graded: no answer written"
            rows[label] = {"passed": "", "hint": hint}
        elif label in results:
            rows[label] = {"passed": results[label]["passed"], "hint": results[label]["hint"]}
        else:
            rows[label] = {"passed": 0, "hint": "the check did not run" + (
                f" ({error})" if error else "")}
        out.append({"student": path.stem, "exercise": label, **rows[label]})
    return out


def grade(submissions: Path | str, chapter: str | int, out: Path | str, *, profile: str = "cpu",
          timeout: int = 600, root: Path | str | None = None) -> list[dict]:
    """Grade every ``*.ipynb`` in ``submissions`` against ``chapter``; write the CSV to ``out``."""
    import nbformat

    submissions = Path(submissions)
    if not submissions.is_dir():
        raise ValueError(f"submissions must be a folder of notebooks, got {str(submissions)!r}")
    if profile not in ("cpu", "gpu", "smoke"):
        raise ValueError(f"profile must be 'cpu', 'gpu' or 'smoke', got {profile!r}")
    source = find_chapter(chapter, root)
    expected = editions.exercises(nbformat.read(source, as_version=4))
    if not expected:
        raise ValueError(f"{source} has no exercises")
    paths = sorted(submissions.glob("*.ipynb"))
    if not paths:
        raise ValueError(f"no .ipynb files in {str(submissions)!r}")
    rows = []
    for path in paths:
        rows += grade_one(path, expected, profile=profile, timeout=timeout)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["student", "exercise", "passed", "hint"])
        writer.writeheader()
        writer.writerows(rows)
    print(report(rows))
    return rows


def report(rows: list[dict]) -> str:
    """A short text report: per student, checked exercises passed and answers to read."""
    lines = []
    for student in dict.fromkeys(r["student"] for r in rows):
        mine = [r for r in rows if r["student"] == student]
        checked = [r for r in mine if r["passed"] != ""]
        passed = sum(int(r["passed"]) for r in checked)
        by_hand = len(mine) - len(checked)
        failed = ", ".join(r["exercise"] for r in checked if not int(r["passed"]))
        lines.append(f"{student}: {passed}/{len(checked)} checked exercises passed"
                     + (f" (failed: {failed})" if failed else "")
                     + (f"; {by_hand} to grade by hand" if by_hand else ""))
    return "\n".join(lines)
