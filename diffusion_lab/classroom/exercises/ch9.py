"""Checks for the chapter on blocks, caches and models made from GPTs (BD3-LM, Arriola et al.
2025; an exact key-value cache; AR-to-diffusion adaptation)."""

from __future__ import annotations

import torch

from ...block_diffusion import training_mask
from . import answered, checker, require


@checker("ch9-ex1", answers=("fn",))
def check_block_mask(fn) -> str:
    """``fn(n, block_size)`` -> (2n, 2n) bool: BD3-LM's attention mask over the noisy and the
    clean sequence side by side (no shift: the anchor is part of block 0), True = may attend;
    compared with the library's mask for several lengths and block sizes."""
    answered(fn, "block_mask")
    require(callable(fn), "block_mask should be a function of (n, block_size)")
    for n, size in ((9, 4), (9, 1), (9, 8), (7, 3)):
        got = fn(n, size)
        require(isinstance(got, torch.Tensor) and tuple(got.shape) == (2 * n, 2 * n),
                f"block_mask({n}, {size}) should be a (2n, 2n) = ({2 * n}, {2 * n}) tensor")
        want = training_mask(n, size, shift=False)
        got = got.bool()
        quadrants = {"noisy -> noisy": (slice(0, n), slice(0, n)),
                     "noisy -> clean": (slice(0, n), slice(n, None)),
                     "clean -> noisy": (slice(n, None), slice(0, n)),
                     "clean -> clean": (slice(n, None), slice(n, None))}
        for name, (rows, cols) in quadrants.items():
            require(torch.equal(got[rows, cols], want[rows, cols]),
                    f"block_mask({n}, {size}): the {name} quadrant is wrong. Ask of each pair: "
                    "could the query see this key at sampling time, when its block is still "
                    "noisy and only earlier blocks are finished?")
    return "the same mask as dl.block_diffusion.training_mask"
