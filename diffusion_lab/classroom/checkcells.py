"""Check cells: the cells of a student edition that call a check, split off, locked, checksummed.

nbgrader's approach, on this book's notebooks: an exercise's code cell holds the student's answer
slot *and* the call to its check (``dl.exercises.ch8.check_cheapest_threshold(tau, rows)``). The
student edition splits it in two: the answer slot (``metadata.diffusion_lab.slot = label``) and,
from the first top-level statement that calls a check to the end of the cell, the **check cell**
(``metadata.diffusion_lab.check = label`` and ``sha256`` of its source, plus Jupyter's
``editable: false`` / ``deletable: false``). A cell that calls a check and holds no answer slot
(e.g. a given helper that wraps one) is a check cell as a whole. Before a submission runs, the
grader puts the teacher's copy of every check cell back (``classroom.restore``).

A check call is a call of ``dl.exercises.<chapter>.check_*`` (its label is the check's
``label``) or of ``dl.exercises.check_prediction("label", ...)``.
"""

from __future__ import annotations

import ast
import copy
import hashlib

PREFIX = ("dl", "exercises")


def checksum(source: str) -> str:
    """SHA-256 of a cell's source: what a restored check cell must match."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def _dotted(node: ast.AST) -> tuple[str, ...] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return (node.id, *reversed(parts))


def call_label(call: ast.Call) -> str | None:
    """The exercise label a call checks, or None when it is not a check call."""
    name = _dotted(call.func)
    if not name or name[:2] != PREFIX or len(name) < 3:
        return None
    if name[2:] == ("check_prediction",):
        first = call.args[0] if call.args else None
        return first.value if isinstance(first, ast.Constant) and isinstance(
            first.value, str) else None
    from . import exercises  # the checks themselves (imports torch: only when a call is seen)

    target = exercises
    for part in name[2:]:
        target = getattr(target, part, None)
    return getattr(target, "label", None)


def check_labels(node: ast.AST) -> list[str]:
    """Labels of the check calls anywhere inside ``node``, in order."""
    return [label for n in ast.walk(node) if isinstance(n, ast.Call)
            for label in [call_label(n)] if label]


def _check_span(source: str) -> tuple[int, int, str] | None:
    """(first line, end line, label): the top-level statements from the first to the last one
    that calls a check (0-based, end exclusive), or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    span = None
    for stmt in tree.body:
        labels = check_labels(stmt)
        if labels:
            first = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
            span = (span[0], stmt.end_lineno, span[2]) if span else (first - 1, stmt.end_lineno,
                                                                      labels[0])
    return span


def calls_directly(source: str) -> bool:
    """True when running the cell calls its check (a check call outside any ``def``): a cell
    that only defines a helper calling it does not."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return any(check_labels(stmt) for stmt in tree.body
               if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))


def mark(cell, label: str) -> None:
    """Make ``cell`` the locked, checksummed check cell of ``label``."""
    meta = cell.metadata.setdefault("diffusion_lab", {})
    meta.pop("slot", None)
    meta.update(check=label, sha256=checksum(cell.source))
    cell.metadata["editable"] = False
    cell.metadata["deletable"] = False


def _part(cell, source: str, suffix: str):
    part = copy.deepcopy(cell)
    part.source = source
    if "id" in part and suffix:
        part["id"] = f"{part['id'][:56]}-{suffix}"
    return part


def split_check_cells(cells: list) -> list:
    """The student edition's cells with every check call in a check cell of its own: a code cell
    becomes (answer slot, check cell, the slot's rest) where those parts are not empty."""
    out = []
    for cell in cells:
        span = _check_span(cell.source) if cell.cell_type == "code" else None
        if span is None:
            out.append(cell)
            continue
        first, end, label = span
        lines = cell.source.splitlines()
        before, after = "\n".join(lines[:first]).rstrip(), "\n".join(lines[end:]).strip("\n")
        check = _part(cell, "\n".join(lines[first:end]), "check" if before.strip() else "")
        for text, suffix in ((before, ""), (after, "after")):
            if text.strip():
                part = _part(cell, text, suffix)
                part.metadata.setdefault("diffusion_lab", {}).setdefault("slot", label)
                out.append(part)
            if suffix == "":
                mark(check, label)
                out.append(check)
    return out


def check_cell_label(cell) -> str | None:
    """The label a cell's metadata says it checks (None for other cells)."""
    meta = cell.get("metadata", {}).get("diffusion_lab", {}) or {}
    label = meta.get("check") if cell.get("cell_type") == "code" else None
    return label if isinstance(label, str) else None
