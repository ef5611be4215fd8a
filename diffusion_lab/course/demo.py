"""``python -m diffusion_lab demo``: what the library does best, in under two minutes on a CPU.

Three worlds (``--world``), each trained once and cached by the zoo (``dl.zoo``), so a second run
takes seconds:

* ``grammar`` (the default) — a small English grammar whose probabilities are known exactly
  (`grammar.book_language`).  The masked-diffusion model (MDLM, Sahoo et al. 2024) writes
  sentences with two decoders; every sentence is printed with its validity (is it in the
  language?) and its exact log-probability $\\log p(x)$, and each decoder's forward passes per
  sentence are set against the same-size GPT-2's (one pass per word, stopping at its [EOS]).
* ``qa`` — questions with exact answers (`qa`): a few answered, then the wrong verdict forced
  into answers to yes/no claims, and a revising sampler taking it back (LLaDA's thought
  experiment, chapter 8).
* ``shakespeare`` — the character-level MDLM of chapters 4-6 on Shakespeare: the weakest text
  of the three, which is why it is not the default.

On the ``cpu`` profile the grammar MDLM of the book trains 1500 steps (about 100 s on 2 cores).
When it is not in the cache the demo trains its own, smaller recipe (`DEMO_MDLM_STEPS`) and says
so; ``--book-model`` trains the book's instead.  Once the book has been built, the demo loads the
book's models.
"""

from __future__ import annotations

import sys
import textwrap
from contextlib import contextmanager
from typing import TextIO

import torch

from ..runtime import get_device
from ..sampling import generate
from ..worlds import qa
from ..worlds.grammar import EOS, book_language
from ..worlds.grammar_metrics import error_kinds, passes_per_row
from . import recipes, zoo
from .profiles import profile as get_profile

WORLDS = ("grammar", "qa", "shakespeare")
# MDLM steps of the demo's own grammar recipe, per profile (absent: the book's recipe), so that
# a first run fits two minutes on 2 cores: the book's 1500 steps take about 100 s, plus 36 s for
# the AR model.  Measured (cpu, 2026-12-07, 256 sentences x seeds 0-2): 800 steps, held-out
# loss 1.084 nats/token (the book's model: 1.067); valid with ancestral, 16 steps, 0.38-0.40
# (the book's: 0.48-0.53); with threshold 0.5, 0.90-0.93 (0.95-0.96).
DEMO_MDLM_STEPS = {"cpu": 800}
N_SENTENCES = 100  # sentences per decoder: validity is a rate over these
SHOWN = 5  # sentences printed per decoder (the first ones, in sample order)
# The two diffusion decoders of the grammar world: (label, dl.generate keywords); L = 16 slots.
GRAMMAR_DECODERS = (
    ("ancestral, 16 steps (about one word per step, in a random order)",
     dict(strategy="ancestral", steps=16)),
    ("threshold 0.5 (every word it is at least 50% sure of, at least one per step)",
     dict(strategy="threshold", steps=16, threshold=0.5)),
)
GREEDY = dict(top_k=1)  # QA answers: the most likely token


