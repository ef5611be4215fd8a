r"""Unmasking and remasking rules: the part of the reverse process that differs between papers.

`sampling.generate` runs one loop.  At every step it asks the model for a proposal $\hat x$
(a token for every slot the step may touch, sampled in float64) and its confidence
$\hat p = p_\theta(\hat x \mid z_t)$, then asks a *strategy* two questions:

* ``update`` — which slots take their proposal now (reveal a mask, or revise a token);
* ``remask`` — which decoded slots go back to [MASK].

A strategy is one registered function ``rule(ctx) -> (update, remask)`` of (B, L) bool tensors,
plus what else differs between samplers: its starting state (all [MASK], or SUNDAE's uniform
tokens), its time grid ($t_0 = 1 > t_1 > \dots > t_n = 0$ by default), the options it accepts
(with their defaults; an unknown option is a ValueError) and when it has finished early.  The
one rule every sampler shares — the last step of a block leaves no mask — is `leave_no_mask`,
applied by the loop.  Time runs from $t = 1$ (all masked) to $0$; a step goes from $t$ to
$s < t$ and $\alpha_t = 1 - \mathrm{rate}(t)$ (see ``noise``).  Counts are per row and
vectorised: no Python loop over positions.

Adding a sampler, in a notebook or here::

    @dl.register_strategy("most_confident_first", options={"schedule": "linear"})
    def most_confident_first(ctx):
        # reveal the most confident masked slots, as many as the schedule asks
        score = ctx.p.masked_fill(~(ctx.masked & ctx.region), float("-inf"))
        return dl.strategies.top_k_mask(score, ctx.reveal_count()), ctx.nothing()

    dl.generate(model, tok, [""], length=64, steps=16, strategy="most_confident_first")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from . import noise
from .categorical import gumbel_noise
from .registry import (  # noqa: F401 - the machinery, public here: dl.strategies.*
    ALIASES,
    COMMON_OPTIONS,
    STRATEGIES,
    StepContext,
    Strategy,
    all_revealed,
    get_strategy,
    leave_no_mask,
    linear_time_grid,
    never,
    register_strategy,
    top_k_mask,
)


def _where_masked(ctx: StepContext, score: torch.Tensor) -> torch.Tensor:
    return score.masked_fill(~(ctx.masked & ctx.region), float("-inf"))


@register_strategy("ancestral")
def ancestral(ctx: StepContext):
    """MDLM's ancestral sampler: each masked slot is revealed with probability
    (alpha_s - alpha_t) / (1 - alpha_t), i.e. (t - s) / t on the linear schedule; never remasks."""
    sched = ctx.option("schedule")
    a_t, a_s = float(noise.alpha(ctx.t, sched)), float(noise.alpha(ctx.s, sched))
    p_reveal = (a_s - a_t) / max(1e-12, 1 - a_t)
    return ctx.masked & ctx.region & (ctx.rand() < p_reveal), ctx.nothing()


def llada_count(ctx: StepContext) -> torch.Tensor:
    """(B,) LLaDA's ``get_num_transfer_tokens``: the block's N slots over n steps, N // n per
    step and one more in each of the first N mod n steps (60 slots, 16 steps: 4 x 12, 3 x 4)."""
    total = ctx.region.sum(1)
    return total // ctx.n + (ctx.step < total % ctx.n).long()


@register_strategy("low_confidence", options={"counts": "schedule"})
def low_confidence(ctx: StepContext):
    """Mask-Predict / LLaDA: reveal the most confident masked slots, as many as the schedule
    asks (``counts="schedule"``: round(N rate(s)) stay masked) or as LLaDA's code counts them
    (``counts="llada"``: the remainder in the first steps, `llada_count`); a decoded token is
    never remasked."""
    counts = ctx.option("counts")
    if counts not in ("schedule", "llada"):
        raise ValueError(f"low_confidence counts must be 'schedule' or 'llada', got {counts!r}")
    k = llada_count(ctx) if counts == "llada" else ctx.reveal_count()
    return top_k_mask(_where_masked(ctx, ctx.p), k), ctx.nothing()


@register_strategy("maskgit", options={"gumbel_temperature": 4.5})
def maskgit(ctx: StepContext):
    """MaskGIT: rank masked slots by log p + tau * s * Gumbel (noise annealed to 0 as the step's
    target time s falls to 0, tau=4.5) and reveal the top ones; ``schedule="cosine"`` for
    MaskGIT's own schedule."""
    tau = ctx.option("gumbel_temperature") * ctx.s
    gumbel = gumbel_noise(ctx.x.shape, ctx.generator, ctx.x.device)
    score = ctx.p.double().clamp_min(1e-300).log() + tau * gumbel
    return top_k_mask(_where_masked(ctx, score), ctx.reveal_count()), ctx.nothing()


