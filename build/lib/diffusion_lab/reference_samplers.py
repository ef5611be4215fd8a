"""Reference samplers: other people's loops, kept the way they were written, to measure against.

`seed_article_sampler` is the generation loop of the article this book starts from ("BERT is
just a single text diffusion step", RoBERTaDiffusion).  For each of ``steps`` passes it runs the
model once, then, **in a Python loop over rows and positions**, filters each position's logits
(top-k 50, then top-p 0.95, as Hugging Face's old ``top_k_top_p_filtering`` did), samples one
token, overwrites every non-prompt slot, and finally re-masks each slot independently with
probability ``1 - (step + 1) / steps`` (0.9, 0.8, ..., 0 for ten steps) — at random, not by
confidence.

``dl.generate(model, tok, prompts, length, steps, strategy="random", top_k=50, top_p=0.95)``
runs the same algorithm vectorised over batch and positions (one ``topk`` / ``sort`` per step for
all slots).  Chapter 7 and ``bench/bench_sampler.py`` time one against the other.  This module is
for measurement and teaching, not for use: it is slow on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .sampling import _validate, prepare


def filter_one_position(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """(V,) logits -> (V,) probabilities: top-k, then nucleus (top-p), for one position.

    The token that crosses ``top_p`` is kept, so the smallest set with mass >= ``top_p`` survives.
    """
    logits = logits.clone()
    kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[-1]
    logits[logits < kth] = float("-inf")
    sorted_logits, order = torch.sort(logits, descending=True)
    cum = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
    remove = cum > top_p
    remove[1:] = remove[:-1].clone()  # keep the token that crosses top_p
    remove[0] = False
    logits[order[remove]] = float("-inf")
    return torch.softmax(logits, dim=-1)


@torch.no_grad()
def seed_article_sampler(model, tok, prompts: Sequence[str] = ("",), length: int = 256,
                         steps: int = 10, top_k: int = 50, top_p: float = 0.95,
                         seed: int = 0) -> list[str]:
    """The seed article's sampler: ``length`` tokens per prompt (prompt included), one text each.

    Every row starts with the [CLS] anchor and its prompt tokens (never changed); the other slots
    start as [MASK].  Each step: one forward pass; for every row and every free position, filter
    (``filter_one_position``) and sample one token with ``torch.multinomial``; then re-mask each
    free slot with probability ``1 - (step + 1) / steps``.  Special tokens are never sampled.
    """
    _validate(model, tok, prompts, length, steps, 1.0, top_k, top_p, None)
    if top_k is None or top_p is None:
        raise ValueError("the article's sampler always filters: give top_k and top_p")
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    mask_id, special = tok.mask_token_id, list(tok.all_special_ids)
    ids, fixed = (t.to(device) for t in prepare(tok, list(prompts), length))
    free_positions = [(~fixed[b]).nonzero()[:, 0].tolist() for b in range(ids.shape[0])]
    model.eval()
    for step in range(steps):
        logits = model(input_ids=ids).logits.float()  # (B, L, V)
        logits[..., special] = float("-inf")
        for b, positions in enumerate(free_positions):  # the article's loop over tokens
            for pos in positions:
                probs = filter_one_position(logits[b, pos], top_k, top_p)
                ids[b, pos] = torch.multinomial(probs, 1, generator=gen).item()
        rate = 1 - (step + 1) / steps
        remask = (torch.rand(ids.shape, generator=gen, device=device) < rate) & ~fixed
        ids[remask] = mask_id
    return tok.batch_decode(ids[:, 1:].cpu().tolist(), skip_special_tokens=False,
                            clean_up_tokenization_spaces=False)
