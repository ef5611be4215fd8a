"""What a grading run hands back: a CSV row per student and exercise, a feedback file per
student, a short report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .reference import Reference

PLACEHOLDER = "*Your answer here.*"


def written_answers(nb) -> dict[str, str]:
    """The text of each hand-graded answer cell (``metadata.diffusion_lab.answer``)."""
    found = {}
    for cell in nb.cells:
        label = (cell.get("metadata", {}).get("diffusion_lab", {}) or {}).get("answer")
        if isinstance(label, str):
            text = cell.get("source", "").replace(PLACEHOLDER, "")
            found[label] = re.sub(r"\*\*Your answer[^*]*\*\*", "", text).strip()
    return found


def rows_of(student: str, result: dict, expected: list[dict], reference: Reference,
            sandbox_note: str) -> list[dict]:
    """One CSV row per exercise for one graded submission."""
    rows, status = [], result.get("status", {})
    errors = status.get("errors", {}) if isinstance(status.get("errors"), dict) else {}
    last = status.get("cell", -1) if isinstance(status.get("cell"), int) else -1
    finished = status.get("state") == "finished"
    for ex in expected:
        label = ex["label"]
        tampered = result["tampered"].get(label, "")
        tampered = f"check cell {tampered}" if tampered else ""
        if ex["kind"] == "explain":
            words = len(result["answers"].get(label, "").split())
            passed, hint = "", (f"hand-graded: {words} words" if words else
                                "hand-graded: no answer written")
        elif label in reference.unfair:
            passed, hint = "", f"not graded: {reference.unfair[label]}"
        elif label in result["results"]:
            passed, hint = result["results"][label]
        else:
            passed, hint = 0, _why_not_run(result, label, errors, last, finished)
            cell = result.get("check_cells", {}).get(label)
            if cell is not None and (finished or last > cell) and str(cell) not in errors:
                hint = "the check cell ran but the check was never called (was it replaced?)"
                tampered = "; ".join(x for x in (tampered, "check not called") if x)
        rows.append({"student": student, "exercise": label, "passed": passed, "hint": hint,
                     "tampered": tampered, "sandbox": sandbox_note})
    return rows


def _why_not_run(result: dict, label: str, errors: dict, last: int, finished: bool) -> str:
    if result.get("error"):
        return result["error"]
    cell = result.get("check_cells", {}).get(label)
    if cell is not None and str(cell) in errors:
        return f"the check did not run ({errors[str(cell)]})"
    reason = result.get("reason") or ""
    if reason and (cell is None or not finished and last <= cell):
        return f"not reached: {reason}"
    first = next(iter(errors.values()), "") if errors else ""
    return "the check did not run" + (f" ({first})" if first else "")


def feedback_folder(out: Path | str) -> Path:
    """Where the per-student feedback files go: ``grades.csv`` -> ``grades-feedback/``."""
    out = Path(out)
    return out.with_name(f"{out.stem}-feedback")


def write_feedback(out: Path, rows: list[dict], answers: dict, expected: list[dict]) -> None:
    """One Markdown file per student: each exercise, passed or not, its hint, and the student's
    written answers to the hand-graded ones."""
    folder = feedback_folder(out)
    folder.mkdir(parents=True, exist_ok=True)
    titles = {e["label"]: e["title"] for e in expected}
    for student in dict.fromkeys(r["student"] for r in rows):
        mine = [r for r in rows if r["student"] == student]
        lines = [f"# {student}", "", report(mine), ""]
        for r in mine:
            mark = {1: "passed", 0: "not passed", "": "to grade by hand"}.get(r["passed"], "")
            lines += [f"## {r['exercise']}: {titles.get(r['exercise'], '')}", "",
                      f"**{mark}**" + (f" — {r['hint']}" if r["hint"] else ""), ""]
            if r["tampered"]:
                lines += [f"*Note:* {r['tampered']} (graded with the teacher's check cell).", ""]
            if r["passed"] == "" and r["hint"].startswith("hand-graded"):
                text = answers.get(student, {}).get(r["exercise"], "")
                lines += ["> " + line for line in (text or "(no answer written)").splitlines()]
                lines.append("")
        (folder / f"{student}.md").write_text("\n".join(lines), encoding="utf-8")


def report(rows: list[dict]) -> str:
    """A short text report: per student, checked exercises passed and answers to read."""
    lines = []
    for student in dict.fromkeys(r["student"] for r in rows):
        mine = [r for r in rows if r["student"] == student]
        checked = [r for r in mine if r["passed"] != ""]
        passed = sum(int(r["passed"]) for r in checked)
        by_hand = sum(1 for r in mine if r["passed"] == "" and r["hint"].startswith("hand"))
        failed = ", ".join(r["exercise"] for r in checked if not int(r["passed"]))
        tampered = ", ".join(r["exercise"] for r in mine if r.get("tampered"))
        lines.append(f"{student}: {passed}/{len(checked)} checked exercises passed"
                     + (f" (failed: {failed})" if failed else "")
                     + (f"; {by_hand} to grade by hand" if by_hand else "")
                     + (f"; TAMPERED: {tampered}" if tampered else ""))
    return "\n".join(lines)