@register_strategy("threshold", options={"threshold": 0.9})
def threshold(ctx: StepContext):
    """Fast-dLLM's parallel decoding (Wu et al. 2025): commit every masked slot whose confidence
    is > ``threshold`` (0.9, in (0, 1]), at least one per row (the most confident); the last
    step commits the rest.  Rows may finish early, so the forward passes adapt to the input;
    ``threshold=1.0`` reveals one slot per step (the most confident), like ``low_confidence``
    with one slot per step."""
    tau = ctx.option("threshold")
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 < tau <= 1:
        raise ValueError(f"threshold must be a number in (0, 1], got {tau!r}")
    score = _where_masked(ctx, ctx.p)
    best = top_k_mask(score, torch.ones(score.shape[0], dtype=torch.long, device=score.device))
    return (torch.isfinite(score) & (score > tau)) | best, ctx.nothing()


@register_strategy("random_remask", revises=True, finished=never)
def random_remask(ctx: StepContext):
    """The seed article's sampler (old name ``"random"``): overwrite every slot with a fresh
    sample, then remask each one independently with probability rate(s) (0.9, 0.8, ... 0 for 10
    steps) - at random, not by confidence; like the article it always runs all its steps, even
    when a step happens to leave no mask.  It relies on the model copying visible tokens
    (RoBERTa and our 80/10/10 BERT learned to; a model trained only on masked slots did not -
    chapter 3 measures the difference; ``gibbs`` with ``p_max=1, p_min=0, anneal=1`` is the
    carry-over variant)."""
    return ctx.region.clone(), ctx.region & (ctx.rand() < ctx.rate_s)


@register_strategy("mask_predict", revises=True)
def mask_predict(ctx: StepContext):
    """Mask-Predict (Ghazvininejad et al. 2019): predict every masked slot, then remask the
    N * rate(s) least confident slots of the whole region, earlier predictions included."""
    update = ctx.masked & ctx.region
    conf = torch.where(update, ctx.p, ctx.conf).masked_fill(~ctx.region, float("inf"))
    n_keep_masked = torch.round(ctx.region.sum(1).double() * ctx.rate_s).long()
    return update, top_k_mask(-conf, n_keep_masked)


@register_strategy("gibbs", revises=True,
          options={"p_min": 0.1, "p_max": 0.9, "anneal": 0.7, "one_at_a_time": False})
def gibbs(ctx: StepContext):
    """Blocked Gibbs sampling with an MLM (Wang & Cho 2019; Coconet's annealing, Huang et al.):
    resample the masked slots, then mask each slot with probability
    p_n = max(p_min, p_max - (p_max - p_min) n / (a N)) (0.1, 0.9, a=0.7) for the next step.
    ``one_at_a_time=True`` masks a single random slot instead (Wang & Cho's sampler)."""
    update = ctx.masked & ctx.region
    if ctx.option("one_at_a_time"):
        score = ctx.rand().masked_fill(~ctx.region, float("-inf"))
        one = torch.ones(score.shape[0], dtype=torch.long, device=score.device)
        return update, top_k_mask(score, one)
    p_min, p_max = ctx.option("p_min"), ctx.option("p_max")
    p_n = max(p_min, p_max - (p_max - p_min) * (ctx.step + 1) / (ctx.option("anneal") * ctx.n))
    return update, ctx.region & (ctx.rand() < p_n)


