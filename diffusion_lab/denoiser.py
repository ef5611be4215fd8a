r"""The denoiser: one function from token ids to the model's distribution over clean tokens.

Every loss (``objectives``), the diffusion sampler (``sampling``), the autoregressive baseline
(``ar_sampling``) and the metrics read the model through `denoiser_logits`, so training and
sampling use the same distribution

$$ p_\theta(x^i \mid z_t) = \mathrm{softmax}\big(f_\theta(z_t)^i\big), \qquad
   f_\theta(z_t)^i_v = -\infty \text{ for } v \in
   \{\texttt{[MASK]}, \text{anchor}, \texttt{[SEP]}\}. $$

The banned tokens are the ones no row of the library ever holds as a clean token: the [MASK]
itself (MDLM's SUBS parameterisation, Sahoo et al. 2024: the mask logit is $-\infty$), the anchor
at position 0 ([CLS], or BOS for a tokenizer without one), which is never a target, and [SEP]
(rows are windows or padded examples, never joined by separators).  [PAD] and [UNK] keep their
probability: a padded task example ends in [PAD], and unseen characters are [UNK].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import noise
from .tokenization import anchor_id, require_mask_token


def banned_token_ids(tok) -> list[int]:
    """Ids the denoiser never outputs: [MASK], the anchor and [SEP] (those the tokenizer has)."""
    ids = {anchor_id(tok)} | {getattr(tok, attr, None) for attr in ("mask_token_id",
                                                                      "sep_token_id")}
    return sorted(int(i) for i in ids if i is not None)


@dataclass(frozen=True)
class TokenInfo:
    """What the losses and samplers need to know about a tokenizer."""

    mask_id: int | None  # None only for an autoregressive tokenizer without a mask token
    content_ids: torch.Tensor  # (V',) ids random replacement may draw
    banned_ids: torch.Tensor  # ids the denoiser never outputs (`banned_token_ids`)

    @classmethod
    def from_tokenizer(cls, tok, *, need_mask: bool = True) -> TokenInfo:
        """``need_mask=False`` accepts a tokenizer without [MASK] (the AR baseline's)."""
        mask_id = require_mask_token(tok) if need_mask else getattr(tok, "mask_token_id", None)
        return cls(mask_id, noise.content_token_ids(tok),
                   torch.tensor(banned_token_ids(tok), dtype=torch.long))


def ban(logits: torch.Tensor, info: TokenInfo) -> torch.Tensor:
    """``logits`` (..., V) with the banned ids set to -inf, in place (returned for chaining)."""
    logits[..., info.banned_ids.to(logits.device)] = float("-inf")
    return logits


def denoiser_logits(model, ids: torch.Tensor, info: TokenInfo) -> torch.Tensor:
    """(B, L, V) float logits of ``model`` on ``ids`` with the banned tokens at -inf."""
    return ban(model(input_ids=ids).logits.float(), info)
