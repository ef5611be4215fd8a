"""Tune the cpu profile: held-out bits/char after a fixed number of steps, per objective and lr.

Run: python bench/tune_cpu_profile.py --steps 600 --lrs 1e-3 2e-3 3e-3 --objectives mdlm ar
Prints one line per run: objective, lr, steps, seconds, tokens/s, held-out bits/char.
"""

import argparse
import time

import torch

import diffusion_lab as dl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lrs", type=float, nargs="+", default=[2e-3])
    ap.add_argument("--objectives", nargs="+", default=["mdlm", "ar"])
    ap.add_argument("--size", default="s")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=100)
    args = ap.parse_args()
    text = dl.load_corpus("shakespeare")
    train_text, valid = dl.data.split_corpus(text)
    tok = dl.CharTokenizer.from_texts([text])
    print(f"unigram entropy of the held-out text: {dl.metrics.unigram_entropy(valid):.3f} bits")
    for objective in args.objectives:
        for lr in args.lrs:
            dl.seed_everything(0)
            factory = dl.tiny_ar if objective == "ar" else dl.tiny_mlm
            model = factory(tok, size=args.size, max_length=args.seq)
            tick = time.perf_counter()
            hist = dl.train(model, tok, train_text, objective=objective, steps=args.steps,
                            batch_size=args.batch, seq_len=args.seq, lr=lr, warmup=args.warmup,
                            progress=False, device="cpu")
            seconds = time.perf_counter() - tick
            bits = dl.metrics.bits_per_token(model, tok, valid, seq_len=args.seq, max_blocks=64)
            print(f"{objective:8s} lr={lr:g} steps={args.steps} {seconds:6.1f}s "
                  f"{hist.tokens_per_s:8.0f} tok/s held-out {bits:.3f} bits/char", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    main()
