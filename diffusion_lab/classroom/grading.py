"""Grade a class's submitted student notebooks in one command.

``python -m diffusion_lab grade SUBMISSIONS/ --chapter N --out grades.csv`` grades every
``*.ipynb`` in ``SUBMISSIONS/`` (only read) against chapter ``N``, offline, on the ``cpu`` profile
unless told otherwise (``diffusion_lab.classroom.grader`` says how):

* the grade comes from checks the grader runs itself, in its own process, on the answers the
  submission's checks were called with (handed over as data) and the context of the grader's own
  run of the teacher edition — never from anything the student's kernel wrote;
* the teacher's check cells are put back before a submission runs; an edited, moved or deleted
  one is reported in the ``tampered`` column;
* each submission runs in a bubblewrap sandbox (no network, a private scratch folder as the only
  writable place, memory / process / time / output limits), ``jobs`` at a time.

The CSV has one row per student and exercise: ``student`` (the file's stem), ``exercise``,
``passed`` (1/0; empty for answers graded by hand and for exercises the teacher edition itself
fails), ``hint`` (the check's message, what stopped the run, or for a hand-graded answer its
length), ``tampered`` and ``sandbox``. Beside it, ``OUT-feedback/STUDENT.md`` tells each student
what passed, the hints, and quotes their written answers for the teacher to read.
"""

from __future__ import annotations

import csv
import os
import shutil
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from . import editions
from .results import feedback_folder, report  # noqa: F401  (public names)

PROFILES = ("cpu", "gpu", "smoke")
SANDBOXES = ("auto", "bwrap", "rlimits")
FIELDS = ["student", "exercise", "passed", "hint", "tampered", "sandbox"]


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


def sandbox_mode(sandbox: str) -> str:
    """``"bwrap"`` or ``"rlimits"`` for the ``--sandbox`` choice; a clear error when bubblewrap
    was asked for (or ``auto``) and cannot run here."""
    from .sandbox import problem

    if sandbox not in SANDBOXES:
        raise ValueError(f"sandbox must be one of {SANDBOXES}, got {sandbox!r}")
    if sandbox == "rlimits":
        return "rlimits"
    why = problem()
    if why:
        raise RuntimeError(f"cannot sandbox the submissions: {why}. To grade anyway with "
                           "resource limits but no isolation (every row flagged), pass "
                           "--sandbox rlimits")
    return "bwrap"


def default_jobs(threads: int = 1) -> int:
    """Submissions graded side by side: the CPUs this process may use (affinity and cgroup
    quota, ``threads.usable_cpus``) over the threads one kernel takes."""
    from ..runtime import usable_cpus

    return max(1, usable_cpus() // max(1, threads))


def grade(submissions: Path | str, chapter: str | int, out: Path | str, *, profile: str = "cpu",
          timeout: int = 600, jobs: int | None = None, threads: int = 1, sandbox: str = "auto",
          limits=None, root: Path | str | None = None, progress: bool = True) -> list[dict]:
    """Grade every ``*.ipynb`` in ``submissions`` against ``chapter``; write the CSV to ``out``
    and the feedback files beside it; return the rows."""
    import nbformat
    import torch

    from ..course.notebook import _mode, _set_claims, claims_mode
    from ..runtime import cache_dir
    from . import grader, results
    from .reference import Reference
    from .sandbox import Limits
    from .userids import UserIds

    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise ValueError(f"submissions must be a folder of notebooks, got {str(submissions)!r}")
    if profile not in PROFILES:
        raise ValueError(f"profile must be 'cpu', 'gpu' or 'smoke', got {profile!r}")
    for name, value in (("timeout", timeout), ("threads", threads), ("jobs", jobs)):
        if (value is not None or name != "jobs") and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    source = find_chapter(chapter, root)
    nb = nbformat.read(source, as_version=4)
    expected = editions.exercises(nb)
    if not expected:
        raise ValueError(f"{source} has no exercises")
    paths = sorted(submissions.glob("*.ipynb"))
    if not paths:
        raise ValueError(f"no .ipynb files in {str(submissions)!r}")
    mode = sandbox_mode(sandbox)
    jobs = jobs or default_jobs(threads)
    limits = limits or Limits(cell_s=timeout)
    env = {"DIFFUSION_LAB_PROFILE": profile, "DIFFUSION_LAB_THREADS": str(threads),
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    saved = torch.get_num_threads(), _mode["claims"]
    torch.set_num_threads(threads)  # the grader's checks compute like the kernels did
    _set_claims(claims_mode(profile))
    note = "bwrap" if mode == "bwrap" else "rlimits only: NOT isolated"
    ids = UserIds(jobs)  # a root grader's sandbox users, no other grader's
    work = grader.scratch()
    session = grader.Session(work, mode, limits, env, cache_dir(),
                             slots=ids.ids or list(range(jobs)))
    reference = Reference(session, editions.teacher_notebook(nb), expected)
    done = {}
    try:
        _say(progress, f"running the teacher edition of {source.parent.name} for the context")
        reference.run()
        grader.share_cache(session.cache)  # what the teacher edition trained, students read
        reference.self_test()
        edition = editions.student_notebook(nb)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(grader.grade_submission, session, reference, edition, p,
                                   expected): p for p in paths}
            for future in _bar(as_completed(futures), len(paths), progress):
                done[futures[future]] = future.result()
    finally:
        try:
            reference.close()
        finally:
            if os.environ.get(grader.KEEP_ENV):
                print(f"kept the sandboxes' folders in {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
        ids.close()
        torch.set_num_threads(saved[0])
        _mode["claims"] = saved[1]
    rows = [row for p in paths
            for row in results.rows_of(p.stem, done[p], expected, reference, note)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    results.write_feedback(out, rows, {p.stem: done[p]["answers"] for p in paths}, expected)
    print(results.report(rows))
    return rows


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, flush=True)


def _bar(items, total: int, progress: bool):
    if not progress:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc="grading", unit="notebook")
