"""One training loop for every objective of the lineage (mlm, variable_rate, mdlm, sundae, ar, sft).

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
from .denoiser import TokenInfo
from .models import is_causal_lm, max_positions
from .objectives import canonical_objective, check_objective, compute_loss
from .runtime import get_device
from .settings import TrainSettings
from .tokenization import anchor_id


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


def _batches_source(tok, texts, seq_len: int, packing: bool | None, objective: str = ""):
    """A packed token stream (a corpus), a matrix of padded examples (a task), or (ids, fixed)
    rows of (prompt, response) pairs (``objective="sft"``)."""
    if objective == "sft":
        if isinstance(texts, str):
            raise TypeError("objective='sft' takes a list of (prompt, response) pairs, got a str")
        return "pairs", data.pad_pairs(tok, texts, seq_len)
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
    """(batch (B, seq_len), fixed (B, seq_len)): the anchor is fixed, and an SFT row's prompt."""
    if kind == "stream":
        batch = data.random_blocks(source, batch_size, seq_len, cls_id=cls_id, generator=generator)
        return batch, noise.anchor_fixed(batch)
    ids, fixed = source if kind == "pairs" else (source, None)
    rows = torch.randint(0, ids.shape[0], (batch_size,), generator=generator)
    return ids[rows], (noise.anchor_fixed(ids[rows]) if fixed is None else fixed[rows])


def _check_fits(seq_len, model):
    if seq_len > max_positions(model):
        raise ValueError(f"seq_len={seq_len} exceeds the model's {max_positions(model)} positions")


def _optimizer(model, cfg: TrainSettings) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only (not on biases and norms)."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr,
                             betas=(0.9, 0.98))


def _mixed_precision(device: torch.device, amp: bool | None):
    """(autocast context factory, gradient scaler): bf16 where supported, else fp16 + scaler."""
    use_amp = device.type == "cuda" if amp is None else amp and device.type == "cuda"
    dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and dtype == torch.float16)
    return ((lambda: torch.autocast("cuda", dtype=dtype)) if use_amp else nullcontext), scaler


def train_settings(settings: TrainSettings | None = None, **kwargs) -> TrainSettings:
    """``settings`` (default `TrainSettings()`) with ``kwargs`` applied (loss options included)."""
    if settings is not None and not isinstance(settings, TrainSettings):
        raise TypeError(f"settings must be a dl.TrainSettings, got {type(settings).__name__}")
    return (settings or TrainSettings()).with_(**kwargs)


def train(model, tok, texts: str | Sequence[str], settings: TrainSettings | None = None, *,
          eval_texts: str | Sequence[str] | None = None, callbacks: Sequence[Callable] = (),
          checkpoint_dir: str | Path | None = None, resume: bool = False,
          device: torch.device | str | None = None, **kwargs) -> History:
    r"""Train ``model`` on ``texts``: ``steps`` AdamW steps on $\nabla_\theta\,
    \mathcal{L}_{\text{objective}}(\theta)$ (``objectives``), with warmup then cosine decay.

    Keyword arguments are the fields of `TrainSettings` (``objective``, ``steps``,
    ``batch_size``, ``seq_len``, ``lr``, ``seed``, ``warmup``, ``weight_decay``, ``grad_clip``,
    ``eval_every``, ``eval_batches``, ``checkpoint_every``, ``amp``, ``packing``, ``progress``)
    or a ``settings`` record; other keywords go to the loss (e.g. ``schedule="cosine"``).
    ``texts``: a corpus string (packed into random ``seq_len`` windows behind the anchor) or a
    list of short examples (each padded to ``seq_len``); ``packing`` overrides the guess.  With
    ``objective="sft"``: a list of ``(prompt, response)`` pairs (`data.pad_pairs`).
    ``callbacks`` are called as ``cb(step, history, model)`` after every step; raising
    ``StopIteration`` ends training early.  With ``checkpoint_dir`` and ``checkpoint_every``,
    a checkpoint is written every N steps; ``resume=True`` continues from the newest one.
    Returns a `History`; the model is left in eval mode on ``device``.
    """
    cfg = train_settings(settings, **kwargs)
    check_objective(cfg.objective, model)
    _check_fits(cfg.seq_len, model)
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir (where the checkpoints were written)")
    objective = canonical_objective(cfg.objective)
    device = torch.device(device) if device is not None else get_device()
    device = distributed.setup(device)  # under torchrun: this rank's device (distributed.py)
    cls_id = anchor_id(tok)
    info = TokenInfo.from_tokenizer(tok, need_mask=not is_causal_lm(model))
    kind, source = _batches_source(tok, texts, cfg.seq_len, cfg.packing, objective)
    evals = []
    if eval_texts is not None:
        ekind, esource = _batches_source(tok, eval_texts, cfg.seq_len, cfg.packing, objective)
        eval_gen = torch.Generator().manual_seed(cfg.seed + 1)
        evals = [_draw(ekind, esource, cfg.batch_size, cfg.seq_len, cls_id, eval_gen)
                 for _ in range(cfg.eval_batches)]
    model.to(device).train()
    distributed.broadcast_parameters(model)
    optimizer, generator = _optimizer(model, cfg), torch.Generator().manual_seed(cfg.seed)
    history, start = History(objective), 0
    if resume and (latest := ckpt.latest_checkpoint(Path(checkpoint_dir))) is not None:
        start, saved = ckpt.load_checkpoint(latest, model, optimizer, generator)
        history = History(**{**saved, "eval": [tuple(e) for e in saved["eval"]]})
    autocast, scaler = _mixed_precision(device, cfg.amp)

    def loss_on(drawn, gen):
        batch, fixed = drawn
        with autocast():
            return compute_loss(objective, model, batch.to(device), info, generator=gen,
                                fixed=fixed, **cfg.loss_options)

    def evaluate() -> float:
        model.eval()
        g = torch.Generator().manual_seed(cfg.seed + 2)
        with torch.no_grad():
            vals = [loss_on(b, g).item() for b in evals]
        model.train()
        return sum(vals) / len(vals)

    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps,
               disable=not cfg.progress or not distributed.is_main(),
               desc=f"train {objective}", leave=False)
    for step in bar:
        tick = time.perf_counter()
        drawn = _draw(kind, source, cfg.batch_size, cfg.seq_len, cls_id, generator)
        drawn = tuple(distributed.shard(t) for t in drawn)  # this rank's rows under torchrun
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg.steps, cfg.lr, cfg.warmup)
        loss = loss_on(drawn, generator)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        distributed.average_gradients(model)
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        value = distributed.mean_over_ranks(loss).item()
        if not math.isfinite(value):
            raise FloatingPointError(f"loss became {value} at step {step}; lower lr (now {cfg.lr})")
        history.loss.append(value)
        history.lr.append(optimizer.param_groups[0]["lr"])
        history.tokens += drawn[0].numel()
        history.seconds += time.perf_counter() - tick
        if step % 10 == 0:
            bar.set_postfix(loss=f"{value:.3f}")
        done = step + 1
        if evals and cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.steps):
            history.eval.append((done, evaluate()))
        if (checkpoint_dir is not None and cfg.checkpoint_every
                and done % cfg.checkpoint_every == 0 and distributed.is_main()):
            ckpt.save_checkpoint(Path(checkpoint_dir), done, model, optimizer, generator,
                                 asdict(history))
        try:
            for cb in callbacks:
                cb(done, history, model)
        except StopIteration:
            break
    bar.close()
    model.eval()
    return history
