"""Checks for the chapter on parallel decoding (a grammar with exact probabilities; the
factorisation error of a step that reveals several slots; confidence-first decoding, Chang et
al. 2022 MaskGIT)."""

from __future__ import annotations

import torch

from ...sampling import generate
from . import answered, checker, require


def _validity_and_gap(model, tok, lang, strategy: str, steps: int, n: int, **options):
    """(fraction of samples in the language, mean exact NLL of the valid ones minus the entropy)."""
    run = generate(model, tok, prompts=[""], length=lang.max_len, steps=steps, strategy=strategy,
                   seed=0, num_samples=n, record=False, **options)
    lp = lang.log_prob(run.texts)
    valid = torch.isfinite(lp)
    gap = (-lp[valid]).mean().item() - lang.entropy() if valid.any() else float("inf")
    return valid.double().mean().item(), gap


@checker("chpd-ex2")
def check_beats_low_confidence(strategy, options, model, tok, lang, n: int) -> str:
    """A sampler (``strategy`` with keyword ``options``) at K = L/4 steps whose samples are at
    least as often valid as ``low_confidence``'s and closer to the truth in exact NLL, both
    measured here on ``n`` sentences of the same seed."""
    answered(strategy, "strategy")
    require(isinstance(strategy, str), "strategy should be a sampler's name, e.g. 'ancestral'")
    options = {} if options is None or options is Ellipsis else options
    require(isinstance(options, dict),
            "options should be a dict of keyword arguments ({} for none)")
    require(strategy != "low_confidence" or options,
            "that is low_confidence itself: look for a rule that ranks slots differently")
    steps = lang.max_len // 4
    base_valid, base_gap = _validity_and_gap(model, tok, lang, "low_confidence", steps, n)
    valid, gap = _validity_and_gap(model, tok, lang, strategy, steps, n, **options)
    require(valid >= base_valid, f"{strategy}: validity {valid:.2f}, less often valid than "
            f"low_confidence's {base_valid:.2f}")
    require(abs(gap) < abs(base_gap), f"{strategy}: exact NLL gap {gap:+.2f} is no closer to 0 "
            f"than low_confidence's {base_gap:+.2f}: what does ranking by the drawn token's "
            "probability do to rare words?")
    return (f"{strategy}: validity {valid:.2f} (low_confidence {base_valid:.2f}), gap {gap:+.2f} "
            f"(low_confidence {base_gap:+.2f})")