def run(world: str = "grammar", profile: str | None = None, *, seed: int = 0,
        retrain: bool = False, book_model: bool = False, out: TextIO | None = None) -> dict:
    """Run the demo of ``world`` (one of `WORLDS`), printing to ``out`` (stdout); return what
    it measured (a dict: per decoder its passes and validity, or per question its answer)."""
    if world not in WORLDS:
        raise ValueError(f"world must be one of {list(WORLDS)}, got {world!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    prof = get_profile(profile)
    out = out or sys.stdout
    print(f"diffusion-lab demo: the {world} world (profile {prof.name}, device {get_device()})",
          file=out)
    runner = {"grammar": grammar_world, "qa": qa_world, "shakespeare": shakespeare_world}[world]
    with quiet_transformers():
        return runner(prof, seed=seed, retrain=retrain, book_model=book_model, out=out)


@contextmanager
def quiet_transformers():
    """Without transformers' own progress bars ("Writing model shards") and warnings: the
    demo's output is its sentences and the training bars of `dl.train`."""
    from transformers.utils import logging as hf_logging

    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(level)


def _say(text: str, out: TextIO) -> None:
    """Print prose wrapped at 100 columns (a leading newline kept)."""
    lead = "\n" if text.startswith("\n") else ""
    print(lead + textwrap.fill(text.lstrip("\n"), 100), file=out)


def _trained(info: dict, what: str) -> str:
    how = "trained now" if info["trained_now"] else "loaded from the cache"
    return f"{what}: {how} ({info['steps']} steps, {info['seconds']} s of training)"


# ------------------------------------------------------------------ grammar
def ar_stop_at_eos(texts: list[str], length: int) -> tuple[list[str], torch.Tensor]:
    """What an AR model that stops at its first [EOS] writes and pays: each text cut after its
    first [EOS], and (B,) forward passes, one per token written up to and including that [EOS]
    (``length`` where a row writes none)."""
    cut, passes = [], []
    for text in texts:
        words = text.split()
        n = words.index(EOS) + 1 if EOS in words else len(words)
        cut.append(" ".join(words[:n]))
        passes.append(min(n, length))
    return cut, torch.tensor(passes)


def _sentence_lines(lang, texts: list[str], out: TextIO) -> tuple[torch.Tensor, torch.Tensor]:
    """Print the first `SHOWN` sentences with their validity and exact log p; return (valid,
    log p) of all of them."""
    log_p = lang.log_prob(texts)
    valid = torch.isfinite(log_p)
    kinds = error_kinds(lang, texts)
    shown = [t or EOS for t in lang.canonical(texts)]  # [EOS] padding dropped; all [EOS] kept
    for text, lp, kind in list(zip(shown, log_p.tolist(), kinds, strict=True))[:SHOWN]:
        mark = f"valid    log p = {lp:7.2f}" if kind == "valid" else f"invalid  ({kind})".ljust(24)
        print(f"  {mark} | {text}", file=out)
    return valid, log_p


def _summary(name: str, texts: list[str], passes: torch.Tensor, valid: torch.Tensor,
             log_p: torch.Tensor) -> dict:
    return {"decoder": name, "passes": passes.double().mean().item(),
            "valid": int(valid.sum()), "n": len(valid), "distinct": len(set(texts)) / len(texts),
            "log_p": log_p[valid].mean().item() if valid.any() else float("nan")}


def _table(results: list[dict], entropy: float, out: TextIO) -> None:
    print(f"\n{'decoder':16s} {'passes/sentence':>16s} {'valid':>15s} {'distinct':>9s} "
          f"{'mean log p (valid)':>19s}", file=out)
    for r in results:
        rate = f"{r['valid']}/{r['n']} ({r['valid'] / r['n']:.0%})"
        print(f"{r['decoder']:16s} {r['passes']:16.1f} {rate:>15s} {r['distinct']:9.0%} "
              f"{r['log_p']:19.2f}", file=out)
    print(f"{'the language':16s} {'':>16s} {'100%':>15s} {'':>9s} {-entropy:19.2f}  (= -H)",
          file=out)


def grammar_world(prof, *, seed: int = 0, retrain: bool = False, book_model: bool = False,
                  out: TextIO) -> dict:
    """Sentences of the book language from the MDLM (two decoders) and the AR model."""
    lang = book_language()
    L = lang.max_len
    _say(f"A small grammar of English whose probabilities are known exactly ({len(lang.words)} "
         f"words, sentences of at most L = {L} slots): each sentence below is checked against "
         f"it, with its exact log-probability in nats (a typical sentence: log p = -H = "
         f"{-lang.entropy():.1f}).", out)
    steps = DEMO_MDLM_STEPS.get(prof.name)
    if book_model or steps is None or zoo.is_cached("grammar-mdlm", prof):
        steps = None  # the book's model: in the cache, asked for, or no demo recipe
    book_steps = recipes.plan("grammar-mdlm", prof).settings.steps
    if retrain or not (zoo.is_cached("grammar-mdlm", prof, steps=steps)
                       and zoo.is_cached("grammar-ar", prof)):
        print("Training the two grammar models (cached for the next run)...", file=out)
        out.flush()
    mdlm, tok, info = zoo.pretrained("grammar-mdlm", prof, steps=steps, retrain=retrain)
    ar, _, ar_info = zoo.pretrained("grammar-ar", prof)
    recipe = (f"the demo's recipe (the book's model trains {book_steps} steps: --book-model)"
              if steps else "the book's model")
    print(f"{_trained(info, 'masked-diffusion model (MDLM)')}, {recipe}", file=out)
    print(_trained(ar_info, "autoregressive model (GPT-2 of the same size)"), file=out)
    device = get_device()
    results = []
    for name, kwargs in GRAMMAR_DECODERS:
        traj = generate(mdlm.to(device), tok, prompts=[""], length=L, seed=seed,
                        num_samples=N_SENTENCES, **kwargs)
        passes = passes_per_row(traj)
        _say(f"\nMDLM, {name}: {passes.double().mean():.1f} forward passes per sentence", out)
        valid, log_p = _sentence_lines(lang, traj.texts, out)
        results.append(_summary(f"MDLM {kwargs['strategy']}", traj.texts, passes, valid,
                                log_p))
    traj = generate(ar.to(device), tok, prompts=[""], length=L, seed=seed,
                    num_samples=N_SENTENCES, record=False)
    texts, passes = ar_stop_at_eos(traj.texts, L)
    _say(f"\nAR, one forward pass per word, stopping at its [EOS]: "
         f"{passes.double().mean():.1f} passes per sentence (min {int(passes.min())}, max "
         f"{int(passes.max())})", out)
    valid, log_p = _sentence_lines(lang, texts, out)
    results.append(_summary("AR", texts, passes, valid, log_p))
    _table(results, lang.entropy(), out)
    _say(f"({N_SENTENCES} sentences per decoder, seed {seed}; the first {SHOWN} shown.  passes: "
         "forward passes of the network per sentence; distinct: different sentences among "
         f"the {N_SENTENCES}; a mean log p above -H: more probable than the language's typical "
         "sentence (common words, short sentences).  Chapter 5b, 'What parallel decoding gets "
         "wrong', measures why the decoders differ.)", out)
    return {"decoders": results}


# ------------------------------------------------------------------ qa
def revise_forced(model, tok, questions: list[str], forced: str, *, length: int,
                  steps: int) -> list[str]:
    """Answers that must start with ``forced``, as a *revisable* token: the one place the demo
    asks for a revision (``dl.qa.ask(..., revise_forced=True)`` with the confidence-weighted
    remasking rule; change the rule here)."""
    return qa.ask(model, tok, questions, length=length, forced=forced, revise_forced=True,
                  strategy="confidence_weighted", steps=steps, seed=0, **GREEDY)[0]


def _forced_wrong(claims: list[str], answer_with) -> list[str]:
    """``answer_with(questions, forced)`` over ``claims``, forcing each one's wrong verdict."""
    answers = {}
    for true in (True, False):
        group = [q for q in claims if qa.Claims.is_true(q) == true]
        if group:
            answers.update(zip(group, answer_with(group, "no" if true else "yes"), strict=True))
    return [answers[q] for q in claims]


def qa_world(prof, *, seed: int = 0, retrain: bool = False, book_model: bool = False,
             out: TextIO) -> dict:
    """A few questions answered by the QA diffusion model; then forced wrong verdicts, kept by
    a sampler that cannot revise and taken back by one that can."""
    model, tok, info = zoo.pretrained_qa("diffusion", prof, retrain=retrain)
    print(_trained(info, "masked-diffusion QA model (fine-tuned with objective='sft')"),
          file=out)
    model = model.to(get_device())
    length = recipes.plan("qa-diffusion", prof).settings.seq_len - 1  # question + answer slots
    held_out = [q for q, _ in qa.pairs(150, seed=1)]  # chapter 8's test questions
    questions = [next(q for q in held_out if qa.family_of(q).name == f) for f in qa.FAMILIES]
    questions += [q for q in held_out if q not in questions][:3]
    steps = length - min(len(tok(q)["input_ids"]) for q in questions)
    _say("\nQuestions (the first of each family of chapter 8's held-out set, then the next "
         "three), threshold decoding (0.9), greedy:", out)
    rows = []
    for q in questions:
        answers, trajs = qa.ask(model, tok, [q], length=length, strategy="threshold",
                                steps=steps, threshold=0.9, seed=seed, **GREEDY)
        right = qa.check(q, answers[0])
        passes = int(passes_per_row(trajs[0])[0])
        rows.append({"question": q, "answer": answers[0], "right": right, "passes": passes})
        print(f"  {'right' if right else 'WRONG':5s} {passes:2d} pass{'es' if passes > 1 else '  '}"
              f" | {q} -> {answers[0]!r}",
              file=out)
    claims = list(dict.fromkeys(q for q, _ in qa.pairs(400, seed=2, families=("claims",))))[:24]
    _say(f"\nForced wrong verdicts: {len(claims)} yes/no claims (chapter 8's), each answer "
         "made to start with the wrong word (\"no\" for a true claim, \"yes\" for a false one).",
         out)
    kept = _forced_wrong(claims, lambda qs, forced: qa.ask(
        model, tok, qs, length=length, forced=forced, strategy="low_confidence", steps=steps,
        seed=0, **GREEDY)[0])
    revised = _forced_wrong(claims, lambda qs, forced: revise_forced(
        model, tok, qs, forced, length=length, steps=steps))
    summary = {}
    for name, answers in (("low_confidence (cannot revise)", kept),
                          ("confidence_weighted, revise_forced=True", revised)):
        summary[name] = sum(qa.check(q, a) for q, a in zip(claims, answers, strict=True))
        print(f"  {name + ':':41s} {summary[name]}/{len(claims)} correct", file=out)
    fixed = [i for i, (q, a) in enumerate(zip(claims, revised, strict=True)) if qa.check(q, a)]
    k = fixed[0] if fixed else 0
    word = "no" if qa.Claims.is_true(claims[k]) else "yes"
    print(f"  {'the first claim it revised' if fixed else 'none revised; the first claim'}: "
          f"{claims[k]} forced to start with {word!r}", file=out)
    print(f"    low_confidence      -> {kept[k]!r}\n    confidence_weighted -> {revised[k]!r}",
          file=out)
    print("(Chapter 8 measures this over 120 claims, with a paired test.)", file=out)
    return {"questions": rows, "forced_correct": summary, "claims": len(claims)}


# ------------------------------------------------------------------ shakespeare
def shakespeare_world(prof, *, seed: int = 0, retrain: bool = False, book_model: bool = False,
                      out: TextIO) -> dict:
    """The profile's character-level MDLM on Shakespeare: samples after "ROMEO:"."""
    model, tok, info = zoo.pretrained("mdlm", prof, retrain=retrain)
    print(f"{_trained(info, f'MDLM on {prof.corpus}')}, held-out ELBO "
          f"{info['held_out_loss'] / 0.6931:.2f} bits/char", file=out)
    results = []
    for strategy in ("ancestral", "low_confidence"):
        traj = generate(model.to(get_device()), tok, prompts=["ROMEO:"], length=prof.gen_length,
                        steps=prof.gen_steps, strategy=strategy, seed=seed, num_samples=2)
        print(f"\n--- {strategy}: {traj.num_steps} steps, {traj.forward_passes} forward passes, "
              f"{traj.seconds:.2f} s for {len(traj.texts)} samples of {prof.gen_length} chars",
              file=out)
        for text in traj.texts:
            print(text, "\n", file=out)
        results.append({"strategy": strategy, "texts": traj.texts})
    return {"samples": results}
