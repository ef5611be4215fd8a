"""Checks for chapter 10 (writing by edits: Edit Flows, Havasi et al. 2025, against the fixed
canvas of a masked model)."""

from __future__ import annotations

import math

import torch

from ...worlds import grammar_edits
from . import checker, number, require


@checker("ch10-ex1", answers=("kl", "lengths"))
def check_length_kl(kl, lengths, lang) -> str:
    r"""$\mathrm{KL}(p \| \hat q)$ in nats from the grammar's exact length distribution $p$ to
    the add-½ smoothed frequencies $\hat q$ of ``lengths`` (words per sample) over $0..L$."""
    got = number(kl, "kl")
    lengths = torch.as_tensor(lengths).long().reshape(-1)
    want = grammar_edits.length_kl(lengths, lang)
    p = grammar_edits.length_distribution(lang)
    counts = torch.bincount(lengths, minlength=lang.max_len + 1).double()
    raw = counts / len(lengths)
    require(got >= 0, f"kl = {got:.4f} is negative: a KL divergence never is (is p on top?)")
    require(not math.isclose(got, want / math.log(2), rel_tol=1e-3) or math.isclose(
        want, 0.0, abs_tol=1e-9), "that is the KL in bits: the chapter measures in nats")
    keep = (p > 0) & (raw > 0)
    unsmoothed = float((p[keep] * (p[keep] / raw[keep]).log()).sum())
    require(not math.isclose(got, unsmoothed, rel_tol=1e-3) or math.isclose(
        unsmoothed, want, rel_tol=1e-3), "that skips the smoothing: add 1/2 to every length's "
        "count (0..L) before dividing, so a length the samples never hit costs a finite amount")
    require(math.isclose(got, want, rel_tol=1e-3, abs_tol=1e-6),
            f"kl = {got:.4f} is not KL(p || q) of these lengths: the sum runs over the lengths "
            "the grammar can produce, p(n) log(p(n) / q(n)), with q the smoothed frequencies")
    return f"KL = {got:.4f} nats"
