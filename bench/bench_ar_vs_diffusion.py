"""Benchmark (b): diffusion with K = L/8 steps against a same-size GPT-2 with a KV cache.

Both models have the width and depth of ``--size`` and see L + 1 positions (the [CLS] anchor
plus L = 256 tokens).  The AR model is timed twice: with transformers' own
``model.generate(do_sample=True, max_new_tokens=L)`` and with ``dl.generate``'s AR path (the one
`viz.race` animates).  Weights are untrained: the cost of a forward pass does not depend on them.

What to expect: diffusion makes K = L/8 calls on the whole sequence, AR makes L calls on one new
token each (attending to the cache), so diffusion does about K(L+1)/L = 32x the arithmetic in 8x
fewer calls.  It wins where a call costs a fixed latency (a GPU at small batch), and loses where
a call costs its arithmetic (a CPU, or a large batch).

Run: python bench/bench_ar_vs_diffusion.py [--size s --length 256 --batches 1 8 --threads 1]
Prints wall-clock and forward passes of each, and the AR / diffusion time ratio.
"""

from __future__ import annotations

import torch
from common import best_of, parser, prepare

import diffusion_lab as dl


class CountCalls:
    """Counts forward passes of a module (a forward hook)."""

    def __init__(self, model):
        self.n = 0
        model.register_forward_hook(self.hook)

    def hook(self, module, args, output):
        self.n += 1


def bench_batch(mlm, ar, tok, batch: int, args) -> None:
    device = next(ar.parameters()).device
    length, steps = args.length, args.length // 8
    counter = CountCalls(ar)
    start = torch.full((batch, 1), tok.cls_token_id, device=device)

    def diffusion():
        return dl.generate(mlm, tok, [""] * batch, length=length, steps=steps,
                           strategy="low_confidence", seed=0, record=False)

    @torch.no_grad()
    def hf_generate():
        return ar.generate(start, attention_mask=torch.ones_like(start), do_sample=True,
                           max_new_tokens=length, min_new_tokens=length, top_k=0,
                           pad_token_id=tok.pad_token_id, use_cache=True)

    def dl_ar():
        return dl.generate(ar, tok, [""] * batch, length=length, seed=0, record=False)

    diffusion(), hf_generate(), dl_ar()  # warm-up
    t_diff, traj = best_of(diffusion, args.repeats)
    counter.n = 0
    t_hf, out = best_of(hf_generate, 1)
    hf_passes = counter.n
    assert out.shape == (batch, length + 1), out.shape
    t_ar, ar_traj = best_of(dl_ar, args.repeats)
    print(f"batch {batch}, L={length}:", flush=True)
    print(f"  diffusion low_confidence K={steps}: {t_diff:.3f} s, "
          f"{traj.forward_passes} forward passes", flush=True)
    print(f"  AR transformers generate (KV cache): {t_hf:.3f} s, {hf_passes} forward passes; "
          f"ratio AR / diffusion {t_hf / t_diff:.1f}x", flush=True)
    print(f"  AR dl.generate (KV cache): {t_ar:.3f} s, {ar_traj.forward_passes} forward passes; "
          f"ratio AR / diffusion {t_ar / t_diff:.1f}x", flush=True)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    args = ap.parse_args()
    device = prepare(args)
    tok = dl.CharTokenizer.from_texts([dl.load_corpus("shakespeare")])
    mlm = dl.tiny_mlm(tok, size=args.size, max_length=args.length + 1).eval().to(device)
    ar = dl.tiny_ar(tok, size=args.size, max_length=args.length + 1).eval().to(device)
    print(f"size {args.size}: denoiser {dl.models.param_count(mlm) / 1e6:.2f}M params, GPT-2 "
          f"{dl.models.param_count(ar) / 1e6:.2f}M params; {torch.get_num_threads()} thread(s), "
          f"device {device}")
    for batch in args.batches:
        bench_batch(mlm, ar, tok, batch, args)


if __name__ == "__main__":
    main()
