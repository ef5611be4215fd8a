"""Two chapter trainings side by side on a shared machine: each one's time vs alone.

    python bench/bench_side_by_side.py [--steps 40] [--size s]

A classroom hub, a CI runner or a laptop doing other work runs several trainings at once. Each
run below is a separate process doing `dl.train` (cpu profile sizes: batch 32, seq_len 128, MDLM);
the script times one alone, then two started together, and prints each one's ratio
``t_side_by_side / t_alone`` for two thread policies:

* ``auto``: what `dl.notebook.setup` picks (`diffusion_lab.runtime`: affinity and cgroup quota);
* ``1``: ``DIFFUSION_LAB_THREADS=1``.

Target: each <= 2.5x alone (two jobs on the cores one had: 2x is the floor). Measurements taken
while other work shares the machine are contaminated: the script prints the load average.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

CHILD = """
import time, torch
import diffusion_lab as dl
from diffusion_lab.runtime import apply_threads
n = apply_threads()
text = dl.load_corpus("python-docs")[:200000]
tok = dl.CharTokenizer.from_texts([text])
dl.seed_everything(0)
model = dl.tiny_mlm(tok, size={size!r}, max_length=128)
tick = time.perf_counter()
dl.train(model, tok, text, objective="mdlm", steps={steps}, batch_size=32, seq_len=128,
         lr=2e-3, warmup=10, progress=False, device="cpu")
print(n, time.perf_counter() - tick)
"""


def run(n_procs: int, threads: str, steps: int, size: str) -> list[tuple[int, float]]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads != "auto":
        env["DIFFUSION_LAB_THREADS"] = env["OMP_NUM_THREADS"] = threads
    else:
        env.pop("DIFFUSION_LAB_THREADS", None)
    code = CHILD.format(size=size, steps=steps)
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(n_procs)]
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"a training process failed ({p.returncode})")
        n, seconds = stdout.split()[-2:]
        out.append((int(n), float(seconds)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--size", default="s")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for threads in ("auto", "1"):
        (n, alone), = run(1, threads, args.steps, args.size)
        print(f"threads={threads} ({n} per process): alone {alone:.1f} s", flush=True)
        both = run(2, threads, args.steps, args.size)
        ratios = ", ".join(f"{s / alone:.2f}x" for _, s in both)
        print(f"threads={threads} ({n} per process): alone {alone:.1f} s; side by side "
              f"{', '.join(f'{s:.1f}' for _, s in both)} s -> {ratios} (target <= 2.5x)",
              flush=True)
        time.sleep(1)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
