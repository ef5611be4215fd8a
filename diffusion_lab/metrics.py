r"""How good is a model, and how good are its samples?  Always report a pair, never one number.

* `bits_per_token` — held-out likelihood: for a masked LM the MDLM ELBO (an upper bound on the
  NLL, Sahoo et al. 2024), for an AR model the exact NLL; in bits per token (= bits per character
  with `CharTokenizer`).  Comparable between the two, which is what "diffusion vs AR at equal
  compute" needs.
* `generative_perplexity` — samples scored by an AR *judge*.  A sampler can buy a low value with
  repetition ("the the the"), so it goes with `unigram_entropy` and `distinct_n`.
* `judge_bits_per_text`, `unigram_counts` — the same per sample, for tests over samples (`stats`).
* `unigram_entropy`, `distinct_n`, `repetition_rate` — diversity and degeneracy.
* `task_accuracy` — exact scores on checkable tasks (`tasks`).
* `best_time` — the wall-clock half of a race: the best of a few timed calls.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from . import data, noise
from .denoiser import TokenInfo, denoiser_logits
from .models import is_causal_lm
from .objectives import compute_loss
from .tokenization import anchor_id

LN2 = math.log(2)


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def bits_per_token(model, tok, text: str, *, seq_len: int = 128, max_blocks: int = 64,
                   n_t: int = 8, batch_size: int = 16, seed: int = 0) -> float:
    """Held-out bits per token of ``text``: the MDLM ELBO (``n_t`` antithetic t draws per block)
    for a masked LM, the exact NLL for a causal LM.  Deterministic given ``seed``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty str (held-out text to score)")
    cls_id = anchor_id(tok)
    blocks = data.sequential_blocks(data.encode_corpus(tok, text), seq_len, cls_id=cls_id,
                                    max_blocks=max_blocks)
    model.eval()
    causal = is_causal_lm(model)
    info = TokenInfo.from_tokenizer(tok, need_mask=not causal)
    gen = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        batch = blocks[start:start + batch_size].to(_device(model))
        repeats = 1 if causal else n_t
        for _ in range(repeats):
            loss = compute_loss("ar" if causal else "mdlm", model, batch, info, generator=gen,
                                fixed=noise.anchor_fixed(batch))
            total += loss.item() * batch.shape[0] / repeats
        count += batch.shape[0]
    return total / count / LN2


@torch.no_grad()
def _judge_nll(judge, tok, texts: Sequence[str],
               batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(nats, tokens) per text under the AR ``judge`` (anchor as BOS); an empty text scores 0/0."""
    if not is_causal_lm(judge):
        raise ValueError(f"judge must be a causal LM (dl.tiny_ar trained with objective='ar'), got "
                         f"{type(judge).__name__}")
    cls_id, info = anchor_id(tok), TokenInfo.from_tokenizer(tok, need_mask=False)
    encoded = [[cls_id] + tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    nats, count = torch.zeros(len(encoded), dtype=torch.float64), torch.zeros(len(encoded))
    judge.eval()
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        width = max(len(e) for e in chunk)
        ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
        for row, e in enumerate(chunk):  # one copy per text, not per token
            ids[row, :len(e)] = torch.tensor(e)
        valid = (torch.arange(width)[None] < torch.tensor([len(e) for e in chunk])[:, None])
        logits = denoiser_logits(judge, ids.to(_device(judge)), info)[:, :-1].cpu()
        ce = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        nats[start:start + len(chunk)] = torch.where(valid[:, 1:], ce, 0.0).sum(1).double()
        count[start:start + len(chunk)] = valid[:, 1:].sum(1)  # where: pad CE may be inf
    return nats, count


def judge_bits_per_token(judge, tok, texts: Sequence[str], batch_size: int = 16) -> float:
    """Mean NLL of ``texts`` under the AR ``judge``, in bits per token (anchor as BOS), pooled
    over all their tokens."""
    nats, count = _judge_nll(judge, tok, texts, batch_size)
    if count.sum() == 0:
        raise ValueError("texts holds no non-empty text to judge")
    return float(nats.sum() / count.sum()) / LN2


def judge_bits_per_text(judge, tok, texts: Sequence[str], batch_size: int = 16) -> torch.Tensor:
    """(len(texts),) bits per token of each text under the AR ``judge``: one value per sample,
    the unit `stats.bootstrap_difference` resamples.  Every text must be non-empty."""
    nats, count = _judge_nll(judge, tok, texts, batch_size)
    if len(texts) == 0 or (count == 0).any():
        raise ValueError("texts must be non-empty strs (one score per text)")
    return nats / count.double() / LN2


def generative_perplexity(judge, tok, texts: Sequence[str], batch_size: int = 16) -> float:
    """exp(mean NLL per token) of ``texts`` under the AR ``judge``: lower reads more fluent."""
    return 2 ** judge_bits_per_token(judge, tok, texts, batch_size)


def unigram_entropy(texts: Sequence[str] | str, tok=None) -> float:
    """Entropy in bits of the token (``tok``) or character distribution pooled over ``texts``."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    units = ([i for t in texts for i in tok(t, add_special_tokens=False)["input_ids"]] if tok
             else [c for t in texts for c in t])
    if not units:
        raise ValueError("texts is empty: nothing to measure")
    counts = torch.tensor(list(Counter(units).values()), dtype=torch.float64)
    p = counts / counts.sum()
    return float(-(p * p.log2()).sum())


