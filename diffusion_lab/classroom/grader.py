"""Grade one submission: restored, run in a sandbox of its own, each check run by the grader.

The teacher edition has run first (``classroom.reference``: the context). A submission is
restored (``restore``: the teacher's check cells back in place, tampering noted) and run in its
own sandbox (``sandbox``, ``runner``); after each cell in which a check was called, the grader
runs that check itself (``judge``) while the kernel waits, calling into the sandbox for the
student's own functions, then lets the kernel go on. Several submissions run side by side
(``grading.grade``'s ``jobs``); one that breaks a limit is stopped and scores 0 on what it did
not reach, with the reason.
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
from typing import TYPE_CHECKING

from . import codec, judge
from .checkcells import calls_directly
from .restore import restore
from .results import written_answers
from .rpc import Endpoint, RemoteError
from .sandbox import Limits, Sandbox

if TYPE_CHECKING:
    from .reference import Reference

MAX_CAPTURES = 200
KEEP_ENV = "DIFFUSION_LAB_GRADE_KEEP"  # set: keep each sandbox's folder (runner.log) to debug


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
    slot = session.slot()  # a user id this run holds (a root grader), else a number
    box = Sandbox(session.work / f"s{slot}-{path.stem[:40]}-{time.monotonic_ns()}",
                  mode=session.mode, limits=session.limits, env=session.env,
                  cache=session.cache, uid=slot)
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
        if not out["reason"] and status.get("state") != "finished":
            out["reason"] = (f"the notebook stopped in cell {status.get('cell')} (its runner "
                             "was killed)" if status else "the sandbox left no status")
        out["status"] = status
        out["check_cells"] = {c.metadata["diffusion_lab"]["check"]: i  # those that call it
                              for i, c in enumerate(notebook.cells)
                              if c.get("metadata", {}).get("diffusion_lab", {}).get("check")
                              and calls_directly(c.source)}
    finally:
        box.stop()
        session.free(slot)
        if not os.environ.get(KEEP_ENV):
            shutil.rmtree(box.folder, ignore_errors=True)
    return out


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
