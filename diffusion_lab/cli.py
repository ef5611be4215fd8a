"""``python -m diffusion_lab demo | env | train | sample | animate | editions | grade``.

* ``demo``    — what the library does best, in under two minutes on a CPU (``demo.py``): by
  default sentences of a grammar whose probabilities are known exactly, each with its validity
  and exact log-probability, and the forward passes against an AR model's; ``--world qa`` answers
  questions and revises a forced wrong verdict; ``--world shakespeare`` writes Shakespeare.
* ``env``     — one [OK]/[FAIL] line per requirement; paste it into a bug report.
* ``train``   — train a tiny model with any objective and save it (safetensors).
* ``sample``  — generate from a saved model with any strategy.
* ``animate`` — write the unmasking GIF of one sample.
* ``editions`` — write the student and teacher editions of every notebook
  (``classroom/editions.py``).
* ``grade``   — execute a folder of submitted student notebooks and write a CSV
  (``classroom/grading.py``).
"""

from __future__ import annotations

import argparse
import importlib
import platform
import shutil
import sys
import time
from pathlib import Path

from .course.demo import WORLDS


def _line(ok: bool, what: str, detail: str) -> bool:
    print(f"[{'OK' if ok else 'FAIL'}] {what}: {detail}")
    return ok


def _version(module: str) -> str | None:
    try:
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception:  # noqa: BLE001 - any import failure is a FAIL line
        return None


def env_check() -> int:
    """Print [OK]/[FAIL] per requirement; return the number of failures."""
    fails = 0
    py = platform.python_version()
    fails += not _line(sys.version_info >= (3, 10), "Python >= 3.10", py)
    for module, minimum in (("torch", "2.2"), ("transformers", "5.0"), ("tokenizers", "0.21"),
                            ("safetensors", "0.4"), ("matplotlib", "3.7"), ("ipywidgets", "7.7"),
                            ("tqdm", "4.66")):
        version = _version(module)
        ok = version is not None and _at_least(version, minimum)
        fails += not _line(ok, f"{module} >= {minimum}", version or "not installed")
    if _version("torch"):
        import torch

        from .runtime import get_device

        device = get_device()
        detail = f"{device}" + (f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda"
                                else f", {torch.get_num_threads()} threads")
        fails += not _line(True, "device", detail)
    from .data import load_corpus

    for name in ("shakespeare", "python-docs", "python-code"):
        try:
            fails += not _line(True, f"corpus {name}", f"{len(load_corpus(name)):,} characters")
        except Exception as err:  # noqa: BLE001
            fails += not _line(False, f"corpus {name}", str(err).splitlines()[0])
    book = _version("jupyter_book")
    _line(book is not None, "jupyter-book (to build the site)", book or "not installed (optional)")
    vendor = Path(__file__).resolve().parent.parent / "book" / "_static" / "vendor"
    widget_js = vendor / "html-manager" / "embed-amd.js"
    _line(widget_js.is_file(), "widget JS for the static site",
          str(widget_js) if widget_js.is_file() else "not fetched yet (jupyter-book build . does)")
    chromium = shutil.which("chromium")
    _line(chromium is not None, "chromium (site tests)", chromium or "not installed (optional)")
    firefox = shutil.which("firefox-esr")
    _line(firefox is not None, "firefox-esr (live-panel tests)",
          firefox or "not installed (optional)")
    print(f"{fails} required check(s) failed" if fails else "all required checks passed")
    return fails


def _at_least(version: str, minimum: str) -> bool:
    def parts(v):
        return [int(p) for p in v.split("+")[0].split(".")[:2] if p.isdigit()]

    return parts(version) >= parts(minimum)


def demo(args) -> None:
    from .course.demo import run
    from .runtime import apply_threads

    apply_threads()  # the CPUs this process may use (DIFFUSION_LAB_THREADS overrides)
    run(args.world, args.profile, seed=args.seed, retrain=args.retrain,
        book_model=args.book_model)


def train_cmd(args) -> None:
    import diffusion_lab as dl

    text = dl.load_corpus(args.corpus)
    tok = dl.CharTokenizer.from_texts([text])
    factory = dl.tiny_ar if args.objective == "ar" else dl.tiny_mlm
    model = factory(tok, size=args.size, max_length=args.seq_len)
    t0 = time.perf_counter()
    hist = dl.train(model, tok, text, objective=args.objective, steps=args.steps,
                    batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr, seed=args.seed,
                    checkpoint_dir=Path(args.out) / "checkpoints", checkpoint_every=args.every,
                    resume=args.resume)
    dl.models.save(model, tok, args.out)
    print(f"{hist.steps} steps in {time.perf_counter() - t0:.1f} s, final loss "
          f"{hist.final_loss():.3f} nats/token; saved to {args.out}")