def remask_probability(conf: torch.Tensor, scale: float = 0.5, power: float = 1.0) -> torch.Tensor:
    """Confidence-weighted remasking: p_remask(c) = scale * (1 - c) ** power, falling as c rises."""
    return scale * (1 - conf.double().clamp(0, 1)) ** power


@register_strategy("confidence_weighted", revises=True,
                   options={"remask_scale": 0.5, "remask_power": 1.0})
def confidence_weighted(ctx: StepContext):
    """The decode-time rule: send each decoded token back to [MASK] with probability
    ``remask_probability(conf)`` (``remask_scale``, ``remask_power``), at most as many as the
    schedule still leaves masked; then reveal the most confident masked slots so that the count
    follows the schedule.  ``conf`` is the confidence a token had when it was decoded (a given
    ``revisable`` token: the start probe's) and is never updated, so what is written after a
    token does not change its chance of being remasked; ``reread_remask``
    (``strategies_revision``) re-scores every decoded token at every step instead."""
    decoded = ctx.region & ~ctx.masked
    p_remask = remask_probability(ctx.conf, ctx.option("remask_scale"), ctx.option("remask_power"))
    draw = decoded & (ctx.rand() < p_remask)
    target = torch.round(ctx.region.sum(1).double() * ctx.rate_s).long()
    # cap: after revealing, at most `target` slots may be masked, so |remask| <= target
    remask = top_k_mask((-ctx.conf.double()).masked_fill(~draw, float("-inf")), target)
    update = top_k_mask(_where_masked(ctx, ctx.p), ctx.reveal_count(extra=remask.sum(1)))
    return update, remask


def loop_time_grid(n: int, t_on: float = 0.55, t_off: float = 0.05,
                   alpha_on: float = 0.9) -> list[float]:
    r"""ReMDM-loop's mask rates on its uniform clock $\tau_i = 1 - i/n$ (ReMDM's defaults).

    While $\tau > t_{on}$ MDLM descends to $1 - \alpha_{on}$; while $t_{off} < \tau \le t_{on}$
    the rate stays there (the loop: every step remasks and reveals); from $\tau \le t_{off}$ it
    finishes in proportion to $\tau$.  So 45% / 50% / 5% of the steps (32 steps: 15 / 16 / 1), as
    ReMDM's sampler.  One difference: the step that crosses $t_{on}$ ends on the plateau, where
    ReMDM's code extrapolates the descent past it (to 0.0625 at 32 steps)."""
    if n < 4:
        raise ValueError(f"the remdm 'loop' variant needs steps >= 4, got {n}")
    taus = [1 - i / n for i in range(n + 1)]
    first_finish = next(tau for tau in taus if tau <= t_off)
    plateau = 1 - alpha_on
    grid = []
    for tau in taus:
        if tau > t_on:
            grid.append(max(plateau, 1 - (1 - tau) * alpha_on / (1 - t_on)))
        elif tau > t_off or first_finish == 0:
            grid.append(plateau if tau > 0 else 0.0)
        else:
            grid.append(plateau * tau / first_finish)
    return grid


def remdm_time_grid(n: int, options: Mapping[str, Any]) -> list[float]:
    """The linear grid, or `loop_time_grid` for ``variant="loop"``."""
    return loop_time_grid(n) if options.get("variant") == "loop" else linear_time_grid(n, options)


REMDM_VARIANTS = ("cap", "rescale", "conf", "loop")


@register_strategy("remdm", revises=True, time_grid=remdm_time_grid,
          options={"variant": "rescale", "eta": 0.5, "eta_loop": 0.02})
