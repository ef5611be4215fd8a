r"""Checks for chapter 0 (masked diffusion in one notebook, ``diffusion_lab/course/scratch.py``).

The MDLM loss is an upper bound on the negative log-likelihood (Sahoo et al. 2024; Shi et al.
2024); times $L$ it bounds $-\log p_\theta(x)$ per sentence, and its mean over sentences drawn
from the grammar can come no lower than the grammar's exact entropy $H$.  The check recomputes
the bound with the library's ``objectives.mdlm_loss`` on the same sentences.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from ... import objectives
from ...worlds.grammar import book_language
from . import checker, number, require

HELD_OUT_SEED, HELD_OUT_SIZE, DRAWS = 2, 2000, 16


def library_bound(model, draws: int = DRAWS, seed: int = 0) -> torch.Tensor:
    """(draws,) the MDLM bound in nats per sentence of the scratch ``model`` (a function from
    (B, L) ids to (B, L, V + 1) logits, [MASK] = V) on the exercise's held-out sentences, one
    value per draw of the noise, computed by the library's loss."""
    lang = book_language()
    x = lang.sample_ids(HELD_OUT_SIZE, seed=HELD_OUT_SEED)
    vocab = len(lang.words)
    info = objectives.TokenInfo(mask_id=vocab, content_ids=torch.arange(vocab),
                                banned_ids=torch.tensor([vocab]))
    as_library = lambda input_ids: SimpleNamespace(logits=model(input_ids))  # noqa: E731
    free = torch.zeros_like(x, dtype=torch.bool)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return torch.tensor([lang.max_len * objectives.mdlm_loss(as_library, x, free, info,
                                                                  g).item()
                             for _ in range(draws)], dtype=torch.float64)


@checker("ch0-ex4")
def check_bound(bound, model) -> str:
    """``bound``: the trained ``model``'s MDLM bound in nats per sentence on
    ``lang.sample_ids(2000, seed=2)``, averaged over draws of t; within Monte Carlo error of the
    library's estimate on the same sentences."""
    got = number(bound, "bound")
    values = library_bound(model)
    want = float(values.mean())
    tolerance = max(0.5, 4 * float(values.std()) / math.sqrt(len(values)))
    length = book_language().max_len
    require(abs(got * length - want) > tolerance,
            "that is per token: the bound of a sentence adds up its L tokens")
    require(abs(got * math.log(2) - want) > tolerance,
            "that looks like bits: the loss is in nats (natural log), keep it so")
    require(abs(got - want) < tolerance,
            f"{got:.2f} is more than {tolerance:.2f} nats from the library's estimate: use "
            "held = lang.sample_ids(2000, seed=2), average mdlm_loss over several draws of "
            "t ~ U(0, 1) with its 1/t weight, and turn nats per token into nats per sentence")
    entropy = book_language().entropy()
    return (f"{want:.2f} nats per sentence (library), {want - entropy:.2f} above the grammar's "
            f"entropy {entropy:.2f}")
