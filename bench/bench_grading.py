"""Benchmark: grading a class in parallel - ``python -m diffusion_lab grade --jobs 1`` vs ``2``.

A class of mixed submissions of one chapter (default: chapter 8, the answering chapter, on the
cpu profile) - right ones (the teacher's answers in the student edition), wrong ones, blank ones
and a few hostile ones (checks rebound, results written to a log, a check cell deleted, the
context faked, the network tried, the kernel killed) - is graded twice in this process, with
``--jobs 1`` and ``--jobs 2``, each kernel on one thread. Printed: the wall time of each, their
ratio (target on 2 cores: ``--jobs 2`` <= 0.65x ``--jobs 1``), the load average around each run
(the machine may be shared), and whether both runs gave the same grades.

Both runs include the grader's own run of the teacher edition (once per grading, not per
student), so the ratio cannot reach 0.5 even on idle cores.

Run: python bench/bench_grading.py [--students 30 --chapter 8 --profile cpu]
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

import nbformat

from diffusion_lab.classroom import editions, grading
from diffusion_lab.classroom.examples import model_submission
from diffusion_lab.runtime import usable_cpus


def _slot(nb, label: str, source: str, nth: int = 0):
    nb = copy.deepcopy(nb)
    slots = [c for c in nb.cells if c.metadata.get("diffusion_lab", {}).get("slot") == label]
    slots[nth % len(slots)].source = source
    return nb


def _cell(nb, before: int, source: str):
    nb = copy.deepcopy(nb)
    nb.cells.insert(before, nbformat.v4.new_code_cell(source))
    return nb


def mixed_class(source, n: int) -> dict:
    """``n`` submissions: a third right, a quarter wrong, a fifth blank, the rest hostile."""
    right, blank = model_submission(source), editions.student_notebook(source)
    labels = [e["label"] for e in editions.exercises(source) if e["kind"] != "explain"]
    first_slot = next(i for i, c in enumerate(right.cells)
                      if c.metadata.get("diffusion_lab", {}).get("slot"))
    no_check = copy.deepcopy(right)
    no_check.cells = [c for c in no_check.cells
                      if c.metadata.get("diffusion_lab", {}).get("check") != labels[0]]
    rebind = "\n".join(f"dl.exercises.{m} = ok"
                       for m in ("check_prediction", "ch8.check_cheapest_threshold"))
    log = ("import os\n"
           f"for label in {labels!r}:\n"
           "    dl.exercises.record(label, True)\n"
           "    open(os.environ.get('DIFFUSION_LAB_GRADE_LOG', '/io/out/log'), 'a').write(label)")
    hostile = [
        _cell(blank, 3, "import diffusion_lab as dl\nok = lambda *a, **k: True\n" + rebind),
        _cell(blank, len(blank.cells), log),
        no_check,
        _cell(_slot(right, labels[0], "tau = 0.99"), first_slot,
              "rows['threshold 0.99'] = dict(rows['threshold 0.99'], acc=1.0, passes1=0.5)"),
        _slot(right, labels[0], "import socket\ntry:\n    socket.create_connection(('1.1.1.1', "
              "80), timeout=2)\n    tau = 0.9\nexcept OSError:\n    tau = None"),
        _cell(right, first_slot, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
    ]
    wrong = [_slot(right, labels[0], "tau = 0.99"), _slot(right, labels[0], "tau = None"),
             _slot(right, labels[-1], 'observed = "forced yes"', 1),
             _slot(right, labels[-1], 'prediction = "maybe"', 0)]
    kinds = ([("right", right)] * (n // 3) + [("wrong", w) for w in wrong] * (n // 4 // 4 + 1)
             )[: n // 3 + n // 4]
    kinds += [("blank", blank)] * (n // 5)
    kinds += [("hostile", h) for h in hostile][: max(0, n - len(kinds))]
    kinds += [("right", right)] * (n - len(kinds))
    return {f"{i:02d}-{kind}": nb for i, (kind, nb) in enumerate(kinds)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--chapter", default="8")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--jobs", default="1,2", help="the --jobs values to compare, first = base")
    args = ap.parse_args()
    path = grading.find_chapter(args.chapter)
    source = nbformat.read(path, as_version=4)
    folder = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    subs = folder / "submissions"
    subs.mkdir()
    for name, nb in mixed_class(source, args.students).items():
        nbformat.write(nb, subs / f"{name}.ipynb")
    kinds = sorted(p.stem.split("-", 1)[1] for p in subs.glob("*.ipynb"))
    mix = ", ".join(f"{k}: {kinds.count(k)}" for k in dict.fromkeys(kinds))
    print(f"{args.students} submissions of {path.name} ({mix}); profile {args.profile}; "
          f"usable CPUs {usable_cpus()}; one thread per kernel", flush=True)
    times, grades = {}, {}
    for jobs in (int(j) for j in args.jobs.split(",")):
        load = os.getloadavg()[0]
        tick = time.perf_counter()
        rows = grading.grade(subs, args.chapter, folder / f"grades-{jobs}.csv",
                             profile=args.profile, timeout=args.timeout, jobs=jobs, threads=1,
                             progress=False)
        times[jobs] = time.perf_counter() - tick
        grades[jobs] = [(r["student"], r["exercise"], r["passed"]) for r in rows]
        print(f"--jobs {jobs}: {times[jobs]:.0f} s ({times[jobs] / args.students:.1f} s per "
              f"student); load average {load:.1f} before, {os.getloadavg()[0]:.1f} after",
              flush=True)
    base, *others = times
    for jobs in others:
        print(f"--jobs {jobs} / --jobs {base}: {times[jobs] / times[base]:.2f}x "
              f"(target on 2 cores: <= 0.65x); same grades: {grades[jobs] == grades[base]}")
    print(f"(submissions and CSVs left in {folder})")


if __name__ == "__main__":
    main()