def remdm(ctx: StepContext):
    """ReMDM (Wang et al. 2025): decoded tokens are remasked with probability sigma_t and masked
    slots revealed with probability (alpha_s - (1 - sigma_t) alpha_t) / (1 - alpha_t), with
    sigma_t <= sigma_max = min(1, (1 - alpha_s) / alpha_t).  ``variant``: "cap" sigma =
    min(eta, sigma_max); "rescale" (default) sigma = eta * sigma_max; "conf" sigma_i = sigma_max *
    softmax(-conf)_i over decoded tokens and 0 at masked slots, which therefore reveal at MDLM's
    rate (as in ReMDM's code); "loop" runs MDLM down to mask rate 0.1, loops there for half the
    steps with sigma = ``eta_loop``, then finishes (its time grid: `loop_time_grid`).

    Defaults: ``eta_loop`` = 0.02 is ReMDM's.  ``eta`` = 0.5 is this book's, not ReMDM's (its
    scripts use 0.008 for cap and 0.015 for rescale, at 1024 tokens and 1024 steps): on the
    book's short samples and few steps the paper's values remask little (128 slots, 32 steps:
    about 14 remaskings a sample in expectation, against 480 for rescale at 0.5), so the
    chapters could not show what remasking does.  Pass ``eta`` to run the paper's setting."""
    variant, eta = ctx.option("variant"), ctx.option("eta")
    sched = "linear" if variant == "loop" else ctx.option("schedule")  # loop: a grid of rates
    a_t, a_s = float(noise.alpha(ctx.t, sched)), float(noise.alpha(ctx.s, sched))
    sigma_max = min(1.0, (1 - a_s) / a_t) if a_t > 0 else 1.0
    decoded = ctx.region & ~ctx.masked
    if variant == "cap":
        sigma = torch.full_like(ctx.p, min(eta, sigma_max), dtype=torch.float64)
    elif variant == "rescale":
        sigma = torch.full_like(ctx.p, eta * sigma_max, dtype=torch.float64)
    elif variant == "conf":
        weights = torch.softmax((-ctx.conf.double()).masked_fill(~decoded, float("-inf")), dim=1)
        sigma = (sigma_max * weights).nan_to_num(0.0)
    elif variant == "loop":
        on_plateau = ctx.t == ctx.s
        value = min(ctx.option("eta_loop"), sigma_max) if on_plateau else 0.0
        sigma = torch.full_like(ctx.p, value, dtype=torch.float64)
    else:
        raise ValueError(f"remdm variant must be one of {list(REMDM_VARIANTS)}, got {variant!r}")
    if ctx.last or a_t <= 0:
        sigma = torch.zeros_like(sigma)  # keeps p_reveal a probability; leave_no_mask does the rest
    row_sigma = (sigma * decoded).sum(1) / decoded.sum(1).clamp(min=1)  # (B,)
    if variant == "conf":  # ReMDM: sigma is 0 at a masked slot, so it reveals at MDLM's rate
        row_sigma = torch.zeros_like(row_sigma)
    p_reveal = ((a_s - (1 - row_sigma) * a_t) / max(1e-12, 1 - a_t)).clamp(0, 1)[:, None]
    u = ctx.rand()
    return ctx.masked & ctx.region & (u < p_reveal), decoded & (u < sigma)


def nothing_would_change(ctx: StepContext, masked_after: torch.Tensor) -> bool:
    """SUNDAE's stop: the model agrees with every token of the region."""
    return bool(((ctx.proposal == ctx.x) | ~ctx.region).all())


@register_strategy("sundae", start="uniform", revises=True, finished=nothing_would_change,
          options={"update_fraction": 0.3})
def sundae(ctx: StepContext):
    """SUNDAE (Savinov et al. 2022): start from uniformly random tokens; each step resample a
    random ``update_fraction`` (0.3) of the slots, all of them on the last step; the block stops
    once the model agrees with every token (`nothing_would_change`).  Use a low ``temperature``
    (e.g. 0.5)."""
    frac = 1.0 if ctx.last else ctx.option("update_fraction")
    return ctx.region & (ctx.rand() < frac), ctx.nothing()


from . import strategies_revision  # noqa: E402, F401 - registers reread_remask, token_editing
