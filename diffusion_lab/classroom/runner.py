"""Inside the sandbox: execute one notebook cell by cell and let the grader in after each check.

``runner.py /io/in/job.json`` (started by ``classroom.sandbox``, by its path: it imports
nbclient, not the library)
runs the restored notebook with ``nbclient``, one cell at a time, with a per-cell timeout that
interrupts the kernel (and stops it if it does not stop), an output budget (past it the kernel is
interrupted; far past it, stopped) and errors allowed (a failing exercise does not hide the next).
Outputs are counted and dropped: nothing a cell prints reaches the grader except the first line of
its error.

After every cell in which a check handed over its arguments (``capture-N`` in the outbox), the
runner writes ``pending-K.json`` and runs `capture.serve` in the kernel, so that the grader can
call the student's functions while it runs its own checks; the grader's ``release`` ends it.
``status.json`` says how far the notebook got. Everything here runs with the student's rights:
the grader reads what it writes as untrusted data, and no file of it can raise a grade.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

SERVE = "__import__('diffusion_lab.classroom.capture', fromlist=['serve']).serve()"
PROBE_TIMEOUT = 10  # s a kernel gets to answer after an interrupted cell


def _write_json(path: Path, value) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


def _client_class():
    from nbclient import NotebookClient
    from nbclient.util import ensure_async

    class BudgetClient(NotebookClient):
        """Drops outputs after counting them; interrupts, then stops, a kernel that prints too
        much; keeps each cell's first error."""

        output_budget = 64 << 20
        printed = 0
        over_budget = False
        errors: dict = {}

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            if msg.get("msg_type") == "error" and cell_index not in self.errors:
                self.errors[cell_index] = f"{content.get('ename', '')}: " \
                                          f"{content.get('evalue', '')}".strip()[:300]
            size = len(json.dumps(content.get("data", content.get("text", ""))))
            self.printed += size
            if self.printed > self.output_budget and not self.over_budget:
                self.over_budget = True
                asyncio.ensure_future(ensure_async(self.km.interrupt_kernel()))
            if self.printed > 4 * self.output_budget:
                asyncio.ensure_future(ensure_async(self.km.shutdown_kernel(now=True)))
            return None

        async def _check_raise_for_error(self, cell, cell_index, exec_reply):
            content = (exec_reply or {}).get("content", {})
            if content.get("status") == "error" and cell_index not in self.errors:
                # a timeout's reply has no error output: read it here
                self.errors[cell_index] = f"{content.get('ename', '')}: " \
                                          f"{content.get('evalue', '')}".strip()[:300]
            return await super()._check_raise_for_error(cell, cell_index, exec_reply)

    return BudgetClient


def run(job: dict) -> dict:
    """Execute ``job["notebook"]``; return (and keep writing) the status."""
    import nbformat
    from nbclient.exceptions import DeadKernelError

    outbox, inbox = Path(job["outbox"]), Path(job["inbox"])
    nb = nbformat.read(job["notebook"], as_version=4)
    os.environ.update({"DIFFUSION_LAB_CAPTURE": str(outbox), "DIFFUSION_LAB_INBOX": str(inbox),
                       "DIFFUSION_LAB_CAPTURE_MODE": job.get("mode", "student")})
    client = _client_class()(
        nb, timeout=job["cell_timeout"], kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=True, resources={"metadata": {"path": job["workdir"]}},
        error_on_timeout={"ename": "CellTimeoutError",
                          "evalue": f"the cell ran over {job['cell_timeout']} s"})
    client.output_budget = int(job.get("output_budget", 64 << 20))
    client.errors = {}
    status = {"state": "running", "cell": -1, "cells": len(nb.cells), "errors": {},
              "timeouts": [], "pending": 0, "reason": ""}
    captures = 0
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            status["cell"] = index
            _write_json(outbox / "status.json", status)
            try:
                client.execute_cell(cell, index)
            except DeadKernelError:
                status.update(state="died", reason=(
                    f"cell {index} printed more than {client.output_budget >> 20} MB (the kernel "
                    "was stopped)" if client.over_budget else f"the kernel died in cell {index}"))
                break
            status["errors"] = {str(k): v for k, v in client.errors.items()}
            if client.errors.get(index, "").startswith("CellTimeoutError"):
                status["timeouts"].append(index)
                if not _responsive(client):
                    status.update(state="stuck", reason=f"cell {index} ran over the time limit "
                                  "and did not stop when interrupted")
                    break
            if client.over_budget:
                status.update(state="output", reason=f"cell {index} printed more than "
                              f"{client.output_budget >> 20} MB")
                break
            now = len(list(outbox.glob("capture-*.json")))
            if now > captures:
                captures = now
                _serve(client, outbox, status, index)
        else:
            status["state"] = "finished"
        _write_json(outbox / "status.json", status)
        if status["state"] == "finished" and job.get("mode") == "reference":
            _serve(client, outbox, status, len(nb.cells), final=True)  # context stays callable
    return status


def _extra(client, source: str, timeout: int | None) -> str:
    """Run a cell that is not the notebook's (appended, run, removed); return its error."""
    import nbformat

    cell = nbformat.v4.new_code_cell(source)
    client.nb.cells.append(cell)
    index = len(client.nb.cells) - 1
    saved, client.timeout = client.timeout, timeout
    try:
        client.execute_cell(cell, index, store_history=False)
    finally:
        client.timeout = saved
        client.nb.cells.pop()
    return client.errors.pop(index, "")


def _serve(client, outbox: Path, status: dict, index: int, final: bool = False) -> None:
    """Let the grader run its checks (and call into this kernel) until it releases us."""
    from nbclient.exceptions import DeadKernelError

    k = status["pending"]
    _write_json(outbox / f"pending-{k}.json", {"cell": index, "final": final})
    try:
        _extra(client, SERVE, None)  # the grader's own calls carry their timeouts
    except DeadKernelError:
        status.update(state="died", reason=f"the kernel died while the grader checked cell {index}")
    _write_json(outbox / f"served-{k}.json", {"cell": index})
    status["pending"] = k + 1


def _responsive(client) -> bool:
    """After an interrupted cell: does the kernel answer a trivial cell?"""
    try:
        return not _extra(client, "pass", PROBE_TIMEOUT).startswith("CellTimeoutError")
    except Exception:  # noqa: BLE001 - a dead or stuck kernel is what we are asking about
        return False


def main(argv: list[str] | None = None) -> int:
    job = json.loads(Path((argv or sys.argv[1:])[0]).read_text(encoding="utf-8"))
    status = run(job)
    return 0 if status["state"] == "finished" else 3


if __name__ == "__main__":
    raise SystemExit(main())
