"""Checks for chapter 6 (remasking: ReMDM, Wang et al. 2025; Mask-Predict; sign test and the
bootstrap, Efron 1979)."""

from __future__ import annotations

import torch

from ... import objectives
from ...sampling import prepare
from ...stats import bootstrap, sign_test
from ...strategies import STRATEGIES
from . import answered, checker, number, require, require_effect

BUILTIN = frozenset(STRATEGIES)  # the library's own rules (a student's rule must be new)


@checker("ch6-ex1")
def check_own_rule(name, solve, seeds) -> str:
    """Your registered rule beats ``random`` at 2 steps (sign test, 1%), remasks, and is not a
    library rule under a new name. ``solve(strategy, seed)`` -> (N,) bool of solved puzzles."""
    answered(name, "name")
    require(name in STRATEGIES, f"{name!r} is not registered: decorate your rule with "
                                "@dl.register_strategy(name, revises=True)")
    require(name not in BUILTIN, f"{name!r} is one of the library's rules: write your own")
    require(STRATEGIES[name].revises, "register it with revises=True: the exercise is a "
                                      "remasking rule")
    mine = {s: solve(name, s) for s in seeds}
    base = torch.cat([solve("random", s) for s in seeds])
    wins, losses, p = sign_test(torch.cat(list(mine.values())), base)
    require_effect(p < 0.01, f"{wins} wins vs {losses} losses against random: p = {p:.2g} is "
                             "not below 0.01")
    copy = _copycat(mine, solve, seeds)
    require_effect(copy is None, f"your rule solves exactly the puzzles `{copy}` solves, seed "
                                 "for seed: make it remask by its own criterion")
    return f"against random: {wins} wins, {losses} losses, p = {p:.1e}"


def _copycat(mine: dict, solve, seeds) -> str | None:
    """The library rule whose outcomes equal ``mine`` for every seed, if any."""
    for other in sorted(BUILTIN - {"random"}):
        try:
            if all(torch.equal(mine[s], solve(other, s)) for s in seeds):
                return other
        except (ValueError, TypeError, RuntimeError):  # a rule that needs options of its own
            continue
    return None


@checker("ch6-ex2")
def check_bootstrap(lo, hi, a: torch.Tensor, b: torch.Tensor) -> str:
    """A 98% bootstrap interval for mean(a) - mean(b) (``a``, ``b``: (puzzles, seeds) outcomes,
    paired by puzzle), within 0.03 of the library's own resampling."""
    lo, hi = number(lo, "lo"), number(hi, "hi")
    a, b = a.float(), b.float()
    diff = (a.mean() - b.mean()).item()
    require(lo <= diff <= hi, f"({lo:.3f}, {hi:.3f}) must contain the observed difference "
                            f"{diff:.3f}")
    # paired by puzzle: resample the per-puzzle differences (each puzzle's seeds averaged)
    _, want_lo, want_hi = bootstrap(a.mean(1) - b.mean(1), n_boot=2000, seed=99, level=0.98)
    require(abs(lo - want_lo) < 0.03 and abs(hi - want_hi) < 0.03,
            f"the interval's width {hi - lo:.3f} is off: resample whole puzzles (keep each "
            "puzzle's seeds and both samplers together), 2,000 times, 1st and 99th percentiles")
    return f"difference {diff:.3f}, 98% interval ({lo:.3f}, {hi:.3f})"


@checker("ch6-ex3")
def check_wrong_digit(p_wrong, p_right, run, model, tok, given, right_digits, length: int,
                      position: int = 11) -> str:
    """Mean confidence of the wrong digit at ``position`` (from ``run.start``) and mean model
    probability of the right one with the cell masked, both recomputed here."""
    p_wrong, p_right = number(p_wrong, "p_wrong"), number(p_right, "p_right")
    want_wrong = run.start.confidence[:, position].double().mean().item()
    ids, _ = prepare(tok, given, length)
    ids = ids.to(next(model.parameters()).device)
    right = torch.tensor(tok.convert_tokens_to_ids(list(right_digits)))
    with torch.no_grad():
        probs = objectives.denoiser_logits(model, ids, objectives.TokenInfo.from_tokenizer(tok))
    want_right = probs[:, position].softmax(-1).cpu().gather(1, right[:, None]).mean().item()
    require(abs(p_wrong - want_wrong) < 1e-4, "p_wrong is off: average the start confidence at "
                                              "the wrong digit's position over the prompts")
    require(abs(p_right - want_right) < 1e-3, "p_right is off: one pass with that cell masked, "
                                              "the probability of the grid's own digit there")
    # which digit the model prefers is the exercise's question, not the check's: it depends on
    # the in-chapter model (the right one in one build, the clashing one in another)
    return f"wrong digit {p_wrong:.3f}, right digit {p_right:.3f}"
