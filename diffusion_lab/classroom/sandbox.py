"""One submission, one sandbox: bubblewrap namespaces, resource limits and a watchdog.

**Why bubblewrap** (``bwrap``, Debian's ``bubblewrap``; what Flatpak runs apps in): one
unprivileged command gives every namespace the task needs — its own network namespace (a loopback
and nothing else), its own PID namespace (killing the sandbox kills everything in it), and a
filesystem built from nothing but what we bind: the system and Python read-only, the library
read-only, the model cache read-only, a size-capped tmpfs as home, work folder and ``/tmp``, and
the two channel folders (``inbox`` read-only, ``outbox`` writable). The teacher's home, the
teacher edition, the book and the other submissions are simply not there. ``unshare`` + rlimits
could build the same from a shell script of mounts, run as root; otter-grader's container mode
needs a Docker daemon; bwrap does it in one exec, as root or not, and fails loudly when the
machine forbids namespaces (`problem`).

Limits (`Limits`), none of which bwrap sets itself:

* **memory**: the watchdog sums the memory the sandbox's processes really use (PSS, twice a
  second) and stops it past the limit; ``RLIMIT_AS`` (4x the limit, per process) only stops a
  single allocation far beyond it (address space is not memory: torch and glibc reserve far more
  than they touch, so a tight ``RLIMIT_AS`` breaks honest notebooks with a ``MemoryError``);
* **processes**: ``RLIMIT_NPROC``. It counts the processes and threads of a *real user*, and
  root is exempt, so a grader running as root starts each sandbox under a user id of its own
  (``setpriv``, one id per parallel slot, held by this grading run alone: ``userids``); the
  watchdog also stops a sandbox that reaches it;
* **time**: the runner's per-cell timeout, and a wall-clock limit for the whole notebook;
* **output and disk**: the runner drops outputs past a budget; ``RLIMIT_FSIZE`` caps a file; the
  tmpfs has a size; the watchdog caps the outbox.

Without bwrap (`MODES`: ``"rlimits"``) the same limits apply, but nothing is isolated: the run
is flagged in every row of the CSV.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .userids import UID_BASE
from .watchdog import folder_bytes, reap, tasks_of_uid, usage

MODES = ("bwrap", "rlimits")
RUN_FILE = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location("
            "'runner', sys.argv[1]); runner = importlib.util.module_from_spec(spec); "
            "spec.loader.exec_module(runner); sys.exit(runner.main(sys.argv[2:]))")
LIB = Path(__file__).resolve().parent.parent  # the diffusion_lab package


@dataclass(frozen=True)
class Limits:
    """What one submission may use (see the module docstring for how each is enforced)."""

    memory_mb: int = 4096  # memory the sandbox's processes use (PSS), in all
    processes: int = 192  # processes + threads
    wall_s: int = 3600  # the whole notebook, the grader's checks included
    cell_s: int = 600  # one cell
    output_mb: int = 64  # what the notebook prints, in all
    disk_mb: int = 512  # tmpfs home + work + /tmp, and the outbox
    file_mb: int = 256  # one file


def problem(bwrap: str | None = None) -> str | None:
    """Why bubblewrap cannot sandbox here (None when it can): runs ``bwrap`` with the
    namespaces the grader uses around ``true``."""
    bwrap = bwrap or shutil.which("bwrap")
    if not bwrap:
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    cmd = [bwrap, *_namespaces(), "--die-with-parent", "--ro-bind", "/", "/", "--proc",
           "/proc", "--dev", "/dev", *_drop_to(UID_BASE), "true"]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap could not run: {err}"
    if run.returncode != 0:
        return (f"bwrap cannot create namespaces here ({run.stderr.strip()[:200]}): allow "
                "unprivileged user namespaces (e.g. sysctl kernel.unprivileged_userns_clone=1, "
                "or an AppArmor profile for bwrap on Ubuntu 24.04), or run the grader as root")
    return None


def _namespaces() -> list[str]:
    """Every namespace but the user one as root (so that the sandbox can run as a real user of
    its own); all of them, the user one included, otherwise."""
    if os.geteuid() == 0:
        return ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                "--unshare-cgroup-try"]
    return ["--unshare-all"]


def _drop_to(uid: int | None) -> list[str]:
    """Capabilities for ``setpriv`` inside the sandbox, then ``setpriv`` to ``uid``."""
    if uid is None:
        return []
    return ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP",
            "--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all"]


def _rlimits(limits: Limits, trusted: bool, nproc: int | None):
    def apply():
        mb = 1 << 20
        resource.setrlimit(resource.RLIMIT_AS, (4 * limits.memory_mb * mb,) * 2)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.wall_s + 60,) * 2)
        if nproc is not None and not trusted:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        os.setsid()
    return apply


class Sandbox:
    """Run ``classroom/runner.py`` on a job folder, contained.

    ``folder`` holds ``in/`` (the grader writes it; the sandbox reads it) and ``out/`` (the
    sandbox writes it). ``trusted`` (the teacher edition) may write the model cache and is not
    held to a process limit; ``uid`` is the user id a root grader's sandbox runs as (one that
    this grading run holds: ``userids.UserIds``)."""

    def __init__(self, folder: Path, *, mode: str, limits: Limits, env: dict, cache: Path,
                 uid: int | None = None, trusted: bool = False):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.folder, self.mode, self.limits, self.env = Path(folder), mode, limits, env
        self.cache, self.trusted = Path(cache), trusted
        self.inbox, self.outbox = self.folder / "in", self.folder / "out"
        for d in (self.inbox, self.outbox):
            d.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        self.inbox.chmod(0o755)
        self.uid = None
        if os.geteuid() == 0 and not trusted and mode == "bwrap":
            if not isinstance(uid, int) or uid < UID_BASE:
                raise ValueError(f"uid: a root grader's sandbox needs a user id >= {UID_BASE} "
                                 f"held by this run (userids.UserIds), got {uid!r}")
            self.uid = uid
            os.chown(self.outbox, self.uid, self.uid)
        self.proc: subprocess.Popen | None = None
        self.reason, self.started = "", 0.0
        self._last_deep = 0.0

    # ------------------------------------------------------------ the command

    def paths(self) -> dict:
        """Where the runner finds things (inside the sandbox, or on the host without one)."""
        if self.mode == "bwrap":
            return {"inbox": "/io/in", "outbox": "/io/out", "workdir": "/home/student/work",
                    "home": "/home/student", "lib": "/dl/lib", "cache": "/dl/cache"}
        work = self.folder / "work"
        (work / "home").mkdir(parents=True, exist_ok=True)
        return {"inbox": str(self.inbox), "outbox": str(self.outbox), "workdir": str(work),
                "home": str(work / "home"), "lib": str(LIB.parent), "cache": str(self.cache)}

    def environment(self) -> dict:
        p = self.paths()
        venv_bin = str(Path(sys.executable).parent)
        return {"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": p["home"],
                "LANG": "C.UTF-8", "PYTHONPATH": p["lib"], "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1", "DIFFUSION_LAB_CACHE": p["cache"], "MPLBACKEND": "Agg",
                "TMPDIR": "/tmp" if self.mode == "bwrap" else p["workdir"],
                "JUPYTER_PLATFORM_DIRS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "HF_DATASETS_OFFLINE": "1", **({"VIRTUAL_ENV": sys.prefix}
                                               if sys.prefix != sys.base_prefix else {}),
                **self.env}

    def _bind(self, path: Path, dest: str, writable: bool = False) -> list[str]:
        """Bind ``path`` at ``dest``, its parents created world-readable first (bwrap would make
        them 0700, which the sandbox's own user could not enter)."""
        made, args = self._made, []
        for parent in reversed(Path(dest).parents):
            if str(parent) != "/" and str(parent) not in made:
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
        return [*args, "--bind" if writable else "--ro-bind", str(path), dest]

    def command(self, job: str) -> list[str]:
        # runner.py by its path: the runner needs nbclient, not the library (no torch to import)
        path = f"{self.paths()['lib']}/diffusion_lab/classroom/runner.py"
        runner = [sys.executable, "-c", RUN_FILE, path, job]
        if self.mode != "bwrap":
            return runner
        p, size = self.paths(), str(self.limits.disk_mb << 19)  # half each: home, /tmp
        self._made = {"/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
                      "/opt", "/home", "/tmp"}
        args = ["bwrap", *_namespaces(), "--die-with-parent", "--new-session",
                "--hostname", "sandbox", "--clearenv"]
        for name in ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "opt"):
            host = Path("/") / name
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), f"/{name}"]
            elif host.is_dir():
                args += ["--ro-bind", str(host), f"/{name}"]
        for prefix in sorted({sys.prefix, sys.base_prefix, sys.exec_prefix}):
            if not any(prefix.startswith(f"/{n}/") for n in ("usr", "opt")):
                args += self._bind(Path(prefix), prefix)
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "1777", "--size", size, "--tmpfs", p["home"],
                 "--perms", "1777", "--size", size, "--tmpfs", "/tmp",
                 *self._bind(LIB, f"{p['lib']}/diffusion_lab"),
                 *self._bind(self.cache, p["cache"], writable=self.trusted),
                 *self._bind(self.inbox, p["inbox"]),
                 *self._bind(self.outbox, p["outbox"], writable=True),
                 "--perms", "1777", "--dir", p["workdir"], "--chdir", p["workdir"]]
        for key, value in self.environment().items():
            args += ["--setenv", key, value]
        drop = _drop_to(self.uid)  # a root grader: the sandbox runs as a user of its own
        return [*args, *(drop or ["--"]), *runner]

    # ------------------------------------------------------------ running it

    def start(self, job: dict) -> None:
        """Write ``in/job.json`` and start the runner."""
        p = self.paths()
        job = {**job, "inbox": p["inbox"], "outbox": p["outbox"], "workdir": p["workdir"],
               "cell_timeout": self.limits.cell_s, "output_budget": self.limits.output_mb << 20,
               "notebook": f"{p['inbox']}/notebook.ipynb"}
        (self.inbox / "job.json").write_text(json.dumps(job), encoding="utf-8")
        nproc = None
        if self.uid is not None:
            reap(self.uid)  # a fork bomb's last processes must not count against this one
        if self.uid is None and not self.trusted:  # shared with the grader's own user
            nproc = tasks_of_uid(os.getuid()) + self.limits.processes
        elif self.uid is not None:
            nproc = self.limits.processes
        log = open(self.folder / "runner.log", "wb")  # noqa: SIM115 - the sandbox writes it
        env = self.environment() if self.mode != "bwrap" else {"PATH": os.environ["PATH"]}
        self.proc = subprocess.Popen(self.command(f"{p['inbox']}/job.json"),
                                     stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=env,
                                     cwd=p["workdir"] if self.mode != "bwrap" else None,
                                     preexec_fn=_rlimits(self.limits, self.trusted, nproc))
        log.close()
        self.started = time.monotonic()

    def alive(self) -> bool:
        """True while the runner runs; stops it (and says why) when it breaks a limit."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        if time.monotonic() - self.started > self.limits.wall_s:
            self.stop(f"it ran over the wall-clock limit ({self.limits.wall_s} s)")
            return False
        now = time.monotonic()
        if now - self._last_deep > 0.5:
            self._last_deep = now
            why = self._over_limits()
            if why:
                self.stop(why)
                return False
        return True

    def _over_limits(self) -> str:
        if folder_bytes(self.outbox) > self.limits.disk_mb << 20:
            return f"it wrote more than {self.limits.disk_mb} MB"
        tasks, pss = usage(self.proc.pid)
        if tasks >= self.limits.processes - 2:
            return f"it started too many processes (limit {self.limits.processes})"
        if pss > self.limits.memory_mb * (1 << 20):
            return f"it used more memory than allowed ({self.limits.memory_mb} MB)"
        return ""

    def stop(self, reason: str = "") -> None:
        """Kill everything in the sandbox."""
        if reason and not self.reason:
            self.reason = reason
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.wait()

    def wait(self) -> int:
        while self.alive():
            time.sleep(0.1)
        return self.proc.wait() if self.proc else -1
