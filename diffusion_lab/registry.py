"""The strategy registry: what a sampler is, how it is registered, and the rule all share.

A strategy (see ``strategies`` for the library's own) is a rule ``rule(ctx) -> (update,
remask)`` over a `StepContext`, plus its starting state, time grid, declared options and early
stop.  `register_strategy` (``dl.register_strategy``) adds one; `get_strategy` finds one by name
(old names in `settings.ALIASES` accepted); `leave_no_mask` is the one rule every sampler shares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from . import noise
from .settings import ALIASES


@dataclass(kw_only=True)
class StepContext:
    """Everything a rule may look at; tensors are (B, L) unless noted.  Built by keyword
    (`sampling.reverse_step`): twelve fields in a row are too easy to swap."""

    x: torch.Tensor  # current ids (masks included)
    masked: torch.Tensor  # True where x is [MASK]
    region: torch.Tensor  # slots this step may touch (free, and in the current block)
    proposal: torch.Tensor  # \hat x, sampled for region slots
    p: torch.Tensor  # model probability of the proposal (0 outside the region)
    conf: torch.Tensor  # confidence each decoded token had when it was decoded (re-read: now)
    t: float
    s: float
    step: int  # index within the block, 0..n-1
    n: int  # steps in this block
    generator: torch.Generator
    options: dict = field(default_factory=dict)  # the strategy's defaults, updated by the caller
    # a strategy registered with reread=True: each decoded slot's probability of its token in
    # the present context (strategies_revision.reread_scores); proposal / p there: the re-read
    # top token and its probability.  None for the other strategies.
    reread: torch.Tensor | None = None

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
    reread: bool = False  # the loop re-scores decoded tokens every step (strategies_revision)
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


def register_strategy(name: str, *, start: str = "mask", revises: bool = False,
                      options: Mapping[str, Any] | None = None, time_grid=None, finished=None,
                      reread: bool = False):
    """Decorator: add ``rule`` to the registry under ``name`` (replacing one of the same name).

    ``options``: the options the rule reads with ``ctx.option(name)`` and their defaults (the
    noise ``schedule`` is always accepted); ``start``: "mask" or "uniform"; ``revises``: the
    rule may change decoded tokens (given ``revisable`` prompt tokens included); ``time_grid``:
    ``f(n, options) -> [t_0 = 1, ..., t_n = 0]``; ``finished``: ``f(ctx, masked_after) -> bool``,
    True to stop the block early; ``reread``: before each step the loop re-scores every decoded
    token in the present context (``ctx.reread``; the option ``score`` says how:
    `strategies_revision.reread_scores`).  Usable from a notebook as ``dl.register_strategy``.
    """
    if not isinstance(name, str) or not name or name == "ar" or name in ALIASES:
        raise ValueError(f"name must be a new non-empty str (not 'ar' or an alias in "
                         f"{sorted(ALIASES)}), got {name!r}")
    if start not in ("mask", "uniform"):
        raise ValueError(f"start must be 'mask' or 'uniform', got {start!r}")

    def wrap(rule):
        STRATEGIES[name] = Strategy(rule, start, revises, reread, (rule.__doc__ or "").strip(),
                                    {**COMMON_OPTIONS, **(options or {})},
                                    time_grid or linear_time_grid, finished or all_revealed)
        return rule

    return wrap



def top_k_mask(score: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(B, L) True at the ``k[b]`` highest finite scores of each row (vectorised ranks)."""
    order = score.argsort(dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(score.shape[1], device=score.device).expand_as(order))
    return (ranks < k[:, None]) & torch.isfinite(score)


def never(ctx: StepContext, masked_after: torch.Tensor) -> bool:
    """No early stop: the sampler runs every one of its steps."""
    return False


def get_strategy(name: str) -> Strategy:
    """The registered strategy ``name`` (old names in `ALIASES` accepted)."""
    name = ALIASES.get(name, name)
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)} (or 'ar' for a causal "
                         f"model), got {name!r}")
    return STRATEGIES[name]
