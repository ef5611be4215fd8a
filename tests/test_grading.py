"""``python -m diffusion_lab grade`` against students who want the points without the work.

One grading run (``--jobs 2``, smoke profile) of a mini chapter (tests/fixtures/classroom/
mini.ipynb: a table to read, a function to write, a prediction, an explanation; seconds, no
model) over an honest right, an honest wrong and a blank submission beside one submission per
attack: results written to a log, checks rebound, check cells deleted / edited / moved, context
faked, the teacher's home and the submissions folder written, the teacher edition read, a
network connection to a listener of the test, an endless loop, a memory bomb, a fork bomb,
gigabytes printed, the disk filled, the kernel killed, files deleted. Each attack scores 0 (or
is contained and graded as its answers deserve) and is flagged where it touched a check cell;
the honest ones are graded right.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from diffusion_lab.classroom import editions, grading, sandbox
from diffusion_lab.classroom.examples import model_submission

ROOT = Path(__file__).resolve().parent.parent
MINI = ROOT / "tests" / "fixtures" / "classroom" / "mini.ipynb"
LABELS = ("ch8-ex1", "ch4-ex1", "ch0-ex2", "ch0-ex3")
NO_BWRAP = sandbox.problem()
# CI sets DIFFUSION_LAB_REQUIRE_SANDBOX=1 (.ci/run): there a machine that cannot sandbox fails
# these tests (grade refuses to run) instead of skipping them.
REQUIRED = bool(os.environ.get("DIFFUSION_LAB_REQUIRE_SANDBOX"))
needs_bwrap = pytest.mark.skipif(NO_BWRAP is not None and not REQUIRED,
                                 reason=f"no sandbox here: {NO_BWRAP}")


def _index(nb, **meta) -> int:
    (key, value), = meta.items()
    return next(i for i, c in enumerate(nb.cells)
                if c.metadata.get("diffusion_lab", {}).get(key) == value)


def _insert(nb, before: int, source: str):
    nb = copy.deepcopy(nb)
    nb.cells.insert(before, nbformat.v4.new_code_cell(source))
    return nb


def _slot(nb, label: str, source: str, nth: int = 0):
    nb = copy.deepcopy(nb)
    slots = [c for c in nb.cells if c.metadata.get("diffusion_lab", {}).get("slot") == label]
    slots[nth].source = source
    return nb


def submissions(folder: Path, port: int) -> dict:
    """Every submission of the run, by student name."""
    source = nbformat.read(MINI, as_version=4)
    right, blank = model_submission(source), editions.student_notebook(source)
    before_ch4 = _index(right, slot="ch4-ex1")
    after_setup = 2
    host = {"HOME": str(Path.home()), "SUBS": str(folder), "LIB": str(ROOT / "diffusion_lab"),
            "TEACHER": str(MINI), "CACHE": os.environ.get("DIFFUSION_LAB_CACHE", "")}
    wrong = _slot(_slot(_slot(right, "ch8-ex1", "tau = 0.5"), "ch4-ex1",
                        "def cosine_weight(t):\n    return t"), "ch0-ex2", 'observed = "linear"', 1)
    log_writer = _insert(blank, len(blank.cells), (
        "import json, os\n"
        "for label in ('ch8-ex1', 'ch4-ex1', 'ch0-ex2'):\n"
        "    dl.exercises.record(label, True)\n"
        "    for path in (os.environ.get('DIFFUSION_LAB_GRADE_LOG'), '/io/out/results.jsonl'):\n"
        "        if path:\n"
        "            with open(path, 'a') as f:\n"
        "                f.write(json.dumps({'exercise': label, 'passed': 1, 'hint': ''}))\n"
        "json.dump({'state': 'finished', 'cell': 99}, open('/io/out/status.json', 'w'))"))
    rebinder = _insert(blank, after_setup, (
        "import diffusion_lab as dl\n"
        "ok = lambda *args, **kwargs: True\n"
        "dl.exercises.ch8.check_cheapest_threshold = ok\n"
        "dl.exercises.ch4.check_cosine_weight = ok\n"
        "dl.exercises.check_prediction = ok"))
    tampered = copy.deepcopy(right)
    tampered.cells[_index(tampered, check="ch4-ex1")].source = "print('checked')"
    del tampered.cells[_index(tampered, check="ch8-ex1")]
    moved = tampered.cells.pop(_index(tampered, check="ch0-ex2"))
    tampered.cells.insert(after_setup, moved)
    no_checks = copy.deepcopy(blank)
    no_checks.cells = [c for c in no_checks.cells if "check" not in c.metadata.get(
        "diffusion_lab", {})]
    fake = _insert(_slot(right, "ch8-ex1", "tau = 0.5"), _index(right, slot="ch8-ex1"),
                   "rows['threshold 0.5'] = dict(acc=0.81, passes1=1.0)")
    home = _insert(right, after_setup, (
        "for target in ('~/pwned.txt', '{HOME}/pwned.txt', '{SUBS}/pwned.txt', '{LIB}/pwned.txt',"
        " '{CACHE}/pwned.txt', '/tmp/pwned.txt'):\n"
        "    try:\n"
        "        open(__import__('os').path.expanduser(target), 'w').write('pwned')\n"
        "    except OSError:\n"
        "        pass").format(**host))
    reader = _slot(right, "ch8-ex1", (
        "import glob, json\n"
        "tau = None\n"
        "for path in ['{TEACHER}', '{SUBS}/right.ipynb', *glob.glob('/tmp/dl-grade-*/*/in/*')]:\n"
        "    try:\n"
        "        tau = 0.9 if 'BEGIN SOLUTION' in open(path).read() or 'tau = 0.9' in open(path)"
        ".read() else tau\n"
        "    except OSError:\n"
        "        pass").format(**host))
    network = _slot(right, "ch8-ex1", (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'tau?')\n"
        "    tau = 0.9\n"
        "except OSError:\n"
        "    tau = None"))
    loop = _insert(right, before_ch4, (
        "import time\n"
        "while True:\n"
        "    try:\n"
        "        time.sleep(1)\n"
        "    except KeyboardInterrupt:\n"
        "        pass"))
    memory = _insert(right, before_ch4, (
        "def bomb():\n"
        "    blocks = []\n"
        "    while True:\n"
        "        blocks.append(bytearray(256 << 20))\n"
        "bomb()"))
    forks = _insert(right, before_ch4, (
        "import os\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError:\n"
        "        pass"))
    printer = _insert(right, before_ch4, "while True:\n    print('x' * (1 << 20))")
    suicide = _insert(right, before_ch4, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    filler = _insert(right, before_ch4, (
        "import itertools, os\n"
        "for folder in ('/tmp', os.path.expanduser('~')):\n"
        "    try:\n"
        "        with open(os.path.join(folder, 'fill'), 'wb') as f:\n"
        "            while True:\n"
        "                f.write(b'x' * (1 << 20))\n"
        "    except OSError:\n"
        "        pass\n"
        "for i in itertools.count():\n"
        "    try:\n"
        "        with open(f'/io/out/fill-{i}', 'wb') as f:\n"
        "            f.write(b'x' * (16 << 20))\n"
        "    except OSError:\n"
        "        pass"))
    deleter = _insert(right, after_setup, (
        "import os, shutil\n"
        "for path in ('/io', '/home', '/tmp', '/dl', '{SUBS}', '{HOME}', '{LIB}'):\n"
        "    shutil.rmtree(path, ignore_errors=True)\n"
        "os.system('rm -rf / 2>/dev/null')").format(**host))
    return {"right": right, "wrong": wrong, "blank": blank, "log_writer": log_writer,
            "rebinder": rebinder, "tampered": tampered, "no_checks": no_checks, "fake": fake,
            "home": home, "reader": reader, "network": network, "loop": loop,
            "memory": memory, "forks": forks, "printer": printer, "suicide": suicide,
            "filler": filler, "deleter": deleter}


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    heard = []

    def listen():
        while not stop.is_set():
            try:
                heard.append(listener.accept())
            except OSError:
                continue

    stop = threading.Event()
    threading.Thread(target=listen, daemon=True).start()
    for name, nb in submissions(folder, listener.getsockname()[1]).items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    (folder / "broken.ipynb").write_text('{"cells": [ not json', encoding="utf-8")
    watched = {"subs": folder, "lib": ROOT / "diffusion_lab"}
    before = {k: _digest(v) for k, v in watched.items()}
    out = folder.parent / "grades.csv"
    run = subprocess.run([sys.executable, "-m", "diffusion_lab", "grade", str(folder),
                          "--chapter", str(MINI), "--out", str(out), "--profile", "smoke",
                          "--timeout", "40", "--jobs", "2", "--memory", "2048", "--output", "8",
                          "--disk", "128"],
                         capture_output=True, text=True, timeout=1800)
    stop.set()
    listener.close()
    assert run.returncode == 0, run.stderr[-3000:]
    after = {k: _digest(v) for k, v in watched.items()}
    with open(out, newline="") as f:
        rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(f)}
    return {"rows": rows, "before": before, "after": after, "stdout": run.stdout,
            "heard": heard, "out": out}


def _passed(graded, student) -> list[str]:
    return [graded["rows"][student, label]["passed"] for label in LABELS]


def _hint(graded, student, label) -> str:
    return graded["rows"][student, label]["hint"]


@needs_bwrap
def test_honest_submissions_are_graded_right(graded):
    rows = graded["rows"]
    assert list(next(iter(rows.values()))) == grading.FIELDS
    assert _passed(graded, "right") == ["1", "1", "1", ""]
    assert "tau = 0.9" in _hint(graded, "right", "ch8-ex1")
    assert _hint(graded, "right", "ch0-ex3").startswith("hand-graded: ")
    assert _passed(graded, "wrong") == ["0", "0", "0", ""]
    assert "more than 1 point" in _hint(graded, "wrong", "ch8-ex1")
    assert "wrong at t" in _hint(graded, "wrong", "ch4-ex1")
    assert "does not agree" in _hint(graded, "wrong", "ch0-ex2")
    assert _passed(graded, "blank") == ["0", "0", "0", ""]
    assert "empty" in _hint(graded, "blank", "ch4-ex1")
    assert _hint(graded, "blank", "ch0-ex3") == "hand-graded: no answer written"
    for student in ("right", "wrong", "blank"):
        assert not any(rows[student, label]["tampered"] for label in LABELS)
        assert all(rows[student, label]["sandbox"] == "bwrap" for label in LABELS)


@needs_bwrap
def test_results_written_or_checks_rebound_score_zero(graded):
    assert _passed(graded, "log_writer") == ["0", "0", "0", ""]
    assert _passed(graded, "rebinder") == ["0", "0", "0", ""]
    for label in LABELS[:3]:
        assert "never called" in _hint(graded, "rebinder", label)
        assert graded["rows"]["rebinder", label]["tampered"] == "check not called"


@needs_bwrap
def test_tampered_check_cells_are_restored_and_flagged(graded):
    rows = graded["rows"]
    assert _passed(graded, "tampered") == ["1", "1", "1", ""]  # graded by the teacher's cells
    assert [rows["tampered", label]["tampered"] for label in LABELS] == [
        "check cell deleted", "check cell edited", "check cell moved", ""]
    assert _passed(graded, "no_checks") == ["0", "0", "0", ""]
    assert all(rows["no_checks", label]["tampered"] == "check cell deleted"
               for label in LABELS[:3])
    assert "TAMPERED: ch8-ex1, ch4-ex1, ch0-ex2" in graded["stdout"]


@needs_bwrap
def test_faked_context_is_graded_against_the_teachers(graded):
    assert _passed(graded, "fake")[0] == "0"


@needs_bwrap
def test_nothing_outside_the_sandbox_is_read_or_written(graded):
    assert graded["before"] == graded["after"]  # submissions and library unchanged
    assert not (Path.home() / "pwned.txt").exists()
    cache = os.environ.get("DIFFUSION_LAB_CACHE")
    assert not cache or not (Path(cache) / "pwned.txt").exists()
    assert _passed(graded, "home") == ["1", "1", "1", ""]  # contained, graded as it answered
    assert _passed(graded, "reader")[0] == "0"  # the teacher edition was not there to read
    assert _passed(graded, "network")[0] == "0" and graded["heard"] == []
    assert _passed(graded, "deleter") == ["1", "1", "1", ""]


@needs_bwrap
@pytest.mark.parametrize("student, reason", [
    ("loop", "did not stop"), ("forks", "too many processes"),
    # the printer's kernel buffers what it prints: the output cap or the memory cap stops it,
    # whichever comes first on the machine (a CI-like run on 2 quiet cores: memory)
    ("printer", ("printed more", "more memory")),
    ("suicide", "kernel died"), ("memory", "more memory"), ("filler", "wrote more than 128 MB")])
def test_a_runaway_scores_zero_on_what_it_did_not_reach(graded, student, reason):
    assert _passed(graded, student) == ["1", "0", "0", ""]
    reasons = reason if isinstance(reason, tuple) else (reason,)
    for label in ("ch4-ex1", "ch0-ex2"):
        hint = _hint(graded, student, label)
        assert "not reached" in hint and any(r in hint for r in reasons), hint


@needs_bwrap
def test_broken_file_feedback_and_report(graded):
    for label in LABELS[:3]:
        assert _hint(graded, "broken", label).startswith("not executable")
    assert "right: 3/3 checked exercises passed; 1 to grade by hand" in graded["stdout"]
    folder = grading.feedback_folder(graded["out"])
    text = (folder / "right.md").read_text()
    assert "## ch0-ex3" in text and "> *Model answer.*" in text and "**passed**" in text
    assert "check cell deleted" in (folder / "tampered.md").read_text()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        grading.grade(tmp_path / "nope", 1, tmp_path / "g.csv")
    with pytest.raises(ValueError, match="no .ipynb"):
        grading.grade(tmp_path, MINI, tmp_path / "g.csv")
    with pytest.raises(ValueError, match="profile"):
        grading.grade(tmp_path, MINI, tmp_path / "g.csv", profile="fast")
    with pytest.raises(ValueError, match="jobs"):
        grading.grade(tmp_path, MINI, tmp_path / "g.csv", jobs=0)
    with pytest.raises(ValueError, match="sandbox"):
        grading.sandbox_mode("docker")
    with pytest.raises(ValueError, match="chapter"):
        grading.find_chapter("99", ROOT)
    assert grading.find_chapter(5, ROOT).parent.name.startswith("05_")


def test_without_bwrap_the_grader_refuses_or_flags(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    assert "not installed" in sandbox.problem()
    with pytest.raises(RuntimeError, match="--sandbox rlimits"):
        grading.sandbox_mode("auto")
    assert grading.sandbox_mode("rlimits") == "rlimits"


def test_default_jobs_follow_usable_cpus(monkeypatch):
    monkeypatch.setattr("diffusion_lab.runtime.usable_cpus", lambda: 8)
    assert grading.default_jobs(1) == 8 and grading.default_jobs(2) == 4
    assert grading.default_jobs(16) == 1


@pytest.fixture(scope="module")
def chapter8(tmp_path_factory):
    """The real chapter 8 student edition (smoke profile: its models train in seconds):
    a right, a blank and a rebinding submission."""
    folder = tmp_path_factory.mktemp("chapter8")
    source = nbformat.read(grading.find_chapter("8", ROOT), as_version=4)
    right = model_submission(source)
    rebinder = _insert(editions.student_notebook(source), 3, (
        "import diffusion_lab as dl\n"
        "dl.exercises.ch8.check_cheapest_threshold = lambda *args, **kwargs: True\n"
        "dl.exercises.check_prediction = lambda *args, **kwargs: True"))
    for name, nb in (("right", right), ("blank", editions.student_notebook(source)),
                     ("rebinder", rebinder)):
        nbformat.write(nb, folder / f"{name}.ipynb")
    out = folder / "grades.csv"
    rows = grading.grade(folder, 8, out, profile="smoke", timeout=300, jobs=2, progress=False,
                         root=ROOT)
    return {(r["student"], r["exercise"]): r for r in rows}


@needs_bwrap
def test_chapter8_end_to_end(chapter8):
    assert [chapter8["right", e]["passed"] for e in ("ch8-ex1", "ch8-ex2", "ch8-ex3")] == [
        1, 1, ""]
    assert [chapter8["blank", e]["passed"] for e in ("ch8-ex1", "ch8-ex2")] == [0, 0]
    assert [chapter8["rebinder", e]["passed"] for e in ("ch8-ex1", "ch8-ex2")] == [0, 0]
    assert chapter8["rebinder", "ch8-ex1"]["tampered"] == "check not called"


def test_the_weaker_mode_grades_and_says_so(tmp_path):
    """``--sandbox rlimits`` (where bubblewrap cannot run): limits, no isolation, every row says
    so."""
    source = nbformat.read(MINI, as_version=4)
    nbformat.write(model_submission(source), tmp_path / "right.ipynb")
    rows = grading.grade(tmp_path, MINI, tmp_path / "g.csv", profile="smoke", timeout=120,
                         jobs=1, sandbox="rlimits", progress=False)
    assert [r["passed"] for r in rows] == [1, 1, 1, ""]
    assert {r["sandbox"] for r in rows} == {"rlimits only: NOT isolated"}
