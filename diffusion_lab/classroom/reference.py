"""The teacher edition, run by the grader first: the context of every check, kept callable.

It runs in a sandbox too (it may write the model cache, which the students' sandboxes then only
read); its checks hand over every argument — the *context* of each exercise (``rows``, a model,
a ``solve`` closure) as well as the teacher's answers. Each exercise's check must pass on the
teacher's own answers (`Reference.self_test`), else it is not graded: grading it would be unfair.
The kernel then stays alive, so that context only it holds can be called from the checks.
"""

from __future__ import annotations

import json
import threading
import time

import nbformat

from . import judge
from .grader import Session, _captures, _decode, _status
from .rpc import Endpoint, RemoteError
from .sandbox import Limits, Sandbox


class Reference:
    """The teacher edition, run by the grader: the context of every check, kept callable."""

    def __init__(self, session: Session, notebook, expected: list[dict]):
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
        """Release the teacher's kernel and stop its sandbox (whatever state it is in)."""
        with self.lock:
            try:
                if self.box.alive():
                    self.endpoint.release()
            except (RemoteError, OSError, ValueError):
                pass
        self.box.stop()
