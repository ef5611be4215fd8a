"""Checks for chapter 3 (the generative MLM: the seed article's ten rates; Mask-Predict,
Ghazvininejad et al. 2019)."""

from __future__ import annotations

import torch

from ... import noise
from . import answered, checker, number, numbers, require


def _grid(T: int) -> list[float]:
    """The library's time grid t_n = 1 - n/T, n = 1..T, as masking probabilities."""
    t = torch.linspace(1, 0, T + 1, dtype=torch.float64)[1:]
    return noise.mask_rate(t).tolist()


@checker("ch3-ex1")
def check_seed_schedule(seed_schedule, runs: dict, T: int) -> str:
    """``seed_schedule(T)`` against the library's grid and the masked fraction of the ``random``
    and carry-over runs (``runs["variable", decoder]``)."""
    require(callable(seed_schedule), "pass your function itself: check(seed_schedule)")
    for n_passes in (4, 10, T):
        got = numbers(seed_schedule(n_passes), f"seed_schedule({n_passes})", length=n_passes)
        want = _grid(n_passes)
        require(all(abs(a - b) < 1e-9 for a, b in zip(got, want, strict=True)),
                f"seed_schedule({n_passes}) is off: it starts just below 1 and the last pass "
                "leaves nothing masked")
    mine = _grid(T)
    for decoder in ("random", "random, carry-over"):
        traj = runs["variable", decoder]
        free = ~traj.fixed
        measured = [f.mask[free].float().mean().item() for f in traj.frames]
        require(max(abs(a - b) for a, b in zip(measured, mine, strict=True)) < 0.05,
                f"{decoder}: the masked fraction after each pass disagrees with your schedule")
    return "agrees with the library's grid and with both runs"


@checker("ch3-ex2")
def check_remask_stats(remasked_fraction, changed_fraction, traj) -> str:
    """(a) share of generated slots remasked at least once; (b) share of remasked characters
    that differ in the final text — both computed here from ``traj``."""
    a, b = number(remasked_fraction, "remasked_fraction"), number(changed_fraction,
                                                                       "changed_fraction")
    free = ~traj.fixed
    back = torch.stack([f.remasked for f in traj.frames])  # (steps, B, L)
    want_a = (back.any(0) & free).sum().item() / free.sum().item()
    before = torch.stack([traj.start.ids] + [f.ids for f in traj.frames[:-1]])
    want_b = (before[back] != traj.ids.expand_as(before)[back]).float().mean().item()
    require(abs(a - want_a) < 1e-6, "(a) is off: count slots, not events, and only generated "
                                    "slots (not the prompt) in the denominator")
    require(abs(b - want_b) < 1e-6, "(b) is off: compare the character remasked (the frame "
                                    "before) with the final one")
    return f"{a:.1%} of the slots remasked, {b:.0%} of them changed"


@checker("ch3-ex3")
def check_one_pass(texts_by_strategy) -> str:
    """Property: with one pass every decoder gives the same texts."""
    answered(texts_by_strategy, "one_pass")
    require(isinstance(texts_by_strategy, dict), "pass a dict {strategy: texts}")
    want = {"mask_predict", "low_confidence", "gibbs", "random"}
    require(set(texts_by_strategy) == want, f"one entry per strategy: {sorted(want)}")
    first = next(iter(texts_by_strategy.values()))
    require(len(first) == 4, "4 samples per strategy")
    require(all(t == first for t in texts_by_strategy.values()),
            "with one pass the texts should be identical: same seed, steps=1 for all four")
    return "four decoders, one text"
