"""Grade a class: the teacher edition once for the context, then every submission in a sandbox
of its own, several at a time, each check run by the grader itself.

1. **The teacher edition** runs first, in a sandbox (it may write the model cache, which the
   students' sandboxes then read): its checks hand over every argument, the *context* of each
   exercise. It then passes its own checks in the grader (else that exercise is not graded:
   grading it would be unfair), and stays alive so that context only it holds (``solve``,
   ``lang``) can be called.
2. **Each submission** is restored (``restore``: the teacher's check cells back in place,
   tampering noted), run in its own sandbox (``sandbox``, ``runner``), and after each check
   cell the grader runs the check itself (``judge``), calling into the sandbox for the student's
   own functions. ``jobs`` submissions run side by side; a submission that breaks a limit is
   stopped and scores 0 on what it did not reach, with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import codec, judge
from .restore import restore
from .rpc import Endpoint, RemoteError
from .sandbox import Limits, Sandbox

MAX_CAPTURES = 200
PLACEHOLDER = "*Your answer here.*"


@dataclass
class Session:
    """Everything the sandboxes of one grading run share."""

    work: Path
    mode: str
    limits: Limits
    env: dict
    cache: Path
    call_timeout: float = 120.0
    slots: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def slot(self) -> int:
        with self.lock:
            return self.slots.pop(0)

    def free(self, slot: int) -> None:
        with self.lock:
            self.slots.append(slot)


def _captures(outbox: Path, done: set) -> list[str]:
    """Names of capture messages not yet read, in the order the kernel wrote them."""
    found = []
    for path in outbox.glob("capture-*.json"):
        m = re.fullmatch(r"capture-(\d{1,9})\.json", path.name)
        if m and path.name not in done:
            found.append((int(m.group(1)), path.stem))
    return [name for _, name in sorted(found)[:MAX_CAPTURES]]


def _status(outbox: Path) -> dict:
    try:
        doc = json.loads(codec.read_file(outbox / "status.json", 1 << 20))
        return doc if isinstance(doc, dict) else {}
    except (codec.CodecError, ValueError):
        return {}


def _decode(endpoint: Endpoint, outbox: Path, name: str) -> dict:
    """A capture as ``{"label", "params", "strategies"}`` (or ``{"label", "error"}``)."""
    try:
        value, _ = endpoint._read(outbox, name)
    except (codec.CodecError, TypeError, ValueError, KeyError) as err:
        return {"label": None, "error": f"unreadable answers: {err}"}
    if not isinstance(value, dict) or not isinstance(value.get("label"), str):
        return {"label": None, "error": "unreadable answers"}
    params = value.get("params") if isinstance(value.get("params"), dict) else {}
    strategies = value.get("strategies") if isinstance(value.get("strategies"), dict) else {}
    return {"label": value["label"], "params": params, "strategies": strategies,
            "error": value.get("error") if isinstance(value.get("error"), str) else ""}


def _serve_loop(box: Sandbox, endpoint: Endpoint, on_capture) -> None:
    """Wait for the runner; at each ``pending-K`` hand the new captures to ``on_capture`` while
    the kernel serves, then release it."""
    done, k = set(), 0
    while True:
        alive = box.alive()
        if (box.outbox / f"pending-{k}.json").exists():
            served = box.outbox / f"served-{k}.json"
            endpoint.alive = lambda served=served: box.alive() and not served.exists()
            latest = {}  # a check called again in the same cell: only its last call counts
            for name in _captures(box.outbox, done):
                done.add(f"{name}.json")
                cap = _decode(endpoint, box.outbox, name)
                latest[cap["label"]] = cap
            for cap in latest.values():
                on_capture(cap)
            try:
                endpoint.release()
            except RemoteError:
                pass
            k += 1
            continue
        if not alive:
            break
        time.sleep(0.05)
    endpoint.alive = lambda: False
    for name in _captures(box.outbox, done):  # written, but the kernel stopped before serving
        on_capture(_decode(endpoint, box.outbox, name))


class Reference:
    """The teacher edition, run by the grader: the context of every check, kept callable."""

    def __init__(self, session: Session, notebook, expected: list[dict]):
        import nbformat

        self.session, self.expected = session, expected
        self.box = Sandbox(session.work / "reference", mode=session.mode,
                           limits=Limits(**{**session.limits.__dict__, "wall_s": 7 * 86400,
                                            "processes": 4096}),
                           env=session.env, cache=session.cache, trusted=True)
        nbformat.write(notebook, self.box.inbox / "notebook.ipynb")
        self.endpoint = Endpoint(self.box.inbox, self.box.outbox, "grader", export=True,
                                 trusted=True, timeout=session.call_timeout * 10,
                                 alive=self.box.alive)
        self.context: dict[str, dict] = {}
        self.strategies: dict[str, dict] = {}
        self.unfair: dict[str, str] = {}  # label -> why the teacher edition fails its check
        self.lock = threading.RLock()
        self.error = ""

    def run(self) -> None:
        """Run the teacher edition up to its last cell; leave its kernel serving."""
        self.box.start({"mode": "reference"})
        done, k = set(), 0
        while True:
            pending = self.box.outbox / f"pending-{k}.json"
            if pending.exists():
                for name in _captures(self.box.outbox, done):
                    done.add(f"{name}.json")
                    cap = _decode(self.endpoint, self.box.outbox, name)
                    if cap["label"]:
                        self.context[cap["label"]] = cap["params"]
                        self.strategies[cap["label"]] = cap["strategies"]
                if json.loads(pending.read_text()).get("final"):
                    break  # the kernel now waits for the checks' calls into it
                with self.lock:
                    self.endpoint.release()
                k += 1
                continue
            if not self.box.alive():
                status = _status(self.box.outbox)
                self.error = (self.box.reason or status.get("reason")
                              or "the teacher edition stopped; see runner.log")
                break
            time.sleep(0.05)
        for ex in self.expected:
            if ex["kind"] in ("compute", "predict") and ex["label"] not in self.context:
                self.unfair[ex["label"]] = ("the teacher edition never called this check" +
                                            (f" ({self.error})" if self.error else ""))

    def self_test(self) -> None:
        """The teacher's own answers must pass every check, else that exercise is not graded."""
        for ex in self.expected:
            label = ex["label"]
            if ex["kind"] not in ("compute", "predict") or label in self.unfair:
                continue
            passed, hint = self.check(ex, self.context[label], self.strategies.get(label, {}))
            if not passed:
                self.unfair[label] = f"the teacher edition fails this check: {hint}"

    def check(self, ex: dict, params: dict, strategies: dict) -> tuple[int, str]:
        check = judge.check_of(ex["label"], ex["kind"])
        with self.lock:
            return judge.run_check(check, params, self.context[ex["label"]], strategies,
                                   self.endpoint)

    def close(self) -> None:
        with self.lock:
            try:
                self.endpoint.release()
            except RemoteError:
                pass
        self.box.stop()