def unigram_counts(texts: Sequence[str], tok) -> torch.Tensor:
    """(len(texts), len(tok)) token counts per text: rows a bootstrap resamples, with
    `stats.pooled_entropy` giving back `unigram_entropy` of any resampled set."""
    counts = torch.zeros(len(texts), len(tok), dtype=torch.float64)
    for row, t in enumerate(texts):
        ids = torch.tensor(tok(t, add_special_tokens=False)["input_ids"], dtype=torch.long)
        counts[row] = torch.bincount(ids, minlength=len(tok)).double()
    return counts


def _ngrams(text: str, n: int, unit: str) -> list[tuple]:
    seq = text.split() if unit == "word" else list(text)
    return [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]


def distinct_n(texts: Sequence[str], n: int = 2, unit: str = "word") -> float:
    """Distinct n-grams / all n-grams pooled over ``texts`` (``unit`` "word" or "char")."""
    if unit not in ("word", "char"):
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")
    grams = [g for t in texts for g in _ngrams(t, n, unit)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition_rate(texts: Sequence[str], n: int = 4, unit: str = "word") -> float:
    """Fraction of n-grams that repeat an earlier n-gram of the same text (0 = no loops)."""
    repeats = total = 0
    for t in texts:
        grams = _ngrams(t, n, unit)
        repeats += len(grams) - len(set(grams))
        total += len(grams)
    return repeats / total if total else 0.0


def task_accuracy(task, texts: Sequence[str], prompts: Sequence[str] | None = None) -> float:
    """Exact accuracy of ``texts`` on a `tasks.Task` (consistency with ``prompts`` if given)."""
    return task.score(list(texts), None if prompts is None else list(prompts))


def best_time(fn: Callable[[], Any], repeats: int = 2) -> tuple[float, Any]:
    """``(seconds, result)``: the fastest of ``repeats`` calls of ``fn`` and the last result.

    The minimum, not the mean: on a shared machine a disturbance only ever adds time. On a GPU
    the clock is read after ``torch.cuda.synchronize()``, since kernels run asynchronously.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats!r}")
    times, out = [], None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # wait for earlier work before reading the clock
        tick = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - tick)
    return min(times), out


@torch.no_grad()
def calibration(model, tok, text: str, *, seq_len: int = 128, max_blocks: int = 32,
                rate: float = 0.5, bins: int = 10, seed: int = 0) -> dict:
    """Reliability of the denoiser's confidence on held-out masked slots: for each confidence
    bin, the mean confidence and the fraction of argmax predictions that are right."""
    cls_id = anchor_id(tok)
    blocks = data.sequential_blocks(data.encode_corpus(tok, text), seq_len, cls_id=cls_id,
                                    max_blocks=max_blocks)
    info = TokenInfo.from_tokenizer(tok)
    gen = torch.Generator().manual_seed(seed)
    noisy, masked = noise.absorbing_mask(blocks, rate, mask_id=info.mask_id,
                                         fixed=noise.anchor_fixed(blocks), generator=gen)
    logits = denoiser_logits(model, noisy.to(_device(model)), info).cpu()
    conf, pred = logits.softmax(-1).max(-1)
    conf, right = conf[masked], (pred == blocks)[masked].float()
    edges = torch.linspace(0, 1, bins + 1)
    idx = torch.bucketize(conf, edges[1:-1])
    n = torch.bincount(idx, minlength=bins).float()
    mean_conf = torch.bincount(idx, conf, minlength=bins) / n.clamp(min=1)
    accuracy = torch.bincount(idx, right, minlength=bins) / n.clamp(min=1)
    ece = float((n / n.sum() * (mean_conf - accuracy).abs()).sum())
    return {"edges": edges, "count": n, "confidence": mean_conf, "accuracy": accuracy, "ece": ece}
