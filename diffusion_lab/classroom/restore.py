"""The notebook the grader runs: the student's answers inside the teacher's check cells.

nbgrader restores its locked cells from the release before it executes a submission, and its
checksums tell it which ones a student changed. Here the release is the student edition the
grader builds itself from the book's source (`editions.student_notebook`), and:

* every **check cell** (``checkcells``) runs as the teacher wrote it, at its place, whatever the
  submission holds there; one edited, moved or deleted is reported as *tampered*, by label;
* every other cell of the edition runs as the student left it (their answers, and their edits
  of the chapter's own code); a deleted cell of the chapter's code is put back, a deleted answer
  slot is not (its stub would undo an answer the student wrote in a cell of their own);
* cells the student added run where they put them (after the edition's cell they followed).

Cells are matched by their nbformat id, then by their role (the check or answer slot of a label,
in order), then by identical source.
"""

from __future__ import annotations

import copy
from collections import defaultdict

from .checkcells import check_cell_label, checksum


def _role(cell) -> tuple | None:
    meta = cell.get("metadata", {}).get("diffusion_lab", {}) or {}
    label = check_cell_label(cell)
    if label:
        return ("check", label)
    for key in ("slot", "answer"):
        if isinstance(meta.get(key), str):
            return (key, meta[key])
    return None


def _keys(cells) -> list:
    """(role, occurrence) of each cell, or None."""
    seen, out = defaultdict(int), []
    for cell in cells:
        role = _role(cell)
        if role is None:
            out.append(None)
        else:
            out.append((*role, seen[role]))
            seen[role] += 1
    return out


def match(reference, submission) -> dict[int, int]:
    """``{submission index: reference index}`` for the submission's cells that are the edition's."""
    ref, sub = reference.cells, submission.cells
    used, mapping = set(), {}
    by_id = {c.get("id"): i for i, c in enumerate(ref) if c.get("id")}
    ref_keys, sub_keys = _keys(ref), _keys(sub)
    by_key = {k: i for i, k in enumerate(ref_keys) if k is not None}
    for j, cell in enumerate(sub):  # 1. the same id, unless the cell says it has another role
        i = by_id.get(cell.get("id"))
        if i is not None and i not in used and _role(cell) in (None, _role(ref[i])):
            mapping[j] = i
            used.add(i)
    for j, key in enumerate(sub_keys):  # 2. the same role (check / slot / answer of a label)
        i = by_key.get(key)
        if j not in mapping and i is not None and i not in used:
            mapping[j] = i
            used.add(i)
    by_source = defaultdict(list)
    for i, cell in enumerate(ref):
        if i not in used:
            by_source[(cell.cell_type, cell.source)].append(i)
    for j, cell in enumerate(sub):  # 3. an unchanged cell (its id and metadata lost)
        free = by_source.get((cell.get("cell_type"), cell.get("source")), [])
        if j not in mapping and free and _role(cell) is None:
            mapping[j] = free.pop(0)
    return mapping


def _increasing(seq: list[int]) -> set[int]:
    """Positions of one longest increasing subsequence of ``seq`` (patience sorting)."""
    import bisect

    tails, tail_pos, prev = [], [], [-1] * len(seq)
    for p, x in enumerate(seq):
        k = bisect.bisect_left(tails, x)
        if k == len(tails):
            tails.append(x)
            tail_pos.append(p)
        else:
            tails[k], tail_pos[k] = x, p
        prev[p] = tail_pos[k - 1] if k else -1
    keep, p = set(), tail_pos[-1] if tail_pos else -1
    while p >= 0:
        keep.add(p)
        p = prev[p]
    return keep


def restore(reference, submission):
    """``(notebook to run, tampered)``: ``tampered`` maps an exercise label to what happened to
    its check cell (``"edited"``, ``"moved"``, ``"deleted"``)."""
    ref = reference.cells
    mapping = match(reference, submission)
    tampered: dict[str, str] = {}
    order = sorted(mapping)  # submission order
    in_order = _increasing([mapping[j] for j in order])
    found = {i: j for j, i in mapping.items()}
    for i, cell in enumerate(ref):
        label = check_cell_label(cell)
        if not label:
            continue
        j = found.get(i)
        if j is None:
            tampered.setdefault(label, "deleted")
        elif checksum(submission.cells[j].get("source", "")) != checksum(cell.source):
            tampered.setdefault(label, "edited")
        elif order.index(j) not in in_order:
            tampered.setdefault(label, "moved")
    added = defaultdict(list)  # reference index a student's own cell follows (-1: the top)
    last = -1
    for j, cell in enumerate(submission.cells):
        if j in mapping:
            last = mapping[j]
        else:
            added[last].append(cell)
    cells = [_own(c) for c in added[-1]]
    for i, cell in enumerate(ref):
        j = found.get(i)
        if j is None and (_role(cell) or ("",))[0] in ("slot", "answer"):
            cells += [_own(c) for c in added[i]]
            continue
        chosen = copy.deepcopy(cell)
        if j is not None and not check_cell_label(cell):
            chosen.source = submission.cells[j].get("source", "")
        cells.append(chosen)
        cells += [_own(c) for c in added[i]]
    out = copy.deepcopy(reference)
    for cell in cells:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    out.cells = cells
    _unique_ids(out)
    return out, tampered


def _own(cell):
    """A cell the student added, as a plain cell (a copied check cell is not a check cell)."""
    cell = copy.deepcopy(cell)
    meta = cell.get("metadata", {}).get("diffusion_lab")
    if isinstance(meta, dict):
        for key in ("check", "sha256", "slot", "answer"):
            meta.pop(key, None)
    return cell


def _unique_ids(nb) -> None:
    seen = set()
    for n, cell in enumerate(nb.cells):
        if "id" in cell and (not cell["id"] or cell["id"] in seen):
            cell["id"] = f"restored-{n}"
        if "id" in cell:
            seen.add(cell["id"])