def grade_submission(session: Session, reference: Reference, edition, path: Path,
                     expected: list[dict]) -> dict:
    """Run one submission; ``{"results": {label: (passed, hint)}, "tampered", "reason",
    "answers", "error"}``."""
    import nbformat

    out = {"results": {}, "tampered": {}, "reason": "", "answers": {}, "error": "",
           "not_called": set()}
    try:
        submitted = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - any unreadable file scores zero, with its reason
        out["error"] = f"not executable: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
        return out
    out["answers"] = written_answers(submitted)
    notebook, out["tampered"] = restore(edition, submitted)
    slot = session.slot()
    box = Sandbox(session.work / f"s{slot}-{path.stem[:40]}-{time.monotonic_ns()}",
                  mode=session.mode, limits=session.limits, env=session.env,
                  cache=session.cache, slot=slot)
    try:
        nbformat.write(notebook, box.inbox / "notebook.ipynb")
        endpoint = Endpoint(box.inbox, box.outbox, "grader", export=False, trusted=False,
                            timeout=session.call_timeout, alive=box.alive)
        kinds = {e["label"]: e["kind"] for e in expected}

        def on_capture(cap):
            label = cap["label"]
            if label not in kinds or kinds[label] == "explain":
                return
            if label in reference.unfair:
                return
            if cap["error"]:
                out["results"][label] = (0, f"your answer could not be handed over: "
                                            f"{cap['error']}"[:judge.HINT_CHARS])
                return
            out["results"][label] = reference.check({"label": label, "kind": kinds[label]},
                                                    cap["params"], cap["strategies"])

        box.start({"mode": "student"})
        _serve_loop(box, endpoint, on_capture)
        status = _status(box.outbox)
        out["reason"] = box.reason or (status.get("reason") if isinstance(
            status.get("reason"), str) else "")
        out["status"] = status
        out["check_cells"] = {c.metadata["diffusion_lab"]["check"]: i
                              for i, c in enumerate(notebook.cells)
                              if c.get("metadata", {}).get("diffusion_lab", {}).get("check")}
    finally:
        box.stop()
        session.free(slot)
        shutil.rmtree(box.folder, ignore_errors=True)
    return out


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


def share_cache(cache: Path) -> None:
    """Let the sandboxes' own users read the model cache (a root grader only): safetensors
    writes weights readable by their owner alone. Adds read (and, for folders, enter)
    permission for others; changes nothing else."""
    if os.geteuid() != 0:
        return  # the sandboxes run as the grader's user, who can read them already
    for root, dirs, files in os.walk(cache):
        for name in dirs + files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            if not os.path.islink(path):
                extra = 0o005 if name in dirs else 0o004
                if info.st_mode & extra != extra:
                    os.chmod(path, info.st_mode | extra)
    os.chmod(cache, os.stat(cache).st_mode | 0o005)


def scratch() -> Path:
    """A private folder for one grading run's sandboxes (removed at the end)."""
    path = Path(tempfile.mkdtemp(prefix="dl-grade-"))
    os.chmod(path, 0o755)  # the sandboxes' own users must reach their folders
    return path
