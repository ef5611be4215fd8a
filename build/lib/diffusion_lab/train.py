"""One training loop for every objective of the lineage (mlm, variable, mdlm, sundae, ar).

The loop knows nothing about the objective beyond ``objectives.compute_loss``: AdamW, linear
warmup then cosine decay, gradient clipping, autocast on CUDA (bf16 where supported, else fp16
with a gradient scaler), a ``tqdm`` bar showing the loss, a periodic held-out evaluation,
callbacks, and checkpoints from which ``resume=True`` continues after an interruption — the same
batches, the same noise, the same final weights as an uninterrupted run (on CPU).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from . import data, distributed, noise
from .config import get_device
from .objectives import TokenInfo, check_objective, compute_loss


@dataclass
class History:
    """What `train` measured.  ``loss`` is per step (nats per token); ``eval`` holds
    ``(step, held-out loss)`` pairs; ``tokens_per_s`` counts training tokens over the time spent
    in optimisation steps (evaluation and checkpoints excluded)."""

    objective: str
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    eval: list[tuple[int, float]] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def steps(self) -> int:
        return len(self.loss)

    def final_loss(self, last: int = 50) -> float:
        """Mean loss of the last ``last`` steps."""
        tail = self.loss[-last:]
        return sum(tail) / len(tail) if tail else float("nan")


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warmup for ``warmup`` steps, then cosine decay to 10% of ``lr``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _batches_source(tok, texts, seq_len: int, packing: bool | None):
    """Either a packed token stream (a corpus) or a matrix of padded examples (a task)."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or not texts or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"texts must be a non-empty str or a list of str, got {texts!r:.60}")
    if not any(t.strip() for t in texts):
        raise ValueError(f"texts is empty (got {texts!r:.60}): give a corpus (dl.load_corpus) or "
                         "task examples")
    if packing is None:
        packing = len(texts) == 1
    if packing:
        return "stream", data.encode_corpus(tok, "\n".join(texts))
    return "examples", data.pad_examples(tok, list(texts), seq_len)


def _draw(kind, source, batch_size, seq_len, cls_id, generator):
    if kind == "stream":
        return data.random_blocks(source, batch_size, seq_len, cls_id=cls_id, generator=generator)
    rows = torch.randint(0, source.shape[0], (batch_size,), generator=generator)
    return source[rows]


def _check_args(steps, batch_size, seq_len, lr, model):
    for name, value in (("steps", steps), ("batch_size", batch_size), ("seq_len", seq_len)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(lr, (int, float)) or not 0 < lr < 1:
        raise ValueError(f"lr must be a float in (0, 1), got {lr!r}")
    from .models import max_positions

    if seq_len > max_positions(model):
        raise ValueError(f"seq_len={seq_len} exceeds the model's {max_positions(model)} positions")


def train(
    model,
    tok,
    texts: str | Sequence[str],
    *,
    objective: str = "mdlm",
    steps: int = 1000,
    batch_size: int = 32,
    seq_len: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    warmup: int = 100,
    weight_decay: float = 0.01,
    grad_clip: float = 1.0,
    eval_texts: str | Sequence[str] | None = None,
    eval_every: int = 0,
    eval_batches: int = 4,
    callbacks: Sequence[Callable] = (),
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    device: torch.device | str | None = None,
    amp: bool | None = None,
    packing: bool | None = None,
    progress: bool = True,
    **loss_kwargs,
) -> History:
    """Train ``model`` on ``texts`` with ``objective`` for ``steps`` optimiser steps.

    ``texts``: a corpus string (packed into random ``seq_len`` windows behind a [CLS] anchor) or a
    list of short examples (each padded to ``seq_len``); ``packing`` overrides the guess.
    ``callbacks`` are called as ``cb(step, history, model)`` after every step; raising
    ``StopIteration`` ends training early.  With ``checkpoint_dir`` and ``checkpoint_every``,
    a checkpoint is written every N steps; ``resume=True`` continues from the newest one.
    Returns a `History`; the model is left in eval mode on ``device``.
    """
    check_objective(objective, model)
    _check_args(steps, batch_size, seq_len, lr, model)
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir (where the checkpoints were written)")
    device = torch.device(device) if device is not None else get_device()
    device = distributed.setup(device)  # under torchrun: this rank's device (distributed.py)
    cls_id = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
    info = None if objective == "ar" else TokenInfo.from_tokenizer(tok)
    kind, source = _batches_source(tok, texts, seq_len, packing)
    evals = []
    if eval_texts is not None:
        ekind, esource = _batches_source(tok, eval_texts, seq_len, packing)
        eval_gen = torch.Generator().manual_seed(seed + 1)
        evals = [_draw(ekind, esource, batch_size, seq_len, cls_id, eval_gen)
                 for _ in range(eval_batches)]

    model.to(device).train()
    distributed.broadcast_parameters(model)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr,
                                  betas=(0.9, 0.98))
    generator = torch.Generator().manual_seed(seed)
    history, start = History(objective), 0
    if resume and (latest := ckpt.latest_checkpoint(Path(checkpoint_dir))) is not None:
        start, saved = ckpt.load_checkpoint(latest, model, optimizer, generator)
        history = History(**{**saved, "eval": [tuple(e) for e in saved["eval"]]})

    use_amp = device.type == "cuda" if amp is None else amp and device.type == "cuda"
    dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and dtype == torch.float16)
    autocast = (lambda: torch.autocast("cuda", dtype=dtype)) if use_amp else nullcontext

    def evaluate() -> float:
        model.eval()
        g = torch.Generator().manual_seed(seed + 2)
        with torch.no_grad(), autocast():
            vals = [compute_loss(objective, model, b.to(device), info, generator=g,
                                 fixed=noise.anchor_fixed(b), **loss_kwargs).item() for b in evals]
        model.train()
        return sum(vals) / len(vals)

    bar = tqdm(range(start, steps), initial=start, total=steps,
               disable=not progress or not distributed.is_main(),
               desc=f"train {objective}", leave=False)
    for step in bar:
        tick = time.perf_counter()
        batch = distributed.shard(_draw(kind, source, batch_size, seq_len, cls_id, generator))
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        with autocast():
            loss = compute_loss(objective, model, batch.to(device), info, generator=generator,
                                fixed=noise.anchor_fixed(batch), **loss_kwargs)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        distributed.average_gradients(model)
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        value = distributed.mean_over_ranks(loss).item()
        if not math.isfinite(value):
            raise FloatingPointError(f"loss became {value} at step {step}; lower lr (now {lr})")
        history.loss.append(value)
        history.lr.append(optimizer.param_groups[0]["lr"])
        history.tokens += batch.numel()
        history.seconds += time.perf_counter() - tick
        if step % 10 == 0:
            bar.set_postfix(loss=f"{value:.3f}")
        if evals and eval_every and ((step + 1) % eval_every == 0 or step + 1 == steps):
            history.eval.append((step + 1, evaluate()))
        if (checkpoint_dir is not None and checkpoint_every and (step + 1) % checkpoint_every == 0
                and distributed.is_main()):
            ckpt.save_checkpoint(Path(checkpoint_dir), step + 1, model, optimizer, generator,
                                 asdict(history))
        try:
            for cb in callbacks:
                cb(step + 1, history, model)
        except StopIteration:
            break
    bar.close()
    model.eval()
    return history
