"""Two editions of every notebook from one source: the student's and the teacher's.

The chapters in ``book/`` are the single source: they hold the exercises *and* their solutions,
and the book build executes them (so every solution is tested). ``python -m diffusion_lab
editions OUTDIR`` writes ``OUTDIR/teacher/`` (the source, outputs cleared) and ``OUTDIR/student/``
(solutions removed, checks and the Colab install cell kept), one notebook per notebook listed in
``_toc.yml``, at the same path relative to ``book/``. The book build calls :func:`build_editions`
too (``book/_ext/editions.py``).

**The tool: a documented nbformat filter, with otter-grader's solution syntax.** We tried the two
well-kept classroom tools first. nbgrader (0.9) wants a course directory layout
(``source/``/``release/``/``submitted/``), a database and a Jupyter server extension with
JupyterLab; otter-grader (7.0) wants its own notebook format (``# ASSIGNMENT CONFIG``/``# BEGIN
QUESTION`` raw cells, which Jupyter Book would render as text) and pulls in pandas, docker
bindings and a PDF exporter. Either would make the book's notebooks serve the tool rather than the
reader. The transformation itself is small, so it lives here on ``nbformat`` (already a dependency
of the book build), and it reads marks a teacher may know from those tools:

1. **sphinx-exercise solution blocks** (what the site renders as a dropdown): everything from
   ```` ```{solution-start} label ```` to ```` ```{solution-end} ```` is dropped from the student
   edition — Markdown text (also when the markers share a cell with other text) and whole code
   cells;
2. **otter-grader's solution syntax** in any code cell: the lines between ``# BEGIN SOLUTION`` and
   ``# END SOLUTION`` become ``...`` (same indentation); ``name = value  # SOLUTION`` becomes
   ``name = ...``; any other line ending in ``# SOLUTION`` becomes ``...``. A code cell inside a
   solution block that carries these marks is *kept* (stubbed) — it holds the student's answer
   slot and the call to the check;
3. **cell metadata** ``diffusion_lab.student``: the cell's source in the student edition (e.g.
   an "your answer" placeholder where the teacher edition has the model answer); such a cell is
   kept even inside a solution block. ``diffusion_lab.answer`` names the exercise it answers;
4. the **cell tag** ``teacher-only`` drops a cell from the student edition.

Exercise metadata lives on the Markdown cell that holds the ``:::{exercise}`` directive:
``metadata.diffusion_lab.exercise = {"kind", "difficulty", "minutes"}`` (the label comes from the
directive); :func:`exercises` reads it and the cell shows it in its first line
(:func:`exercise_line`).

Colab reaches a student notebook through GitHub: the Pages workflow pushes ``OUTDIR`` to the
branch ``editions`` of the repository in ``_config.yml`` (``repository.url``), so
:func:`colab_url` is ``https://colab.research.google.com/github/OWNER/REPO/blob/editions/student/
PATH``.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

from ..course.book import book_root, repository_url  # noqa: F401 - public here too

EDITIONS_BRANCH = "editions"
SOLUTION_START = re.compile(r"^[`:]{3,}\s*\{solution-start\}.*?^[`:]{3,}[ \t]*$", re.M | re.S)
SOLUTION_END = re.compile(r"^[`:]{3,}\s*\{solution-end\}.*?^[`:]{3,}[ \t]*$", re.M | re.S)
EXERCISE = re.compile(r"^[`:]{3,}\s*\{exercise\}(?P<title>[^\n]*)\n(?P<body>.*?)^[`:]{3,}[ \t]*$",
                      re.M | re.S)
LABEL = re.compile(r"^:label:\s*(\S+)", re.M)
KIND_NAMES = {"compute": "Compute (checked)", "predict": "Predict, then run",
              "explain": "Explain (graded by hand)"}


def _nbformat():
    try:
        import nbformat
    except ImportError as err:  # pragma: no cover - nbformat comes with the [book] extra
        raise ImportError("editions need nbformat: pip install -e '.[book]'") from err
    return nbformat


# ---------------------------------------------------------------- the filter


def strip_solution_code(source: str) -> str:
    """Apply otter-grader's solution syntax: solution lines become ``...``."""
    out, skipping = [], False
    for line in source.splitlines():
        mark = line.strip()
        indent = line[: len(line) - len(line.lstrip())]
        if mark.startswith("# BEGIN SOLUTION"):
            skipping = True
            out.append(f"{indent}...  # your code here")
        elif mark.startswith("# END SOLUTION"):
            skipping = False
        elif skipping:
            continue
        elif re.search(r"#\s*SOLUTION\s*$", line):
            m = re.match(r"^(\s*[\w.\[\]\"', ]+?\s*=)(?!=)", line)
            out.append(f"{m.group(1)} ...  # your answer" if m else f"{indent}...")
        else:
            out.append(line)
    if skipping:
        raise ValueError("a code cell has '# BEGIN SOLUTION' without '# END SOLUTION'")
    return "\n".join(out)


