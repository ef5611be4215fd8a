"""The race at equal quality: block diffusion (KV cache + threshold decoding) against the same-size
GPT-2 with its KV cache, on the grammar of chapter 9 (exact validity).

Both models come from the zoo (`dl.zoo.pretrained("grammar-ar")`, `dl.zoo.pretrained_block`:
the AR model adapted to block diffusion, A2D) and have the same size, tokenizer and data.  Both
stop at the grammar's [EOS]: the AR model after the token, the block model after the block in
which every row has written it.  The threshold is swept; the block model races at the fastest
threshold whose validity is within 0.02 of the AR model's (both measured on the same number of
unconditional samples).  Timings: seconds per sentence at batch 1 (one sentence at a time) and
batch 8, best of --repeats, with 1 torch thread and with 2, all in one process; the cache's own
speed-up is the same decoding with ``cache=False`` (the clean prefix recomputed at every step).

The limit of the race on this language: the grammar oracle (exact conditionals) decoded with
the same threshold rule in blocks of B is a *perfect* block model; its passes per sentence (up to
the block holding its [EOS]) say how many words the language lets a model commit at once.

The cache's speed-up grows with the prefix it spares: the last part times an untrained GPT-2 of
the same size as a block model (the cost of a pass does not depend on the weights) at lengths 16
to 256, ``low_confidence`` with two slots a step, with and without the cache.

Run: python bench/bench_blocks.py [--block-size 4 --samples 300 --repeats 3]
Prints validity, passes per sentence, ms per sentence and the AR / block time ratios.
"""

from __future__ import annotations

import time

import torch
from common import parser

import diffusion_lab as dl
from diffusion_lab.worlds import grammar_metrics as gm

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def sample(model, tok, n: int, batch: int, seed: int = 0, **kw):
    """(texts, passes per row, seconds) for n unconditional sentences in batches of ``batch``."""
    texts, passes, seconds = [], [], 0.0
    for i in range(0, n, batch):
        tick = time.perf_counter()
        run = dl.generate(model, tok, [""], length=16, seed=seed + i, num_samples=batch,
                          record=False, stop="[EOS]", **kw)
        seconds += time.perf_counter() - tick
        texts += run.texts
        if run.passes_per_row is not None:
            passes += run.passes_per_row.tolist()
        else:  # AR: one pass per token written, its [EOS] included
            eos = tok.convert_tokens_to_ids("[EOS]")
            hit = run.ids[:, 1:] == eos
            passes += torch.where(hit.any(1), hit.int().argmax(1) + 1, 16).tolist()
    return texts, torch.tensor(passes, dtype=torch.float64), seconds


def oracle_passes(lang, tok, block_size: int, tau: float, n: int) -> tuple[float, float]:
    """(validity, passes per sentence) of a perfect block model: the grammar oracle decoded in
    blocks of ``block_size`` with the threshold rule, counting the passes up to the block that
    holds each row's first [EOS] (as the block sampler stops)."""
    from diffusion_lab.worlds.grammar_oracle import GrammarOracleForMaskedLM

    run = dl.generate(GrammarOracleForMaskedLM(lang), tok, [""], length=16, steps=16,
                      block_size=block_size, strategy="threshold", threshold=tau, seed=0,
                      num_samples=n)
    passes = gm.passes_until_eos(run, block_size, tok.convert_tokens_to_ids("[EOS]"))
    return validity(lang, run.texts), passes.double().mean().item()


def validity(lang, texts) -> float:
    return lang.is_valid(texts).double().mean().item()


def timed(model, tok, n, batch, repeats, **kw) -> float:
    """Best-of-``repeats`` seconds per sentence over n sentences in batches of ``batch``."""
    return min(sample(model, tok, n, batch, seed=1000, **kw)[2] for _ in range(repeats)) / n


