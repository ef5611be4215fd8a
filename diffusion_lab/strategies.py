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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from . import noise
from .categorical import gumbel_noise


@dataclass
class StepContext:
    """Everything a rule may look at; tensors are (B, L) unless noted."""

    x: torch.Tensor  # current ids (masks included)
    masked: torch.Tensor  # True where x is [MASK]
    region: torch.Tensor  # slots this step may touch (free, and in the current block)
    proposal: torch.Tensor  # \hat x, sampled for region slots
    p: torch.Tensor  # model probability of the proposal (0 outside the region)
    conf: torch.Tensor  # confidence each decoded token had when it was decoded
    t: float
    s: float
    step: int  # index within the block, 0..n-1
    n: int  # steps in this block
    generator: torch.Generator
    options: dict = field(default_factory=dict)  # the strategy's defaults, updated by the caller

    def rand(self) -> torch.Tensor:
        """(B, L) float64 uniforms from the sampler's generator."""
        return torch.rand(self.x.shape, generator=self.generator, device=self.x.device,
                          dtype=torch.float64)

    def option(self, name: str, default=None):
        return self.options.get(name, default)

    def nothing(self) -> torch.Tensor:
        """(B, L) all False: "update nothing" or "remask nothing"."""
        return torch.zeros_like(self.masked)

    @property
    def last(self) -> bool:
        """True on the block's last step (after it, `leave_no_mask` holds)."""
        return self.step == self.n - 1

    @property
    def rate_s(self) -> float:
        """Fraction of the region that should still be masked after this step."""
        return float(noise.mask_rate(self.s, self.option("schedule", "linear")))

    def reveal_count(self, extra: torch.Tensor | int = 0) -> torch.Tensor:
        """(B,) how many masked region slots to reveal so that round(N * rate(s)) stay masked."""
        total = self.region.sum(1)
        target = torch.round(total.double() * self.rate_s).long()
        now = (self.masked & self.region).sum(1)
        return (now - target + extra).clamp(min=0)


def linear_time_grid(n: int, options: Mapping[str, Any]) -> list[float]:
    """$t_i = 1 - i / n$ for $i = 0..n$: the grid of every sampler but ReMDM-loop."""
    return [1 - i / n for i in range(n + 1)]


def all_revealed(ctx: StepContext, masked_after: torch.Tensor) -> bool:
    """The default early stop: no masked slot is left in the region (e.g. "threshold")."""
    return not bool((masked_after & ctx.region).any())


def leave_no_mask(ctx: StepContext, update: torch.Tensor, remask: torch.Tensor):
    """The rule every sampler shares: a block's last step reveals every masked slot of the
    region and remasks nothing, so sampling ends with no [MASK].  Other steps pass through."""
    if not ctx.last:
        return update, remask
    return update | (ctx.masked & ctx.region), torch.zeros_like(remask)


COMMON_OPTIONS = {"schedule": "linear"}  # the noise schedule behind rate(s) and alpha_t


@dataclass(frozen=True)
class Strategy:
    """A registered sampler: its rule and everything else that differs between samplers."""

    rule: Callable[[StepContext], tuple[torch.Tensor, torch.Tensor]]
    start: str = "mask"  # "mask" (absorbing) or "uniform" (SUNDAE's random tokens)
    revises: bool = False  # may change a token that was already decoded
    doc: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)  # accepted options and defaults
    time_grid: Callable[[int, Mapping[str, Any]], list[float]] = linear_time_grid
    finished: Callable[[StepContext, torch.Tensor], bool] = all_revealed

    def resolve_options(self, name: str, given: Mapping[str, Any]) -> dict:
        """The defaults updated by ``given``; an option the strategy does not declare is a
        ValueError naming it and listing the valid ones (no misspelling goes unnoticed)."""
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            raise ValueError(f"strategy {name!r} has no option {unknown[0]!r}; its options are "
                             f"{sorted(self.options) or 'none'}")
        return {**self.options, **given}


STRATEGIES: dict[str, Strategy] = {}
ALIASES = {"random": "random_remask"}  # old name -> name: old notebooks keep working


