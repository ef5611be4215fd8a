"""Benchmark: the grammar's exact scorer, and threshold decoding's passes at equal validity.

1. Throughput of ``book_language().log_prob`` (strings in, exact log-probabilities out) and of
   ``log_prob_ids`` (ids in), in sentences per second.
2. Forward passes per token that ``threshold`` decoding needs to reach the validity that
   ``low_confidence`` reaches with K fixed steps, measured in one process on the same model:
   for each K, the cheapest threshold whose validity is at least as high, and the ratio of
   passes.  ``--model oracle`` (default: the exact denoiser, no training) or ``mdlm`` (the zoo's
   ``grammar-mdlm``, trained and cached on first use).

Run: python bench/bench_grammar.py [--model oracle --samples 400 --threads 1]
"""

from __future__ import annotations

import torch
from common import best_of, parser, prepare

import diffusion_lab as dl
from diffusion_lab.worlds import grammar_metrics
from diffusion_lab.worlds.grammar_oracle import GrammarOracleForMaskedLM

THRESHOLDS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def scorer_throughput(lang, n: int, repeats: int) -> None:
    texts = lang.sample(n, seed=0)
    ids = lang.encode(texts)
    t_str, _ = best_of(lambda: lang.log_prob(texts), repeats)
    t_ids, _ = best_of(lambda: lang.log_prob_ids(ids), repeats)
    print(f"exact scorer: {n / t_str:,.0f} sentences/s from strings, "
          f"{n / t_ids:,.0f} sentences/s from ids ({n:,} sentences)")


def decode(model, tok, lang, strategy, steps, n, **options):
    """(validity, forward passes per token) of n samples."""
    run = dl.generate(model, tok, prompts=[""], length=lang.max_len, steps=steps,
                      strategy=strategy, seed=0, num_samples=n, **options)
    validity = lang.is_valid(run.texts).double().mean().item()
    passes = grammar_metrics.passes_per_row(run).double().mean().item()
    return validity, passes / lang.max_len


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--model", choices=("oracle", "mdlm"), default="oracle")
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--score", type=int, default=20000, help="sentences for the scorer")
    args = ap.parse_args()
    device = prepare(args)
    lang = dl.worlds.grammar.book_language()
    print(f"{torch.get_num_threads()} thread(s), device {device}, model {args.model}")
    scorer_throughput(lang, args.score, args.repeats)
    if args.model == "oracle":
        model, tok = GrammarOracleForMaskedLM(lang).to(device), lang.tokenizer()
    else:
        model, tok, _ = dl.zoo.pretrained("grammar-mdlm", device=device)
    thr = {t: decode(model, tok, lang, "threshold", lang.max_len, args.samples, threshold=t)
           for t in THRESHOLDS}
    for t, (v, p) in thr.items():
        print(f"threshold {t:4.2f}: validity {v:.3f}, {p:.3f} passes/token")
    print("low_confidence K | validity | passes/token | cheapest threshold as valid | ratio")
    for k in (2, 4, 8, 16):
        v, p = decode(model, tok, lang, "low_confidence", k, args.samples)
        ok = [(pt, t) for t, (vt, pt) in thr.items() if vt >= v]
        if not ok:
            print(f"{k:16d} | {v:8.3f} | {p:12.3f} | none reaches it")
            continue
        pt, t = min(ok)
        print(f"{k:16d} | {v:8.3f} | {p:12.3f} | {t:4.2f} ({pt:.3f} passes/token) | "
              f"{pt / p:.2f}")


if __name__ == "__main__":
    main()
