"""Benchmark (d): the cost of one reverse step of each strategy, as a ratio to ``ancestral``.

Same model, same prompts, length 256, 32 steps.  The cost of a step is the sampler's wall-clock
(`Trajectory.seconds`) over the steps it ran; a strategy pays for a forward pass only when the
previous step changed the sequence (``ancestral`` skips the model when no slot was revealed), so
the forward passes are printed too.  Weights are untrained: a step's cost does not depend on them
(except ``threshold``'s early exit, which needs a confident model).

Run: python bench/bench_strategies.py [--size s --length 256 --steps 32 --batch 8 --threads 1]
"""

from __future__ import annotations

import time

import torch
from common import parser, prepare

import diffusion_lab as dl


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    device = prepare(args)
    tok = dl.CharTokenizer.from_texts([dl.load_corpus("shakespeare")])
    model = dl.tiny_mlm(tok, size=args.size, max_length=args.length + 1).eval().to(device)
    print(f"model {args.size}, batch {args.batch}, length {args.length}, {args.steps} steps, "
          f"{torch.get_num_threads()} thread(s), device {device}")
    options = {"sundae": {"temperature": 0.5}}
    names = sorted(dl.STRATEGIES, key=lambda n: (n != "ancestral", n))
    best: dict[str, tuple[float, int, int]] = {}
    dl.generate(model, tok, [""] * args.batch, length=args.length, steps=args.steps)  # warm-up
    for _ in range(args.repeats):  # round robin, so a load spike does not hit one strategy
        for name in names:
            traj = dl.generate(model, tok, [""] * args.batch, length=args.length,
                               steps=args.steps, strategy=name, seed=0, **options.get(name, {}))
            cost = traj.seconds / traj.num_steps
            if name not in best or cost < best[name][0]:
                best[name] = (cost, traj.num_steps, traj.forward_passes)
    x = torch.randint(5, len(tok), (args.batch, args.length + 1), device=device)
    with torch.no_grad():
        ticks = []
        for _ in range(5):
            tick = time.perf_counter()
            model(input_ids=x).logits.sum().item()
            ticks.append(time.perf_counter() - tick)
    forward = min(ticks)
    base = best["ancestral"][0]
    base_rule = base - forward * best["ancestral"][2] / best["ancestral"][1]
    print(f"one forward pass: {1000 * forward:.1f} ms; 'rule' = ms/step minus the forward passes")
    print(f"{'strategy':20s} {'ms/step':>8s} {'ratio':>6s} {'rule ms':>8s} {'ratio':>6s} "
          f"{'steps':>5s} {'passes':>6s}")
    for name in names:
        cost, steps, passes = best[name]
        rule = cost - forward * passes / steps
        print(f"{name:20s} {1000 * cost:8.1f} {cost / base:6.2f} {1000 * rule:8.1f} "
              f"{rule / base_rule:6.2f} {steps:5d} {passes:6d}")


if __name__ == "__main__":
    main()
