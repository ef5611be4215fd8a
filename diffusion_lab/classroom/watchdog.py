"""What the sandbox's watchdog measures, from ``/proc``: a sandbox's processes, threads and
memory, the bytes it wrote, and what a previous sandbox of the same user left behind."""

from __future__ import annotations

import os
import signal
import time


def folder_bytes(folder) -> int:
    """Bytes of the files under ``folder`` (links not followed)."""
    used = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                used += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return used


def processes_of_uid(uid: int) -> list[int]:
    """Process ids whose owner is ``uid``."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def reap(uid: int, seconds: float = 10.0) -> None:
    """Kill what is left of a previous sandbox of ``uid`` (a root grader only): its processes
    still count against the next one's process limit while the kernel tears them down."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = processes_of_uid(uid)
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)


def tasks_of_uid(uid: int) -> int:
    """Processes and threads of ``uid``: what ``RLIMIT_NPROC`` counts."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count


def usage(pid: int) -> tuple[int, int]:
    """(tasks, proportional resident bytes) of process ``pid`` and its descendants (PSS: the
    pages a forked child shares with its parent count once)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    todo, tasks, pss = [pid], 0, 0
    while todo:
        one = todo.pop()
        todo += children.get(one, [])
        try:
            with open(f"/proc/{one}/status") as f:
                tasks += next(int(ln.split()[1]) for ln in f if ln.startswith("Threads:"))
            with open(f"/proc/{one}/smaps_rollup") as f:
                pss += next(int(ln.split()[1]) << 10 for ln in f if ln.startswith("Pss:"))
        except (OSError, ValueError, StopIteration):
            continue
    return tasks, pss
