"""How long a chapter takes on the ``gpu`` profile on a Colab T4, from measured FLOPs.

No GPU was available where this was written, so the book states an *estimate*. A chapter is a
list of `Job`s, each ``sequences`` sequences through one network in ``calls`` calls (training
steps or forward passes), and takes

    seconds = extra FLOPs / (peak * utilisation)
              + sum over its jobs of max(sequences * F / (peak * utilisation),
                                         calls * ops * SECONDS_PER_OP)

* F and ops are *measured*, not guessed: `measure_pass` runs one forward (and backward) pass of
  the network the chapter really runs (`Net`: ModernBERT or GPT-2, size, sequence length and
  tokenizer as its recipe builds them, or the grammar oracle) over one sequence under
  ``torch.utils.flop_counter``, and counts the PyTorch operators it dispatches;
* the counts follow the chapters' cells (`chapter_work`), per chapter in a fresh runtime: it
  trains every shared model it needs (a later chapter in the same session finds them cached);
* peak: NVIDIA's T4 datasheet, 65 TFLOPS fp16 on tensor cores for training (``dl.train`` runs
  under autocast fp16 with a gradient scaler on a T4, which has no bf16), 8.1 TFLOPS fp32 for
  sampling and scoring (no autocast there). Chapter 5b's grammar oracle stays on the CPU (the
  notebook never moves it): Colab's 2 vCPUs, *assumed* to be one Xeon core at 2.2 GHz with
  AVX2 (2 FMA units: 32 fp32 FLOPs per cycle), 70 GFLOPS;
* utilisation: 15% of peak (on the CPU too), an assumption for models this small (d = 128-256,
  4-6 layers): kernel launches and the optimiser step weigh more than in large models. Replace
  it with a measured tokens/s once a chapter has run on a T4 (``info["tokens_per_s"]`` in the
  zoo);
* the floor: a call cannot be faster than dispatching its operators, *assumed* 10 us each (eager
  PyTorch's dispatch plus a CUDA kernel launch cost about 5-25 us of host time). It decides for
  the smallest models (chapter 8's, 128 wide at 20 tokens) and small batches. The optimiser's
  and the sampler's own operators are not counted, so the floor is a lower bound.

Not counted: the Python work around the networks (tokenising, scoring samples against the
grammar, plotting), which the ``cpu`` timings include.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import torch

from .profiles import Profile


@dataclass(frozen=True)
class Accelerator:
    """A device's peak throughput (TFLOPS): published for a GPU, assumed for Colab's CPU."""

    name: str
    fp16_tflops: float
    fp32_tflops: float


T4 = Accelerator("Tesla T4", fp16_tflops=65.0, fp32_tflops=8.1)
# 2.2e9 cycles/s x 32 FLOPs per cycle (assumed, see above); no faster half precision on a CPU
COLAB_CPU = Accelerator("Colab CPU, 2 vCPUs", fp16_tflops=0.0704, fp32_tflops=0.0704)
UTILISATION = 0.15
SECONDS_PER_OP = 10e-6


@dataclass(frozen=True)
class PassCost:
    """One pass over one sequence: its FLOPs, and the operators it dispatches (any batch)."""

    flops: float
    ops: int


def measure_pass(model, seq_len: int, backward: bool = True) -> PassCost:
    """FLOPs and dispatched operators of one forward (+ backward) pass over ``seq_len`` tokens."""
    from torch.utils._python_dispatch import TorchDispatchMode  # what FlopCounterMode builds on
    from torch.utils.flop_counter import FlopCounterMode

    class OperatorCount(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops += 1
            return func(*args, **(kwargs or {}))

    ids = torch.randint(0, model.config.vocab_size, (1, seq_len))
    model.train(backward)
    with FlopCounterMode(display=False) as counter, OperatorCount() as ops:
        out = model(input_ids=ids).logits
        if backward:
            out.float().mean().backward()
    model.zero_grad(set_to_none=True)
    model.eval()
    return PassCost(float(counter.get_total_flops()), ops.ops)


@dataclass(frozen=True)
class Net:
    """A network as far as its cost goes: ``kind`` "mlm" (`models.tiny_mlm`), "ar"
    (`models.tiny_ar`) or "oracle" (`GrammarOracleForMaskedLM` of the book language); ``size``;
    ``seq_len``, the positions it sees (the anchor included; "scratch": chapter 0's
    `scratch.Denoiser`, no anchor); ``vocab``, its tokenizer: "char"
    (the profile's corpus), "grammar" (the book language's words) or "qa" (the QA models' BPE)."""

    kind: str
    size: str
    seq_len: int
    vocab: str

    def build(self, prof: Profile):
        """A randomly initialised copy (the cost does not depend on the weights)."""
        from .. import models
        from ..worlds.grammar import book_language
        from ..worlds.grammar_oracle import GrammarOracleForMaskedLM
        from . import recipes

        if self.kind == "scratch":
            return _ScratchDenoiser()
        if self.kind == "oracle":
            return GrammarOracleForMaskedLM(book_language(self.seq_len - 1))
        kind = {"char": "mdlm", "qa": "qa-diffusion", "grammar": "grammar-mdlm"}[self.vocab]
        tok = recipes.tokenizer(recipes.plan(kind, prof))
        factory = models.tiny_ar if self.kind == "ar" else models.tiny_mlm
        return factory(tok, size=self.size, max_length=self.seq_len)


class _ScratchDenoiser(torch.nn.Module):
    """Chapter 0's from-scratch denoiser behind the interface `measure_pass` reads."""

    def __init__(self):
        from . import scratch

        super().__init__()
        self.net = scratch.Denoiser()
        self.config = SimpleNamespace(vocab_size=scratch.V + 1)

    def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.net(input_ids))


