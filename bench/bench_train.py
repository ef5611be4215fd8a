"""Benchmark (c): what `dl.train`'s conveniences cost against a bare PyTorch loop.

Both train the same model class from the same initial weights on the same batches with the same
loss (``objectives.compute_loss("mdlm", ...)``) and AdamW; `dl.train` adds the LR schedule,
gradient clipping, the progress bar, loss bookkeeping and NaN checks.  Two throughputs:
steady state (tokens/s from the end of step 1 to the end of the last step, timed by a callback in
`dl.train` and inline in the bare loop) and whole call (`dl.train`'s setup included: it
tokenizes the 5M-character corpus, which a short run like this one feels).

Run: python bench/bench_train.py [--size s --steps 60 --batch 32 --seq 128 --threads 1]
Prints tokens/s of each (best of ``--repeats``, interleaved) and the ratio dl.train / bare loop.
"""

from __future__ import annotations

import time

import torch
from common import parser, prepare

import diffusion_lab as dl
from diffusion_lab import data, noise, objectives


def bare_loop(model, tok, batches: list[torch.Tensor], lr: float, seed: int) -> list[float]:
    """The loop a reader would write: AdamW, loss, backward, step.  Returns step end times."""
    device = next(model.parameters()).device
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98),
                                  weight_decay=0.01)
    info = objectives.TokenInfo.from_tokenizer(tok)
    generator = torch.Generator().manual_seed(seed)
    ends = []
    for batch in batches:
        loss = objectives.compute_loss("mdlm", model, batch.to(device), info,
                                       fixed=noise.anchor_fixed(batch), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()
        ends.append(time.perf_counter())
    return ends


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    args = ap.parse_args()
    device = prepare(args)
    text = dl.load_corpus("shakespeare")
    tok = dl.CharTokenizer.from_texts([text])
    init = dl.tiny_mlm(tok, size=args.size, max_length=args.seq).state_dict()

    # dl.train draws its batches from a generator seeded with `seed`, before each step's noise;
    # replay the same draws so the bare loop sees the same batches.
    ids = data.encode_corpus(tok, text)
    gen = torch.Generator().manual_seed(0)
    batches = [data.random_blocks(ids, args.batch, args.seq, cls_id=tok.cls_token_id,
                                  generator=gen) for _ in range(args.steps)]
    tokens = args.steps * args.batch * args.seq

    def fresh():
        model = dl.tiny_mlm(tok, size=args.size, max_length=args.seq)
        model.load_state_dict(init)
        return model.to(device)

    per_step = args.batch * args.seq

    def steady(ends: list[float]) -> float:
        return (len(ends) - 1) * per_step / (ends[-1] - ends[0])

    def run_dl():
        model, ends = fresh(), []
        tick = time.perf_counter()
        dl.train(model, tok, text, objective="mdlm", steps=args.steps, batch_size=args.batch,
                 seq_len=args.seq, lr=2e-3, warmup=10, seed=0, progress=True, device=device,
                 callbacks=[lambda step, hist, m: ends.append(time.perf_counter())])
        return tokens / (time.perf_counter() - tick), steady(ends)

    def run_bare():
        model = fresh()
        tick = time.perf_counter()
        ends = bare_loop(model, tok, batches, lr=2e-3, seed=0)
        return tokens / (time.perf_counter() - tick), steady(ends)

    print(f"model {args.size}, batch {args.batch} x {args.seq} tokens, {args.steps} steps, "
          f"{torch.get_num_threads()} thread(s), device {device}")
    run_bare()  # warm-up
    runs_dl, runs_bare = [], []
    for _ in range(args.repeats):  # interleaved, so a load spike hits both
        runs_dl.append(run_dl())
        runs_bare.append(run_bare())
    (dl_call, dl_steady), (bare_call, bare_steady) = (
        (max(r[0] for r in runs), max(r[1] for r in runs)) for runs in (runs_dl, runs_bare))
    print(f"steady state: dl.train {dl_steady:.0f} tokens/s, bare loop {bare_steady:.0f} "
          f"tokens/s, ratio {dl_steady / bare_steady:.3f}", flush=True)
    print(f"whole call:   dl.train {dl_call:.0f} tokens/s, bare loop {bare_call:.0f} tokens/s, "
          f"ratio {dl_call / bare_call:.3f}", flush=True)


if __name__ == "__main__":
    main()