def _has_solution_marks(source: str) -> bool:
    return bool(re.search(r"#\s*(BEGIN SOLUTION|SOLUTION\s*$)", source, re.M))


def _split_markdown(source: str, inside: bool) -> tuple[str, bool]:
    """Remove the parts of a Markdown cell that lie inside solution blocks; ``inside`` says
    whether the cell starts inside one. Returns (kept text, inside at the end)."""
    kept, pos = [], 0
    while True:
        marker = (SOLUTION_END if inside else SOLUTION_START).search(source, pos)
        if marker is None:
            if not inside:
                kept.append(source[pos:])
            return "".join(kept), inside
        if not inside:
            kept.append(source[pos:marker.start()])
        pos, inside = marker.end(), not inside


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("diffusion_lab", {}) or {}


def student_notebook(nb):
    """The student edition of ``nb`` (a new notebook; ``nb`` is not changed)."""
    nbf = _nbformat()
    out = copy.deepcopy(nb)
    cells, inside = [], False
    for cell in out.cells:
        meta = _meta(cell)
        if "teacher-only" in cell.get("metadata", {}).get("tags", []):
            continue
        if "student" in meta:
            cell.source = meta["student"]
            cells.append(cell)
            continue
        if cell.cell_type == "markdown":
            text, inside = _split_markdown(cell.source, inside)
            text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
            if text.strip():
                cell.source = text
                cells.append(cell)
            continue
        if cell.cell_type == "code" and _has_solution_marks(cell.source):
            cell.source = strip_solution_code(cell.source)
            cells.append(cell)
        elif not inside:
            cells.append(cell)
    if inside:
        raise ValueError("a {solution-start} has no {solution-end}")
    out.cells = cells
    _clear(out)
    out.metadata.setdefault("diffusion_lab", {})["edition"] = "student"
    nbf.validate(out)
    return out


def teacher_notebook(nb):
    """The teacher edition: the source with solutions and model answers, outputs cleared."""
    out = copy.deepcopy(nb)
    _clear(out)
    out.metadata.setdefault("diffusion_lab", {})["edition"] = "teacher"
    return out


def _clear(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None


# ---------------------------------------------------------------- exercises


def exercises(nb) -> list[dict]:
    """The exercises of a notebook, in order: label, title, kind, difficulty, minutes."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for m in EXERCISE.finditer(cell.source):
            label = LABEL.search(m.group("body"))
            info = dict(_meta(cell).get("exercise", {}))
            found.append({"label": label.group(1) if label else "", "title":
                          m.group("title").strip(), "kind": info.get("kind", ""),
                          "difficulty": info.get("difficulty"), "minutes": info.get("minutes")})
    return found


def exercise_line(kind: str, difficulty: int, minutes: int) -> str:
    """The first line of an exercise's body: what the page shows of its metadata."""
    return f"*{KIND_NAMES[kind]} · difficulty {difficulty}/3 · about {minutes} min*"


# ---------------------------------------------------------------- the book


def toc_notebooks(root: Path | str | None = None) -> list[Path]:
    """Every notebook listed in ``root/_toc.yml`` (root and chapters, in order; ``root``: the
    book's checkout, `book_root`)."""
    root = book_root(root)
    toc = (root / "_toc.yml").read_text(encoding="utf-8")
    files = re.findall(r"^\s*(?:-\s*)?(?:root|file):\s*(\S+)", toc, re.M)
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").is_file()]


def edition_path(notebook: Path, root: Path | str | None = None) -> Path:
    """A notebook's path inside an edition folder: its path relative to ``book/``."""
    return Path(notebook).resolve().relative_to(book_root(root).resolve() / "book")


def colab_url(notebook: Path, edition: str = "student", root: Path | str | None = None) -> str:
    """Where Colab opens an edition of ``notebook`` (from the ``editions`` branch)."""
    if edition not in ("student", "teacher"):
        raise ValueError(f"edition must be 'student' or 'teacher', got {edition!r}")
    repo = repository_url(root).removeprefix("https://github.com/")
    path = edition_path(notebook, root).as_posix()
    return (f"https://colab.research.google.com/github/{repo}/blob/{EDITIONS_BRANCH}/"
            f"{edition}/{path}")


def build_editions(outdir: Path | str, root: Path | str | None = None) -> list[Path]:
    """Write ``outdir/student/`` and ``outdir/teacher/``; return the student notebooks."""
    nbf = _nbformat()
    outdir, written = Path(outdir), []
    for source in toc_notebooks(root):
        nb = nbf.read(source, as_version=4)
        rel = edition_path(source, root)
        for edition, make in (("teacher", teacher_notebook), ("student", student_notebook)):
            target = outdir / edition / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            nbf.write(make(nb), target)
        written.append(outdir / "student" / rel)
    return written
