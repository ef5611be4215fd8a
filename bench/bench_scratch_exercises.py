"""Benchmark: chapter 0's one-line changes over training seeds (is each direction robust?).

Trains the from-scratch MDLM (``diffusion_lab/course/scratch.py``) with and without the 1/t
weight for each seed, and measures on ``--samples`` sampled sentences each (the sentence is the
unit): validity at K = L in random order (the chapter's model) and left to right (exercise 3),
at K = 4 with the linear and the cosine schedule (exercise 1), at K = 1, and without 1/t
(exercise 2), plus the held-out MDLM bound of both models (nats per sentence, exercise 4). Per
seed it prints each difference and whether it is beyond two standard errors; a direction is
robust when all seeds agree beyond that.

Run: python bench/bench_scratch_exercises.py [--steps 2000 --seeds 0 1 2 --samples 1000]
(about 2 x 65 s of training per seed on one thread)
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from diffusion_lab.course import scratch as s


def cosine(t):
    """Exercise 1's schedule: alpha_t = 1 - sin(pi t / 2)."""
    return 1 - math.sin(math.pi * t / 2)


def reveal_left_to_right(z, t, sched, g, alpha=s.alpha):
    """Exercise 3's rule: as many slots as `scratch.reveal` would reveal, the leftmost ones."""
    p = (alpha(sched) - alpha(t)) / (1 - alpha(t))
    k = ((z == s.MASK) & (torch.rand(z.shape, generator=g, dtype=torch.float64) < p)).sum(1)
    return (z == s.MASK) & ((z == s.MASK).cumsum(1) <= k[:, None])


def held_out_bound(model, n: int = 2000, seed: int = 2) -> float:
    """The MDLM bound in nats per sentence on fresh sentences (the same masks for every model)."""
    x, g = s.lang.sample_ids(n, seed=seed), torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g, dtype=torch.float64).clamp(min=1e-3)
    with torch.no_grad():
        return s.L * s.mdlm_loss(model, x, t, g).item()


def measure(seed: int, steps: int, n: int) -> dict[str, float]:
    start = time.process_time()
    model = s.train(steps, seed=seed, log_every=0)
    seconds = time.process_time() - start
    unweighted = s.train(steps, seed=seed, weight=torch.ones_like, log_every=0)
    out = {
        "K=L random": s.validity(s.sample(model, n, seed=seed)),
        "K=L left to right": s.validity(s.sample(model, n, seed=seed,
                                                 reveal=reveal_left_to_right)),
        "K=4 linear": s.validity(s.sample(model, n, steps=4, seed=seed + 1)),
        "K=4 cosine": s.validity(s.sample(model, n, steps=4, seed=seed + 1, alpha=cosine)),
        "K=1": s.validity(s.sample(model, n, steps=1, seed=seed)),
        "K=L without 1/t": s.validity(s.sample(unweighted, n, seed=seed)),
        "bound with 1/t": held_out_bound(model),
        "bound without 1/t": held_out_bound(unweighted),
    }
    print(f"seed {seed}: trained in {seconds:.0f} s of CPU; "
          + ", ".join(f"{k} {v:.3f}" for k, v in out.items()), flush=True)
    return out


COMPARISONS = {  # exercise: (the change, the baseline)
    "1 cosine schedule (K=4)": ("K=4 cosine", "K=4 linear"),
    "2 without 1/t (K=L)": ("K=L without 1/t", "K=L random"),
    "3 left to right (K=L)": ("K=L left to right", "K=L random"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    runs = [measure(seed, args.steps, args.samples) for seed in args.seeds]
    n = args.samples
    for name, (changed, base) in COMPARISONS.items():
        diffs, beyond = [], []
        for r in runs:
            a, b = r[changed], r[base]
            diffs.append(a - b)
            beyond.append(abs(a - b) > 2 * math.sqrt((a * (1 - a) + b * (1 - b)) / n))
        signs = {math.copysign(1, d) for d in diffs}
        robust = len(signs) == 1 and all(beyond)
        print(f"exercise {name}: validity change per seed "
              + ", ".join(f"{d:+.3f}" for d in diffs)
              + f" -> {'robust' if robust else 'NOT robust'} over {len(runs)} seeds")
    gaps = [r["bound without 1/t"] - r["bound with 1/t"] for r in runs]
    print("held-out bound without 1/t minus with 1/t, nats per sentence: "
          + ", ".join(f"{g:+.2f}" for g in gaps))


if __name__ == "__main__":
    main()
