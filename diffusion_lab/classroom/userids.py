"""The user ids a root grader's sandboxes run as, each held by one grading run alone.

A root grader starts each sandbox under a user id of its own (``sandbox``: ``RLIMIT_NPROC``
counts a real user's processes, and root is exempt), and before a sandbox starts it kills what a
previous sandbox of that id left (``watchdog.reap``). Two graders on one machine (two teachers,
a grading run beside the tests) must therefore never share an id: the second would count the
first's processes against its limit and kill its running kernels. Each id is held with an
exclusive ``flock`` on ``/tmp/dl-grade-uids/UID.lock``, which the kernel releases when the
grading process ends, however it ends.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

UID_BASE = 61000  # the first id a root grader's sandbox may run as
UID_SPAN = 1000  # ids 61000 .. 61999: as many sandboxes side by side on one machine, all graders
LOCKS = Path(tempfile.gettempdir()) / "dl-grade-uids"


class UserIds:
    """``count`` user ids held by this process until `close` (none when not root: the
    sandboxes then run as the grader's own user)."""

    def __init__(self, count: int, *, base: int = UID_BASE, span: int = UID_SPAN,
                 folder: Path = LOCKS):
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive int, got {count!r}")
        self.ids: list[int] = []
        self._held = []
        if os.geteuid() != 0:
            return
        folder.mkdir(mode=0o700, exist_ok=True)
        for uid in range(base, base + span):
            if len(self.ids) == count:
                break
            handle = open(folder / f"{uid}.lock", "a")  # noqa: SIM115 - held until close()
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()  # another grading run holds it
                continue
            self._held.append(handle)
            self.ids.append(uid)
        if len(self.ids) < count:
            free = len(self.ids)
            self.close()
            raise RuntimeError(f"only {free} of the {count} sandbox user ids "
                               f"{base}..{base + span - 1} are free: other graders hold the rest")

    def close(self) -> None:
        """Let the ids go (another grading run may take them)."""
        for handle in self._held:
            handle.close()
        self._held, self.ids = [], []

    def __enter__(self) -> UserIds:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
