"""Checks for chapter 4 (BERT is one diffusion step: MDLM's ELBO, Sahoo et al. 2024; MD4,
Shi et al. 2024)."""

from __future__ import annotations

import numpy as np
import torch

from ... import noise
from . import answered, checker, number, numbers, require


@checker("ch4-ex1")
def check_cosine_weight(weight) -> str:
    """``weight(t)`` against ``dl.noise.elbo_weight(t, "cosine")`` on a grid of t."""
    require(callable(weight), "pass your function itself: check(weight)")
    t = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)
    got = torch.as_tensor(answered(weight(t.clone()), "weight(t)"), dtype=torch.float64)
    require(got.shape == t.shape, f"one weight per t: expected shape {tuple(t.shape)}, "
                                  f"got {tuple(got.shape)}")
    want = noise.elbo_weight(t, "cosine")
    bad = ~torch.isclose(got, want, rtol=1e-4)
    if bad.any():
        require(False, f"wrong at t = {t[bad][0]:.2f}: w = -alpha'(t) / (1 - alpha(t)), with "
                       "alpha from dl.noise.alpha(t, 'cosine')")
    fine = torch.linspace(1e-4, 1, 100_001, dtype=torch.float64)
    total = torch.trapezoid(noise.elbo_weight(fine, "cosine") * noise.mask_rate(fine, "cosine"),
                            fine).item()
    return f"integral of w(t) (1 - alpha_t) dt = {total:.4f}"


@checker("ch4-ex2")
def check_riemann(riemann, corrected, curve, t_values, elbo_bits: float) -> str:
    """The ten-level right Riemann sum of the masked cross-entropy curve ``curve`` (at
    ``t_values``) and its end-point correction, both recomputed here; the corrected sum must
    land near the ELBO."""
    r, c = number(riemann, "riemann"), number(corrected, "corrected")
    curve = np.asarray(curve, dtype=float)
    t = np.asarray(t_values, dtype=float)
    picks = [int(np.abs(t - k / 10).argmin()) for k in range(1, 11)]
    want = float(curve[picks].mean())
    require(abs(r - want) < 1e-6, "the Riemann sum is off: average f over the ten training "
                                  "levels, read from the curve at those t")
    want_c = want - 0.05 * float(curve[-1] - curve[0])
    require(abs(c - want_c) < 1e-6, "the correction is off: h is the width of one bin, and f(0) "
                                    "is taken at the curve's first point")
    # observed (cpu profile): corrected 3.454 against an ELBO of 3.435 bits/char
    require(abs(c - elbo_bits) < 0.08, f"corrected {c:.3f} is far from the ELBO {elbo_bits:.3f}")
    return f"Riemann sum {r:.3f}, corrected {c:.3f}, ELBO {elbo_bits:.3f} bits/char"


@checker("ch4-ex3")
def check_antithetic(antithetic, independent) -> str:
    """Property: same expectation, lower spread for antithetic noise levels."""
    a = torch.tensor(numbers(antithetic, "antithetic"))
    b = torch.tensor(numbers(independent, "independent"))
    require(len(a) == len(b) >= 8, "at least 8 repetitions of each, the same number")
    require(abs(a.mean() - b.mean()) < 4 * b.std() / len(b) ** 0.5 + 0.05,
            "the two estimates should have the same expectation: same model, same batch")
    require(a.std() < b.std(), "antithetic t should lower the spread: one offset per batch, "
                               "independent t one row at a time")
    return (f"std {a.std():.3f} (antithetic) vs {b.std():.3f} (independent) nats, variance / "
            f"{(b.var() / a.var()).item():.1f}")
