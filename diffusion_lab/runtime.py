r"""What this process runs on: the device, the seeds, the cache folder, a file lock, the threads.

* `get_device` — cuda > cpu; ``DIFFUSION_LAB_DEVICE`` overrides (MPS is used only when asked for:
  it gives slightly different numbers than CUDA and CPU).
* `seed_everything` seeds Python, NumPy and torch; `seed_or_random` is a sampler's seed: the given
  one, else a fresh draw from torch's global generator.
* `cache_dir` — where trained models shared between chapters live; `file_lock` makes two
  processes (nbval workers, test workers) wait for each other instead of training or exporting the
  same model twice.
* `apply_threads` — how many threads torch should use: the CPUs this process may actually run on.

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
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

CGROUP_ROOT = Path("/sys/fs/cgroup")


def get_device() -> torch.device:
    """cuda > cpu; ``DIFFUSION_LAB_DEVICE`` (e.g. ``"cpu"``, ``"cuda:1"``, ``"mps"``) overrides."""
    name = os.environ.get("DIFFUSION_LAB_DEVICE", "").strip()
    if name:
        try:
            device = torch.device(name)
        except RuntimeError as err:
            raise ValueError(
                f"DIFFUSION_LAB_DEVICE={name!r} is not a device; use 'cpu', 'cuda', 'cuda:N' or "
                "'mps'"
            ) from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"DIFFUSION_LAB_DEVICE={name!r} but CUDA is not available here")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same way."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def seed_or_random(seed: int | None) -> int:
    """``seed``, else a fresh seed drawn from torch's global generator (so `seed_everything`
    still makes an unseeded sampler repeatable): the seed of a sampler's own generator."""
    return seed if seed is not None else int(torch.randint(0, 2**31, (1,)))


def cache_dir() -> Path:
    """Where trained models shared between chapters live (``DIFFUSION_LAB_CACHE`` overrides)."""
    root = os.environ.get("DIFFUSION_LAB_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "diffusion_lab"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block: a second
    process waits until the first is done (``fcntl.flock``; no lock where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
    n = choose_threads()
    torch.set_num_threads(n)
    return n
