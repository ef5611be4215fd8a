r"""Checks for chapter 0 (masked diffusion in one notebook, ``diffusion_lab/scratch.py``).

The continuous-time ELBO of masked diffusion weighs the masked cross-entropy at time $t$ by
$w(t) = -\alpha'_t / (1 - \alpha_t)$ (Sahoo et al. 2024, MDLM; Shi et al. 2024, MD4): $1/t$ for
the linear schedule $\alpha_t = 1 - t$, another function for every other schedule.
"""

from __future__ import annotations

import torch

from .. import noise
from . import answered, checker, require


@checker("ch0-ex2")
def check_cosine_weight(weight) -> str:
    r"""``weight(t)``: the ELBO weight of the cosine schedule $\alpha_t = 1 - \sin(\pi t / 2)$,
    for a float64 tensor ``t`` of times in (0, 1), against `noise.elbo_weight` on a grid."""
    require(callable(weight), "pass your function itself: check_cosine_weight(weight)")
    t = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    got = answered(weight(t.clone()), "weight(t)")
    try:
        got = torch.as_tensor(got, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        require(False, f"weight(t) should return a tensor of numbers, got {type(got).__name__}")
    require(got.shape == t.shape, f"weight(t) should have the shape of t {tuple(t.shape)}, one "
                                  f"weight per time, got {tuple(got.shape)}: use torch functions")
    require(bool(torch.isfinite(got).all()), "weight(t) is not finite for every t in (0, 1)")
    want = noise.elbo_weight(t, "cosine")
    require(not torch.allclose(got, 1 / t, rtol=1e-3),
            "that is the linear schedule's weight: the weight changes with alpha_t")
    require(bool((got > 0).all()), "a weight is positive: alpha_t falls as t grows, so "
                                   "-alpha'(t) > 0 and 1 - alpha_t > 0")
    require(torch.allclose(got, want, rtol=1e-6, atol=1e-9),
            "not the cosine schedule's weight: differentiate alpha_t = 1 - sin(pi t / 2) with "
            "respect to t, then divide minus that by 1 - alpha_t (the masked fraction)")
    return (f"w(0.1) = {want[9]:.2f} (1/t: 10.00), w(0.5) = {want[49]:.2f} (2.00), "
            f"w(0.9) = {want[89]:.3f} (1.11)")
