"""Benchmark (d): answering questions - threshold decoding vs fixed steps vs a same-size GPT-2.

The QA models of the zoo (``dl.zoo.pretrained_qa``: a ModernBERT and a GPT-2 of the same size,
fine-tuned with ``objective="sft"`` on the same pairs) answer the same questions greedily
(``top_k=1``).  For each decoder it reports accuracy, forward passes and milliseconds per answer
at batch 1 and batch 8, then the two targets of issue 12, as ratios measured in this process:

* threshold decoding at accuracy within 2 points of the best fixed-step ``low_confidence``
  setting uses <= 0.5x its forward passes;
* the same threshold setting is >= 2x faster than the AR model with its KV cache at batch 1
  (batch 8 reported whichever way it goes);
* speed at *equal* accuracy: on the families where the AR model and the diffusion model are
  equally accurate (``--equal-families``; on the cpu profile both answer every sum and count),
  the fastest diffusion setting within 2 points of the AR model's accuracy there, against it.

Timings are taken on questions of the equal-accuracy families.

Run: python bench/bench_qa.py [--questions 150 --timed 24 --threads 1]
(the first run trains both models for the profile: about 3 min of CPU on the cpu profile).
"""

from __future__ import annotations

import time

import torch
from common import parser, prepare

import diffusion_lab as dl


def per_answer(m, tok, qs, batch, length, **kw):
    """(forward passes, seconds) per answer over ``qs`` in batches of ``batch``."""
    passes, seconds = 0, 0.0
    for i in range(0, len(qs), batch):
        tick = time.perf_counter()
        _, trajs = dl.qa.ask(m, tok, qs[i:i + batch], length=length, record=False, top_k=1,
                             seed=0, **kw)
        seconds += time.perf_counter() - tick
        passes += sum(t.forward_passes * len(t.texts) for t in trajs)
    return passes / len(qs), seconds / len(qs)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--questions", type=int, default=150)
    ap.add_argument("--timed", type=int, default=24, help="questions timed at batch 1 (x2 at 8)")
    ap.add_argument("--equal-families", default="sums,counts",
                    help="families where the race is run at equal accuracy (comma-separated)")
    args = ap.parse_args()
    device = prepare(args)
    model, tok, _ = dl.zoo.pretrained_qa("diffusion", device=device)
    ar, _, _ = dl.zoo.pretrained_qa("ar", device=device)
    length = dl.course.recipes.plan("qa-diffusion", dl.profile()).settings.seq_len - 1
    questions = [q for q, _ in dl.qa.pairs(args.questions, seed=1)]
    equal_families = args.equal_families.split(",")
    unknown = set(equal_families) - set(dl.qa.FAMILIES)
    if unknown:
        raise SystemExit(f"--equal-families: unknown {sorted(unknown)}; "
                         f"allowed: {list(dl.qa.FAMILIES)}")
    equal_qs = [q for q in questions if dl.qa.family_of(q).name in equal_families]
    by_family = sorted(equal_qs, key=lambda q: (dl.qa.family_of(q).name, len(q)))
    slots = length - min(len(tok(q)["input_ids"]) for q in questions)
    settings = {"ar": dict(m=ar)}
    for k in (4, 8, slots):
        settings[f"fixed {k}"] = dict(m=model, strategy="low_confidence", steps=k)
    for tau in (0.5, 0.7, 0.9, 0.99):
        settings[f"threshold {tau}"] = dict(m=model, strategy="threshold", steps=slots,
                                            threshold=tau)
    rows = {}
    print(f"{'decoder':15s} {'acc':>5s} {'acc eq':>6s} {'passes':>7s} {'ms b1':>7s} "
          f"{'passes b8':>9s} {'ms b8':>7s}")
    for name, kw in settings.items():
        kw = dict(kw)
        m = kw.pop("m")
        answers, _ = dl.qa.ask(m, tok, questions, length=length, top_k=1, seed=0, **kw)
        right = [dl.qa.check(q, a) for q, a in zip(questions, answers, strict=True)]
        acc = sum(right) / len(questions)  # questions may repeat: count each one asked
        acc_eq = (sum(r for q, r in zip(questions, right, strict=True) if q in equal_qs)
                  / max(1, len(equal_qs)))
        p1, s1 = per_answer(m, tok, equal_qs[:args.timed], 1, length, **kw)
        p8, s8 = per_answer(m, tok, by_family[:2 * args.timed], 8, length, **kw)
        rows[name] = dict(acc=acc, acc_eq=acc_eq, p1=p1, ms1=1e3 * s1, p8=p8, ms8=1e3 * s8)
        print(f"{name:15s} {acc:>5.2f} {acc_eq:>6.2f} {p1:>7.1f} {1e3 * s1:>7.2f} {p8:>9.1f} "
              f"{1e3 * s8:>7.2f}")
    fixed = {n: r for n, r in rows.items() if n.startswith("fixed")}
    best = max(fixed, key=lambda n: fixed[n]["acc"])
    close = {n: r for n, r in rows.items() if n.startswith("threshold")
             and r["acc"] >= rows[best]["acc"] - 0.02}
    if not close:
        print(f"no threshold setting within 2 points of {best} ({rows[best]['acc']:.2f})")
        return
    th = min(close, key=lambda n: close[n]["p1"])
    print(f"\n{th} (acc {rows[th]['acc']:.2f}) vs {best} (acc {rows[best]['acc']:.2f}): "
          f"{rows[th]['p1'] / rows[best]['p1']:.2f}x the forward passes (target <= 0.5)")
    for b in ("1", "8"):
        ratio = rows["ar"][f"ms{b}"] / rows[th][f"ms{b}"]
        print(f"batch {b}: AR (KV cache) {rows['ar'][f'ms{b}']:.2f} ms/answer, {th} "
              f"{rows[th][f'ms{b}']:.2f}: threshold is {ratio:.2f}x faster"
              + (" (target >= 2)" if b == "1" else ""))
    level = rows["ar"]["acc_eq"]
    equal = {n: r for n, r in rows.items() if n != "ar" and r["acc_eq"] >= level - 0.02}
    if equal:
        fast = min(equal, key=lambda n: equal[n]["ms1"])
        print(f"\nat equal accuracy on {args.equal_families} ({len(equal_qs)} questions; AR "
              f"{level:.2f}, {fast} {rows[fast]['acc_eq']:.2f}): AR / {fast} time per answer = "
              f"{rows['ar']['ms1'] / rows[fast]['ms1']:.2f}x at batch 1, "
              f"{rows['ar']['ms8'] / rows[fast]['ms8']:.2f}x at batch 8")
    else:
        print(f"\nno diffusion setting within 2 points of AR's {level:.2f} on "
              f"{args.equal_families}")
    print(f"torch threads: {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