def cache_by_length(tok, block_size: int, repeats: int) -> None:
    """Cache speed-up against sequence length (untrained weights, fixed steps, batch 1 and 8)."""
    from diffusion_lab import block_diffusion as bd

    for length in (16, 64, 256):
        dl.seed_everything(0)
        model = bd.as_block_model(dl.tiny_ar(tok, "s", length + 1), block_size, shift=True)
        kw = dict(length=length, steps=length // 2, strategy="low_confidence", record=False)
        for batch in (1, 8):
            def run(cache, batch=batch, model=model, kw=kw):
                return dl.generate(model.eval(), tok, [""], num_samples=batch, seed=0,
                                   cache=cache, **kw)
            t_cache = dl.metrics.best_time(lambda: run(True), repeats)[0]  # noqa: B023
            t_plain = dl.metrics.best_time(lambda: run(False), repeats)[0]  # noqa: B023
            print(f"L={length}, batch {batch}: {1e3 * t_cache / batch:.1f} ms/sample with the "
                  f"cache, {1e3 * t_plain / batch:.1f} without: speed-up {t_plain / t_cache:.2f}x "
                  f"({length // 2} passes)", flush=True)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--block-size", type=int, default=4)
    ap.add_argument("--init", default="ar", choices=["ar", "scratch"])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--timed", type=int, default=24, help="sentences timed per setting")
    ap.add_argument("--cache-only", action="store_true", help="only the cache against length")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.cache_only:
        tok = dl.worlds.grammar.book_language().tokenizer()
        cache_by_length(tok, args.block_size, args.repeats)
        return
    prof = dl.profile("cpu")
    lang = dl.worlds.grammar.book_language()
    ar, tok, _ = dl.zoo.pretrained("grammar-ar", prof, progress=False)
    block, _, info = dl.zoo.pretrained_block(args.block_size, args.init, prof, progress=False)
    ar_texts, ar_passes, _ = sample(ar, tok, args.samples, 50)
    ar_valid = validity(lang, ar_texts)
    print(f"AR (KV cache): validity {ar_valid:.3f}, {ar_passes.mean():.2f} passes per sentence "
          f"({args.samples} samples)")
    rows = {}
    for tau in THRESHOLDS:
        texts, passes, _ = sample(block, tok, args.samples, 50, strategy="threshold",
                                  threshold=tau, steps=16)
        rows[tau] = (validity(lang, texts), passes.mean().item())
        print(f"block B={args.block_size} ({args.init}) threshold {tau}: validity "
              f"{rows[tau][0]:.3f}, {rows[tau][1]:.2f} passes per sentence", flush=True)
    for tau in THRESHOLDS:
        v, p = oracle_passes(lang, tok, args.block_size, tau, args.samples)
        print(f"perfect block model (the oracle) B={args.block_size}, threshold {tau}: validity "
              f"{v:.3f}, {p:.2f} passes per sentence", flush=True)
    equal = [t for t in THRESHOLDS if rows[t][0] >= ar_valid - 0.02]
    if equal:
        tau = min(equal, key=lambda t: rows[t][1])
        print(f"racing at threshold {tau}: validity {rows[tau][0]:.3f} against AR {ar_valid:.3f}")
    else:
        tau = 0.9
        print(f"no threshold reaches the AR model's validity within 0.02 ({ar_valid:.3f}): no "
              f"race at equal quality; timed at threshold {tau} (validity {rows[tau][0]:.3f})")
    kw = dict(strategy="threshold", threshold=tau, steps=16)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch in (1, 8):
            n = args.timed if batch == 1 else 2 * args.timed
            t_ar = timed(ar, tok, n, batch, args.repeats)
            t_bd = timed(block, tok, n, batch, args.repeats, **kw)
            t_nc = timed(block, tok, n, batch, args.repeats, cache=False, **kw)
            print(f"{threads} thread{'s' if threads > 1 else ''}, batch {batch}: AR "
                  f"{1e3 * t_ar:.2f} ms/sentence, block+cache {1e3 * t_bd:.2f}, block without "
                  f"cache {1e3 * t_nc:.2f}; AR / block {t_ar / t_bd:.2f}x, cache speed-up "
                  f"{t_nc / t_bd:.2f}x", flush=True)
    torch.set_num_threads(1)
    cache_by_length(tok, args.block_size, args.repeats)


if __name__ == "__main__":
    main()
