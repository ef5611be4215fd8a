"""How many threads torch should use: the CPUs this process may actually run on.

torch starts one intra-op thread per core of the machine, but a classroom hub, a CI runner or a
container may grant the process fewer: a CPU *affinity* mask (``taskset``, ``os.sched_getaffinity``)
or a cgroup *quota* (Docker's ``--cpus``, Kubernetes' CPU limit). Threads beyond what the quota
allows spin and wait for each other: measured on 2 shared cores, two trainings side by side with
torch's default threads took 3.8x their time alone, with one thread each 2.3x.

    threads = min(affinity, ceil(quota / period))      # cgroup v2 ``cpu.max``: "quota period"
                                                       # cgroup v1: cpu.cfs_quota_us / period_us

``DIFFUSION_LAB_THREADS`` overrides the choice; OpenMP's own ``OMP_NUM_THREADS``, when set (a
batch scheduler, or pytest-xdist's workers in ``tests/conftest.py``, which run two notebooks side
by side on 2 cores), caps it. Measured: with each notebook kernel set back to 2 threads beside a
second worker, the README's pytest run took 34 min; with the cap, 10 min.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _own_cgroup(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """This process's cgroup paths from ``/proc/self/cgroup``: ``(v2 path, v1 cpu path)``."""
    v2 = v1 = None
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT,
                     proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPUs granted by a cgroup quota (e.g. 1.5), or None when there is no quota.

    Reads cgroup v2 ``cpu.max`` ("max 100000" = no limit) in this process's cgroup and its
    parents, else cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1 = no limit).
    The tightest quota on the way up wins.
    """
    v2, v1 = _own_cgroup(proc_cgroup)
    limits = []
    for rel, kind in ((v2, "v2"), (v1, "v1")):
        if rel is None:
            continue
        bases = [root / rel.lstrip("/"), root] if kind == "v2" else \
            [root / "cpu" / rel.lstrip("/"), root / "cpu,cpuacct" / rel.lstrip("/"), root / "cpu"]
        for base in bases:
            for folder in [base, *base.parents]:
                if not str(folder).startswith(str(root)):
                    break
                limits.append(_limit_in(folder, kind))
    found = [x for x in limits if x is not None]
    return min(found) if found else None


def _limit_in(folder: Path, kind: str) -> float | None:
    if kind == "v2":
        text = _read(folder / "cpu.max")
        if not text:
            return None
        quota, _, period = text.partition(" ")
        if quota == "max":
            return None
        return int(quota) / int(period or 100000)
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    if not quota or not period or int(quota) <= 0:
        return None
    return int(quota) / int(period)


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup quota (>= 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def choose_threads() -> int:
    """``DIFFUSION_LAB_THREADS`` if set (a positive int), else `usable_cpus` capped by a valid
    ``OMP_NUM_THREADS`` (a value OpenMP would reject, e.g. "4,2", is ignored)."""
    text = os.environ.get("DIFFUSION_LAB_THREADS", "").strip()
    if not text:
        omp = os.environ.get("OMP_NUM_THREADS", "").strip()
        cpus = usable_cpus()
        return min(cpus, int(omp)) if omp.isdigit() and int(omp) > 0 else cpus
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"DIFFUSION_LAB_THREADS must be a positive int, got {text!r}")
    return int(text)


def apply_threads() -> int:
    """Set torch's intra-op threads to `choose_threads` and return the number."""
    import torch

    n = choose_threads()
    torch.set_num_threads(n)
    return n