@dataclass(frozen=True)
class Job:
    """``sequences`` sequences through ``net`` in ``calls`` calls. ``train``: forward, backward
    and an optimiser step under autocast fp16; else forward passes in fp32. ``device``: where
    the notebook runs it (None: the runtime's GPU)."""

    net: Net
    sequences: int
    calls: int
    train: bool = False
    device: Accelerator | None = None


def training(net: Net, steps: int, batch_size: int) -> Job:
    """``steps`` optimiser steps on ``batch_size`` sequences each."""
    return Job(net, steps * batch_size, steps, train=True)


def passes(net: Net, calls: int, rows: int, device: Accelerator | None = None) -> Job:
    """``calls`` forward passes over ``rows`` sequences each (a sampler's steps, a scorer's
    batches)."""
    return Job(net, calls * rows, calls, device=device)


def cached_ar(net: Net, rows: int, tokens: int) -> Job:
    """An AR model writing ``tokens`` tokens for ``rows`` rows with its KV cache: one pass per
    token, each over the new token only, so about one full sequence of work per row."""
    return Job(net, rows, tokens)


@dataclass(frozen=True)
class Work:
    """What a chapter computes: its jobs, and FLOPs outside the book's networks (chapter 7's
    roberta-base)."""

    jobs: tuple[Job, ...]
    extra_flops: float = 0.0


ROBERTA_BASE_PARAMS = 124.6e6  # fine-tuned in chapter 7 on the gpu profile when online
# chapter 5b's samples per measurement (N, N_TV in its setup cell), per profile
PARALLEL_DECODING_SAMPLES = {"smoke": (48, 300), "cpu": (300, 1500), "gpu": (2000, 20000)}


