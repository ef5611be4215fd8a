"""A model submission: the student edition with every answer slot filled by the teacher's code.

What a perfect student hands in, cell for cell (the check cells untouched), so that a teacher can
try the grader on a chapter before the class does, and the tests and ``bench/bench_grading.py``
have right answers to grade beside wrong and hostile ones.
"""

from __future__ import annotations

import copy
import re

from . import editions
from .checkcells import _check_span


def _teacher_code(source: str) -> tuple[str, str]:
    """(before the check call, after it) of a teacher's cell, solution marks removed."""
    span = _check_span(source)
    lines = source.splitlines()
    first, end = (span[0], span[1]) if span else (len(lines), len(lines))
    def clean(part):
        kept = [re.sub(r"\s*#\s*SOLUTION\s*$", "", ln) for ln in part
                if not re.match(r"\s*#\s*(BEGIN|END) SOLUTION", ln)]
        return "\n".join(kept).strip("\n")
    return clean(lines[:first]), clean(lines[end:])


def model_submission(source):
    """The student edition of ``source`` (a book notebook) with the teacher's answers in it."""
    student = editions.student_notebook(source)
    teacher = {c.get("id"): c for c in source.cells if c.get("id")}
    answers = {c.metadata["diffusion_lab"]["answer"]: c.source for c in source.cells
               if isinstance(c.get("metadata", {}).get("diffusion_lab", {}).get("answer"), str)}
    out = copy.deepcopy(student)
    for cell in out.cells:
        meta = cell.get("metadata", {}).get("diffusion_lab", {}) or {}
        if "slot" in meta:
            key = cell.get("id", "")
            original = teacher.get(key.removesuffix("-after"))
            if original is not None:
                before, after = _teacher_code(original.source)
                cell.source = after if key.endswith("-after") else before
        elif isinstance(meta.get("answer"), str):
            cell.source = answers.get(meta["answer"], cell.source)
    return out