def register(name: str, *, start: str = "mask", revises: bool = False,
             options: Mapping[str, Any] | None = None, time_grid=None, finished=None):
    """Decorator: add ``rule`` to the registry under ``name`` (replacing one of the same name).

    ``options``: the options the rule reads with ``ctx.option(name)`` and their defaults (the
    noise ``schedule`` is always accepted); ``start``: "mask" or "uniform"; ``revises``: the
    rule may change decoded tokens (given ``revisable`` prompt tokens included); ``time_grid``:
    ``f(n, options) -> [t_0 = 1, ..., t_n = 0]``; ``finished``: ``f(ctx, masked_after) -> bool``,
    True to stop the block early.  Usable from a notebook as ``dl.register_strategy``.
    """
    if not isinstance(name, str) or not name or name == "ar" or name in ALIASES:
        raise ValueError(f"name must be a new non-empty str (not 'ar' or an alias in "
                         f"{sorted(ALIASES)}), got {name!r}")
    if start not in ("mask", "uniform"):
        raise ValueError(f"start must be 'mask' or 'uniform', got {start!r}")

    def wrap(rule):
        STRATEGIES[name] = Strategy(rule, start, revises, (rule.__doc__ or "").strip(),
                                    {**COMMON_OPTIONS, **(options or {})},
                                    time_grid or linear_time_grid, finished or all_revealed)
        return rule

    return wrap


register_strategy = register


