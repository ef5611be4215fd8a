"""Benchmark (a): `dl.generate` against a seed-article-style sampler on the same model.

The seed article samples a masked LM with a Python loop over positions: at each of 10 steps it
runs the model, then for every row and every position filters the logits (top-k 50, top-p 0.95),
samples one token, and finally re-masks a random fraction of the slots (0.9, 0.8, ..., 0).
`dl.generate(strategy="random")` is the same algorithm, vectorised over batch and positions.
The article's loop lives in the library as `dl.reference_samplers.seed_article_sampler` (chapter
7 times it too).

Run: python bench/bench_sampler.py [--size s --length 256 --batches 1 8 --threads 1 --device cpu
     --vocab-size 8192]
Prints the seconds of each sampler (best of ``--repeats``), the speed-up ratio, and the same
ratio for the sampling work alone (total minus the 10 forward passes both samplers make): on a
CPU the forward passes dominate both, which caps the total ratio; on a GPU the per-position loop
(a host sync per token) dominates the article's sampler.
"""

from __future__ import annotations

import torch
from common import best_of, parser, prepare

import diffusion_lab as dl
from diffusion_lab.reference_samplers import seed_article_sampler


def bench_batch(model, tok, batch: int, args) -> None:
    """Time both samplers and the bare forward passes at one batch size; print the ratios."""
    device = next(model.parameters()).device
    x = torch.randint(5, len(tok), (batch, args.length + 1), device=device)

    def ours():
        return dl.generate(model, tok, [""] * batch, length=args.length, steps=args.steps,
                           strategy="random", top_k=50, top_p=0.95, seed=0, record=False)

    def theirs():
        return seed_article_sampler(model, tok, [""] * batch, args.length, args.steps)

    @torch.no_grad()
    def forwards():
        for _ in range(args.steps):
            model(input_ids=x)

    ours()  # warm-up
    t_ours, t_theirs = best_of(ours, args.repeats)[0], best_of(theirs, args.repeats)[0]
    t_model = best_of(forwards, args.repeats)[0]
    s_ours, s_theirs = max(t_ours - t_model, 1e-4), t_theirs - t_model
    print(f"batch {batch}: dl.generate {t_ours:.3f} s, article loop {t_theirs:.3f} s, "
          f"speed-up {t_theirs / t_ours:.1f}x", flush=True)
    print(f"  of which the {args.steps} forward passes {t_model:.3f} s; sampling alone "
          f"{s_ours:.3f} s vs {s_theirs:.3f} s: {s_theirs / s_ours:.0f}x", flush=True)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--vocab-size", type=int, default=0,
                    help="0: the character tokenizer (89 tokens); N: a byte-level BPE of N tokens "
                         "(the article's RoBERTa has 50,265), which makes each per-position "
                         "top-k/top-p filter cost what it costs there")
    args = ap.parse_args()
    device = prepare(args)
    text = dl.load_corpus("shakespeare")
    tok = (dl.train_tokenizer([text[:2_000_000]], vocab_size=args.vocab_size) if args.vocab_size
           else dl.CharTokenizer.from_texts([text]))
    model = dl.tiny_mlm(tok, size=args.size, max_length=args.length + 1).eval().to(device)
    print(f"model {args.size} ({dl.models.param_count(model) / 1e6:.2f}M params), "
          f"vocab {len(tok)}, length {args.length}, {args.steps} steps, top-k 50, top-p 0.95, "
          f"{torch.get_num_threads()} thread(s), device {device}")
    for batch in args.batches:
        bench_batch(model, tok, batch, args)


if __name__ == "__main__":
    main()