def terminal_animation(tok, out=sys.stdout, mask_char: str = "\u2592"):
    """A ``callback_on_step_end`` for `dl.generate` that prints the first sample after every
    reverse step, masked slots as ``mask_char``: the unmasking animation in a terminal."""

    def show(step: int, frame) -> None:
        ids, masked = frame.ids[0, 1:].tolist(), frame.mask[0, 1:].tolist()
        pieces = tok.batch_decode([[i] for i in ids], skip_special_tokens=False,
                                  clean_up_tokenization_spaces=False)
        line = "".join(mask_char if m else p for p, m in zip(pieces, masked, strict=True))
        print(f"step {step:3d} | {line!r}", file=out, flush=True)

    return show


def sample_cmd(args) -> None:
    import diffusion_lab as dl

    model, tok = dl.models.load(args.model, device=dl.get_device())
    traj = dl.generate(model, tok, prompts=[args.prompt], length=args.length, steps=args.steps,
                       strategy=args.strategy, temperature=args.temperature, seed=args.seed,
                       num_samples=args.num_samples,
                       callback_on_step_end=terminal_animation(tok) if args.live else None)
    print(f"{traj.strategy}: {traj.num_steps} steps, {traj.forward_passes} passes, "
          f"{traj.seconds:.2f} s")
    for text in traj.texts:
        print(text, "\n")
    if args.gif:
        from . import viz

        print("wrote", viz.save_gif(traj, args.gif))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffusion_lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="train (or load) the zoo's models of one world and sample")
    d.add_argument("--world", choices=list(WORLDS), default="grammar",
                   help="grammar (default): sentences with exact log-probabilities; qa: "
                        "questions and a revised forced verdict; shakespeare: characters")
    d.add_argument("--profile", choices=["cpu", "gpu", "smoke"], default=None)
    d.add_argument("--retrain", action="store_true", help="ignore the cached model")
    d.add_argument("--book-model", action="store_true",
                   help="grammar: train the book's MDLM (1500 steps on cpu) when it is not "
                        "cached, instead of the demo's smaller recipe")
    d.add_argument("--seed", type=int, default=0)
    sub.add_parser("env", help="check the environment: [OK]/[FAIL] per requirement")
    t = sub.add_parser("train", help="train a tiny model and save it")
    t.add_argument("--objective", default="mdlm")
    t.add_argument("--corpus", default="shakespeare")
    t.add_argument("--size", default="s")
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--seq-len", type=int, default=128)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--every", type=int, default=200, help="checkpoint every N steps")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--out", required=True)
    for name in ("sample", "animate"):
        s = sub.add_parser(name, help="generate from a saved model" if name == "sample"
                           else "generate and write the unmasking GIF")
        s.add_argument("--model", required=True)
        s.add_argument("--prompt", default="")
        s.add_argument("--length", type=int, default=128)
        s.add_argument("--steps", type=int, default=32)
        s.add_argument("--strategy", default=None)
        s.add_argument("--temperature", type=float, default=1.0)
        s.add_argument("--num-samples", type=int, default=1 if name == "animate" else 4)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--gif", default="unmask.gif" if name == "animate" else None)
        s.add_argument("--live", action=argparse.BooleanOptionalAction, default=name == "animate",
                       help="print the first sample after every step, as it is sampled")
    e = sub.add_parser("editions", help="write OUTDIR/student/ and OUTDIR/teacher/ notebooks")
    e.add_argument("outdir")
    g = sub.add_parser("grade", help="execute submitted student notebooks, write a CSV")
    g.add_argument("submissions", help="a folder of .ipynb files (only read)")
    g.add_argument("--chapter", required=True, help="5, 05b, a notebook stem or a path")
    g.add_argument("--out", default="grades.csv")
    g.add_argument("--profile", choices=["cpu", "gpu", "smoke"], default="cpu")
    g.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    try:
        if args.command == "env":
            return 1 if env_check() else 0
        if args.command == "editions":
            from .classroom.editions import build_editions

            written = build_editions(args.outdir)
            print(f"wrote {len(written)} student and {len(written)} teacher notebooks to "
                  f"{args.outdir}/student and {args.outdir}/teacher")
            return 0
        if args.command == "grade":
            from .classroom.grading import grade

            grade(args.submissions, args.chapter, args.out, profile=args.profile,
                  timeout=args.timeout)
            print(f"wrote {args.out}")
            return 0
        {"demo": demo, "train": train_cmd, "sample": sample_cmd, "animate": sample_cmd}[
            args.command](args)
    except (ValueError, TypeError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