def top_k_mask(score: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(B, L) True at the ``k[b]`` highest finite scores of each row (vectorised ranks)."""
    order = score.argsort(dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(score.shape[1], device=score.device).expand_as(order))
    return (ranks < k[:, None]) & torch.isfinite(score)


def _where_masked(ctx: StepContext, score: torch.Tensor) -> torch.Tensor:
    return score.masked_fill(~(ctx.masked & ctx.region), float("-inf"))


@register("ancestral")
def ancestral(ctx: StepContext):
    """MDLM's ancestral sampler: each masked slot is revealed with probability
    (alpha_s - alpha_t) / (1 - alpha_t), i.e. (t - s) / t on the linear schedule; never remasks."""
    sched = ctx.option("schedule")
    a_t, a_s = float(noise.alpha(ctx.t, sched)), float(noise.alpha(ctx.s, sched))
    p_reveal = (a_s - a_t) / max(1e-12, 1 - a_t)
    return ctx.masked & ctx.region & (ctx.rand() < p_reveal), ctx.nothing()


@register("low_confidence")
def low_confidence(ctx: StepContext):
    """Mask-Predict / LLaDA: reveal the most confident masked slots, as many as the schedule
    asks; a decoded token is never remasked."""
    return top_k_mask(_where_masked(ctx, ctx.p), ctx.reveal_count()), ctx.nothing()


@register("maskgit", options={"gumbel_temperature": 4.5})
def maskgit(ctx: StepContext):
    """MaskGIT: rank masked slots by log p + tau (1 - s) Gumbel (annealed noise, tau=4.5) and
    reveal the top ones; use ``schedule="cosine"`` for MaskGIT's own schedule."""
    tau = ctx.option("gumbel_temperature") * ctx.s
    gumbel = gumbel_noise(ctx.x.shape, ctx.generator, ctx.x.device)
    score = ctx.p.double().clamp_min(1e-300).log() + tau * gumbel
    return top_k_mask(_where_masked(ctx, score), ctx.reveal_count()), ctx.nothing()


@register("threshold", options={"threshold": 0.9})
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


@register("random_remask", revises=True)
def random_remask(ctx: StepContext):
    """The seed article's sampler (old name ``"random"``): overwrite every slot with a fresh
    sample, then remask each one independently with probability rate(s) (0.9, 0.8, ... 0 for 10
    steps) - at random, not by confidence.  It relies on the model copying visible tokens
    (RoBERTa and our 80/10/10 BERT learned to; a model trained only on masked slots did not -
    chapter 3 measures the difference; ``gibbs`` with ``p_max=1, p_min=0, anneal=1`` is the
    carry-over variant)."""
    return ctx.region.clone(), ctx.region & (ctx.rand() < ctx.rate_s)


@register("mask_predict", revises=True)
def mask_predict(ctx: StepContext):
    """Mask-Predict (Ghazvininejad et al. 2019): predict every masked slot, then remask the
    N * rate(s) least confident slots of the whole region, earlier predictions included."""
    update = ctx.masked & ctx.region
    conf = torch.where(update, ctx.p, ctx.conf).masked_fill(~ctx.region, float("inf"))
    n_keep_masked = torch.round(ctx.region.sum(1).double() * ctx.rate_s).long()
    return update, top_k_mask(-conf, n_keep_masked)


@register("gibbs", revises=True,
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


@register("confidence_weighted", revises=True, options={"remask_scale": 0.5, "remask_power": 1.0})
def confidence_weighted(ctx: StepContext):
    """Send each decoded token back to [MASK] with probability ``remask_probability(conf)``
    (``remask_scale``, ``remask_power``), at most as many as the schedule still leaves masked;
    then reveal the most confident masked slots so that the count follows the schedule."""
    decoded = ctx.region & ~ctx.masked
    p_remask = remask_probability(ctx.conf, ctx.option("remask_scale"), ctx.option("remask_power"))
    draw = decoded & (ctx.rand() < p_remask)
    target = torch.round(ctx.region.sum(1).double() * ctx.rate_s).long()
    # cap: after revealing, at most `target` slots may be masked, so |remask| <= target
    remask = top_k_mask((-ctx.conf.double()).masked_fill(~draw, float("-inf")), target)
    update = top_k_mask(_where_masked(ctx, ctx.p), ctx.reveal_count(extra=remask.sum(1)))
    return update, remask


def loop_time_grid(n: int, t_on: float = 0.1, loop_fraction: float = 0.2) -> list[float]:
    """ReMDM-loop's times t_0 = 1 > ... : MDLM down to ``t_on``, a plateau, then down to 0."""
    if n < 4:
        raise ValueError(f"the remdm 'loop' variant needs steps >= 4, got {n}")
    n_loop = max(1, round(n * loop_fraction))
    n_down = max(1, round((n - n_loop) * (1 - t_on)))
    n_end = max(1, n - n_loop - n_down)
    down = [1 - (1 - t_on) * i / n_down for i in range(n_down)]
    end = [t_on * (1 - i / n_end) for i in range(n_end + 1)]
    return down + [t_on] * n_loop + end


def remdm_time_grid(n: int, options: Mapping[str, Any]) -> list[float]:
    """The linear grid, or `loop_time_grid` for ``variant="loop"``."""
    return loop_time_grid(n) if options.get("variant") == "loop" else linear_time_grid(n, options)


REMDM_VARIANTS = ("cap", "rescale", "conf", "loop")


@register("remdm", revises=True, time_grid=remdm_time_grid,
          options={"variant": "rescale", "eta": 0.5, "eta_loop": 0.02})
def remdm(ctx: StepContext):
    """ReMDM (Wang et al. 2025): decoded tokens are remasked with probability sigma_t and masked
    slots revealed with probability (alpha_s - (1 - sigma_t) alpha_t) / (1 - alpha_t), with
    sigma_t <= sigma_max = min(1, (1 - alpha_s) / alpha_t).  ``variant``: "cap" sigma =
    min(eta, sigma_max); "rescale" (default) sigma = eta * sigma_max; "conf" sigma_i = sigma_max *
    softmax(-conf)_i over decoded tokens; "loop" runs MDLM to t_on = 0.1, loops there for 20% of
    the steps with sigma = ``eta_loop``, then finishes (its time grid: `remdm_time_grid`)."""
    sched = ctx.option("schedule")
    a_t, a_s = float(noise.alpha(ctx.t, sched)), float(noise.alpha(ctx.s, sched))
    sigma_max = min(1.0, (1 - a_s) / a_t) if a_t > 0 else 1.0
    variant, eta = ctx.option("variant"), ctx.option("eta")
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
    p_reveal = ((a_s - (1 - row_sigma) * a_t) / max(1e-12, 1 - a_t)).clamp(0, 1)[:, None]
    u = ctx.rand()
    return ctx.masked & ctx.region & (u < p_reveal), decoded & (u < sigma)


def nothing_would_change(ctx: StepContext, masked_after: torch.Tensor) -> bool:
    """SUNDAE's stop: the model agrees with every token of the region."""
    return bool(((ctx.proposal == ctx.x) | ~ctx.region).all())


@register("sundae", start="uniform", revises=True, finished=nothing_would_change,
          options={"update_fraction": 0.3})
def sundae(ctx: StepContext):
    """SUNDAE (Savinov et al. 2022): start from uniformly random tokens; each step resample a
    random ``update_fraction`` (0.3) of the slots, all of them on the last step; the block stops
    once the model agrees with every token (`nothing_would_change`).  Use a low ``temperature``
    (e.g. 0.5)."""
    frac = 1.0 if ctx.last else ctx.option("update_fraction")
    return ctx.region & (ctx.rand() < frac), ctx.nothing()


def get_strategy(name: str) -> Strategy:
    """The registered strategy ``name`` (old names in `ALIASES` accepted)."""
    name = ALIASES.get(name, name)
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)} (or 'ar' for a causal "
                         f"model), got {name!r}")
    return STRATEGIES[name]