def chapter_work(prof: Profile) -> dict[str, Work]:
    """Per chapter, in book order, on a fresh runtime. ``zoo.pretrained`` trains
    ``train_steps`` x ``batch_size`` sequences per model; generation counts passes x samples,
    rounded up (the chapters' sweeps over step budgets and strategies). Chapters 1-7 count their
    own small experiments on the profile's model (an upper bound where theirs is smaller)."""
    mlm, ar = (Net(kind, prof.model_size, prof.seq_len, "char") for kind in ("mlm", "ar"))
    zoo_mlm, zoo_ar = (training(net, prof.train_steps, prof.batch_size) for net in (mlm, ar))
    quick = training(mlm, prof.quick_steps, prof.batch_size)

    def sweeps(n: float) -> Job:  # n strategies at the profile's steps, num_samples rows
        return passes(mlm, round(n * prof.gen_steps), prof.num_samples)

    hub = (6 * ROBERTA_BASE_PARAMS * prof.quick_steps * 16 * 257  # batch 16, 257 tokens
           if prof.name == "gpu" else 0.0)
    student = training(mlm, prof.quick_steps, prof.batch_size // 4)  # chapter 7's fine-tuning
    return {
        "00_intro": Work(_intro(prof)),
        "00_from_scratch": Work(_from_scratch(prof)),
        "01_mlm": Work((zoo_mlm, passes(mlm, 10, prof.eval_blocks))),
        "02_gibbs": Work((zoo_mlm, zoo_ar, sweeps(3 * (1 + 1 / 4 + 4)),
                          passes(mlm, prof.gen_length, 8))),
        "03_generative_mlm": Work((zoo_mlm, zoo_mlm, zoo_ar, sweeps(12))),
        "04_diffusion": Work((zoo_mlm, zoo_mlm, zoo_mlm, zoo_ar, sweeps(6),
                              passes(mlm, 3 * 8, prof.eval_blocks))),
        "05_sampling": Work((zoo_mlm, zoo_ar, quick, sweeps(16))),
        "05b_parallel_decoding": Work(_parallel_decoding(prof)),
        "06_remasking": Work((zoo_mlm, zoo_mlm, zoo_ar, quick, quick, quick, quick, sweeps(20))),
        "07_pretrained_race": Work((zoo_mlm, zoo_mlm, zoo_mlm, zoo_ar, student, sweeps(8)), hub),
        "08_answering": Work(_answering(prof)),
    }


def _grammar_models(prof: Profile) -> tuple[Net, Net, tuple[Job, Job]]:
    """(the MDLM, the AR model, training both): the intro's and chapter 5b's grammar models,
    with their recipes' budgets (`recipes.RECIPES`)."""
    from . import recipes

    plans = [recipes.plan(kind, prof) for kind in ("grammar-mdlm", "grammar-ar")]
    mdlm, ar = (Net(kind, p.size, p.settings.seq_len, "grammar")
                for kind, p in zip(("mlm", "ar"), plans, strict=True))
    return mdlm, ar, tuple(training(net, p.settings.steps, p.settings.batch_size)
                           for net, p in zip((mdlm, ar), plans, strict=True))


def _intro(prof: Profile) -> tuple[Job, ...]:
    """The introduction: the grammar models, 16 sentences written, and a race of one."""
    mdlm, ar, trained = _grammar_models(prof)
    length = mdlm.seq_len - 1
    return (*trained, passes(mdlm, length, 16), cached_ar(ar, 1, length),
            passes(mdlm, length // 2, 1))


# chapter 0's training steps and sentences per measurement (STEPS, N in its set-up cell)
FROM_SCRATCH_RUNS = {"smoke": (30, 100), "cpu": (2000, 1000), "gpu": (2000, 1000)}


def _from_scratch(prof: Profile) -> tuple[Job, ...]:
    """Chapter 0, all on the CPU (its code never moves to a GPU): two trainings of the scratch
    denoiser (batch 64), then n sentences sampled at K = L (trained, untrained, exercises 3
    and 4), K = 1, 2, 4, 8 and twice K = 4 (exercise 1), and the held-out bounds."""
    from ..worlds.grammar import book_language

    steps, n = FROM_SCRATCH_RUNS.get(prof.name, FROM_SCRATCH_RUNS["cpu"])
    length = book_language().max_len
    net, cpu = Net("scratch", "64x4", length, "grammar"), COLAB_CPU
    trained = Job(net, steps * 64, steps, train=True, device=cpu)
    sampling = passes(net, 4 * length + 1 + 2 + 4 + 8 + 2 * 4, n, cpu)
    bounds = passes(net, 2 + 2 * 16, 2000, cpu)  # exercise 3's two bounds, exercise 4's check
    return trained, trained, sampling, bounds, passes(net, 2, 256, cpu)  # the library check


def _parallel_decoding(prof: Profile) -> tuple[Job, ...]:
    """Chapter 5b: n held-out or sampled sentences per measurement, n_tv for the TV section.
    Samplers run on the MDLM and on the oracle alike; the oracle on the CPU."""
    mdlm, ar, trained = _grammar_models(prof)
    n, n_tv = PARALLEL_DECODING_SAMPLES.get(prof.name, PARALLEL_DECODING_SAMPLES["cpu"])
    length = mdlm.seq_len - 1
    oracle = Net("oracle", "exact", mdlm.seq_len, "grammar")
    sweeps = [(6 * (1 + 2 + 3), n_tv),  # TV: 6 strategies x K = 1, 2, 3 steps
              (6 * (1 + 2 + 4 + 8 + 16), n),  # the whole language: 6 strategies x K in KS
              (4 + 8, n),  # which dependencies break: ancestral at K = 4, 8
              (3 * length, n),  # rule or model: 3 rules at K = L
              (2 * 5 * length, n)]  # ReMDM and ancestral at K = L and 4L
    nll_batches = math.ceil(n / 64)  # sentence_nll: 64 sentences x L orders' rows per call
    hidden = (math.ceil(n * length / 256), 256)  # hidden_word_rows: n x L rows, 256 per call
    model_jobs = (*trained, passes(mdlm, 2 * nll_batches, 64 * length),  # 2 orders
                  passes(mdlm, *hidden), *(passes(mdlm, k, rows) for k, rows in sweeps),
                  passes(mdlm, 5 * length, n),  # threshold decoding, 5 thresholds, <= L passes
                  passes(ar, nll_batches, 64), cached_ar(ar, n, length))
    cpu = COLAB_CPU
    oracle_jobs = (passes(oracle, nll_batches, 64 * length, cpu), passes(oracle, *hidden, cpu),
                   *(passes(oracle, k, rows, cpu) for k, rows in sweeps),
                   passes(oracle, 2 * (length // 4), n, cpu))  # exercise 2: two samplers
    return model_jobs + oracle_jobs


def _answering(prof: Profile) -> tuple[Job, ...]:
    """Chapter 8: both QA models trained (recipe ``"qa-diffusion"``), then 150 questions, 120
    claims and the timed subsets answered by each decoder; at most one pass per answer slot."""
    from ..worlds import qa
    from . import recipes

    plan = recipes.plan("qa-diffusion", prof)
    recipe, tok = plan.settings, recipes.tokenizer(plan)
    diffusion, ar = (Net(kind, plan.size, recipe.seq_len, "qa") for kind in ("mlm", "ar"))
    questions = [q for q, _ in qa.pairs(150, seed=1)]
    claims = list(dict.fromkeys(q for q, _ in qa.pairs(400, seed=2, families=("claims",))))[:120]
    length = recipe.seq_len - 1  # question + answer slots (the anchor excluded)
    slots = length - min(len(tok(q)["input_ids"]) for q in questions)  # the notebook's steps

    def batches(qs):  # dl.qa.ask decodes questions of one token count together
        return len({len(tok(q)["input_ids"]) for q in qs})

    groups, claim_groups = batches(questions), batches(claims)
    one, eight = 24, 48  # questions timed at batch 1, at batch 8
    budgets = 4 + 8 + slots + 4 * slots  # 3 fixed-step settings, 4 thresholds (<= slots)
    return (training(diffusion, recipe.steps, recipe.batch_size),
            training(ar, recipe.steps, recipe.batch_size),
            passes(diffusion, groups * (slots + budgets), len(questions) // groups),  # accuracy
            # the forced verdicts: 4 decoders x 2 verdicts (+1 pass each where revisable); and
            # the unforced answers
            passes(diffusion, claim_groups * (8 * slots + 4), len(claims) // 2 // claim_groups),
            passes(diffusion, claim_groups * slots, len(claims) // claim_groups),
            passes(diffusion, one * budgets, 1), passes(diffusion, eight // 8 * budgets, 8),
            passes(diffusion, 50 * (slots + 1) + 12 + 60, 1),  # revision seeds, a widget, timing
            cached_ar(ar, 2 * len(questions) + len(claims) + one + eight,
                      slots * (2 * groups + 2 * claim_groups + one + eight // 8)))


def estimate_seconds(flops: float, device: Accelerator = T4, amp: bool = True,
                     utilisation: float = UTILISATION) -> float:
    """``flops / (peak * utilisation)``; peak = fp16 tensor cores under AMP, else fp32."""
    if not 0 < utilisation <= 1:
        raise ValueError(f"utilisation must be in (0, 1], got {utilisation!r}")
    peak = device.fp16_tflops if amp else device.fp32_tflops
    return flops / (peak * 1e12 * utilisation)


def job_seconds(job: Job, cost: PassCost, device: Accelerator = T4,
                utilisation: float = UTILISATION) -> float:
    """``max(sequences * F / (peak * utilisation), calls * ops * SECONDS_PER_OP)``."""
    compute = estimate_seconds(job.sequences * cost.flops, job.device or device, job.train,
                               utilisation)
    return max(compute, job.calls * cost.ops * SECONDS_PER_OP)


def chapter_estimates(prof: Profile, device: Accelerator = T4,
                      utilisation: float = UTILISATION) -> dict[str, float]:
    """Estimated seconds per chapter for ``prof`` on ``device`` (see the module docstring)."""
    work = chapter_work(prof)
    models, costs = {}, {}  # each network built once, measured once per kind of pass
    for job in (job for w in work.values() for job in w.jobs):
        if (job.net, job.train) not in costs:
            if job.net not in models:
                models[job.net] = job.net.build(prof)
            costs[job.net, job.train] = measure_pass(models[job.net], job.net.seq_len,
                                                     backward=job.train)
    return {name: estimate_seconds(w.extra_flops, device, True, utilisation)
            + sum(job_seconds(job, costs[job.net, job.train], device, utilisation)
                  for job in w.jobs)
            for name, w in work.items()}
