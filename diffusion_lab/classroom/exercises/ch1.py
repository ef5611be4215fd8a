"""Checks for chapter 1 (masked language modeling). BERT's 80/10/10 corruption (Devlin et al.
2019, Sec. 3.1); top-k accuracy; calibration (Guo et al. 2017)."""

from __future__ import annotations

import torch

from ... import metrics, noise
from . import checker, number, numbers, require


def _split_reference(clean, noisy, chosen, mask_id: int) -> tuple[float, float, float]:
    n = int(chosen.sum())
    to_mask = int((noisy[chosen] == mask_id).sum()) / n
    same = int((noisy[chosen] == clean[chosen]).sum()) / n
    return to_mask, 1 - to_mask - same, same


@checker("ch1-ex1")
def check_split_fractions(split_fractions, tok) -> str:
    """``split_fractions(clean, noisy, chosen)`` on a fresh corrupted batch (not the chapter's)."""
    require(callable(split_fractions), "pass your function itself: check(split_fractions)")
    g = torch.Generator().manual_seed(2024)
    content = noise.content_token_ids(tok)
    clean = content[torch.randint(0, len(content), (64, 128), generator=g)]
    noisy, chosen = noise.bert_mask(clean, mask_id=tok.mask_token_id, content_ids=content,
                                    generator=g)
    got = numbers(split_fractions(clean, noisy, chosen), "split_fractions(...)", length=3)
    want = _split_reference(clean, noisy, chosen, tok.mask_token_id)
    require(abs(sum(got) - 1) < 1e-6, "every chosen position is masked, replaced or unchanged: "
                                      f"your three fractions sum to {sum(got):.3f}, not 1")
    names = ("the [MASK] share", "the random-token share", "the unchanged share")
    for name, a, b in zip(names, got, want, strict=True):
        require(abs(a - b) < 1e-6, f"{name} is off: count over the chosen positions only, and "
                                   "compare `noisy` with `clean` there")
    return f"{got[0]:.3f} / {got[1]:.3f} / {got[2]:.3f} on a batch the check drew itself"


@torch.no_grad()
def _top_k_accuracy(model, tok, blocks, k: int, rate: float = 0.15, seed: int = 0) -> tuple:
    noisy, masked = noise.absorbing_mask(blocks, rate, mask_id=tok.mask_token_id,
                                         fixed=noise.anchor_fixed(blocks),
                                         generator=torch.Generator().manual_seed(seed))
    logits = model(input_ids=noisy).logits
    logits[..., [tok.mask_token_id, tok.cls_token_id]] = float("-inf")
    hit = (logits.topk(k).indices == blocks[..., None]).any(-1)[masked]
    return hit.float().mean().item(), int(masked.sum())


@checker("ch1-ex2")
def check_top5(top5, model, tok, held_out, top1: float) -> str:
    """Top-5 accuracy at 15% masking, within four standard errors of the library's estimate."""
    got = number(top5, "top5")
    want, n = _top_k_accuracy(model, tok, held_out, 5)
    tolerance = 4 * (want * (1 - want) / n) ** 0.5 + 0.005
    require(0 <= got <= 1, f"an accuracy is a fraction in [0, 1], got {got:.3f}")
    require(got > top1 + 1e-9, f"{got:.3f} is not above top-1 ({top1:.3f}): a prediction "
            "counts when the true character is among the five highest-scoring ones")
    require(abs(got - want) < tolerance, f"{got:.3f} is off by more than {tolerance:.3f}: mask 15% "
            "of `held_out` (not the anchor), rule out [MASK] and [CLS], score masked slots only")
    return f"top-5 {got:.3f} against top-1 {top1:.3f}"


@checker("ch1-ex3")
def check_busiest_bin(bin_index, bin_accuracy, model, tok, text: str) -> str:
    """The calibration bin with the most predictions at 15% masking, and its accuracy."""
    cal = metrics.calibration(model, tok, text, rate=0.15)
    index = int(number(bin_index, "bin_index"))
    require(0 <= index < len(cal["count"]), f"bin_index must be in 0..{len(cal['count']) - 1}")
    require(index == int(cal["count"].argmax()), "that bin is not the busiest: look at the counts")
    require(abs(number(bin_accuracy, "bin_accuracy") - float(cal["accuracy"][index])) < 1e-6,
            "that is not the bin's accuracy: read `accuracy`, not `confidence`")
    return f"bin {index} holds {int(cal['count'][index])} predictions"
