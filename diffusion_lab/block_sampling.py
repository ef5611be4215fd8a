r"""Decoding a block-diffusion model block by block, with an exact key-value cache.

A block model (``block_diffusion``) factorises $p(x) = \prod_b p(x^b \mid x^{<b})$, so it is
sampled left to right one block at a time, and inside a block by any registered strategy
(``threshold``, ``low_confidence``, ``ancestral``, ...) exactly as ``sampling.generate`` runs
the reverse process on a whole sequence:

$$ z^b_s = \mathrm{mask}_R\big(\mathrm{where}(U, \hat x, z^b_t)\big), \qquad
   \hat x \sim p_\theta(\cdot \mid z^b_t, x^{<b}) . $$

**The cache is exact.**  In a block model a clean block attends only to the clean blocks before
it (the block-causal half of the training mask), so its keys and values never change once it is
decoded: `KVCache` computes them once and every later step reads them.  The pass that commits
block $b$'s keys and values is also block $b+1$'s first denoising pass (one forward over
$[x^b \oplus z^{b+1}]$, the noisy rows' keys cropped after it), so the cache costs no extra pass.
`Recompute` is the same computation without a cache: every step re-runs the whole clean prefix.
Both give the same logits (to float rounding; tests/test_block_sampling.py checks 1e-5 on every
block for every strategy).  A *bidirectional* model decoded with a ``block_size`` schedule
(``sampling.block_plan``, LLaDA's ``block_length``) has no such property: its prefix attends to
the masks after it, so the prefix's keys and values change at every step and a cache of them is
an approximation (Fast-dLLM's), not this.

Rows of a batch share the block boundaries (absolute positions, as in training); a prompt's
tokens are fixed slots of the blocks they fall in.  With a stop token (``stop="[EOS]"``, as
for the AR sampler; the tokenizer's ``eos_token`` by default), decoding ends after the block in
which every row has written it, and the slots after it become that token, as ``ar_sampling``
does.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence

import torch

from .ar_sampling import stop_token_id
from .block_diffusion import allowed, attention_mask_for, block_config, block_index
from .categorical import probability_of, sample_filtered
from .denoiser import TokenInfo, ban
from .runtime import seed_or_random
from .settings import SampleSettings
from .strategies import StepContext, get_strategy, leave_no_mask
from .trajectory import Frame, Trajectory, decode_texts


class Recompute:
    """Block logits with no cache: each call runs the clean prefix and the noisy block."""

    def __init__(self, model, info: TokenInfo, n: int):
        self.model, self.info = model, info
        self.block_size, self.shift = block_config(model)
        self.blocks = block_index(n, self.block_size, self.shift)
        self.passes, self._inputs = 0, {}  # (first, start, end, rows) -> (positions, mask)
        params = inspect.signature(model.forward).parameters  # transformers >= 5.2x: "cache"
        self.cache_key = "cache" if "cache" in params else \
            "past_key_values" if "past_key_values" in params else None

    def bounds(self, b: int) -> tuple[int, int]:
        where = (self.blocks == b).nonzero()[:, 0]
        return int(where[0]), int(where[-1]) + 1

    def _positions_and_mask(self, rows, start, end, first, device):
        """Position ids (rows, end - first) and the 4-D mask of `_run`, built once per shape."""
        key = (first, start, end, rows, str(device))
        if key not in self._inputs:
            blocks = self.blocks.to(device)
            q_pos, k_pos = torch.arange(first, end, device=device), torch.arange(end, device=device)
            allow = allowed(blocks[q_pos], blocks[k_pos], q_pos >= start, k_pos >= start)
            self._inputs[key] = (q_pos[None].expand(rows, -1),
                                 attention_mask_for(self.model, allow, rows))
        return self._inputs[key]

    def _run(self, x, start, end, first, cache=None):
        """Forward positions [first, end): [first, start) clean, [start, end) noisy; keys also
        the cached positions [0, first).  Returns the (B, end - first, V) float logits."""
        pos, mask = self._positions_and_mask(len(x), start, end, first, x.device)
        extra = {self.cache_key: cache, "use_cache": True} if cache is not None else \
            {"use_cache": False}
        self.passes += 1
        return self.model(input_ids=x[:, first:end], position_ids=pos, attention_mask=mask,
                          **extra).logits.float()

    def _predictions(self, out, first, start, end, head):
        """(B, end - start, V): row i predicts x^i (the shift reads row i - 1; the block's
        first token the clean position before it, ``head``)."""
        block = out[:, start - first:]
        if not self.shift:
            return ban(block, self.info)
        return ban(torch.cat([head[:, None], block[:, :-1]], 1), self.info)

    def logits(self, x: torch.Tensor, b: int) -> torch.Tensor:
        """(B, block length, V) logits of block ``b``'s positions, blocks before it clean."""
        start, end = self.bounds(b)
        out = self._run(x, start, end, 0)
        head = out[:, start - 1] if self.shift else None
        return self._predictions(out, 0, start, end, head)


class KVCache(Recompute):
    """Block logits with an exact key-value cache of the clean prefix (a transformers
    ``DynamicCache``): the clean blocks not yet cached are committed in the same pass as the
    block's first denoising step; later steps run the block's own tokens only."""

    def __init__(self, model, info: TokenInfo, n: int):
        super().__init__(model, info, n)
        if self.cache_key is None:
            raise ValueError(f"{type(model).__name__} takes no key-value cache in transformers; "
                             "decode it with cache=False")
        from transformers import DynamicCache

        self.cache, self.cached, self.head = DynamicCache(config=model.config), 0, None

    def logits(self, x: torch.Tensor, b: int) -> torch.Tensor:
        start, end = self.bounds(b)
        first = self.cached
        out = self._run(x, start, end, first, cache=self.cache)
        self.cache.crop(start - end)  # drop the noisy block's keys, keep the clean ones
        self.cached = start
        if self.shift and first < start:  # the clean position before the block: x^start's
            self.head = out[:, start - 1 - first]
        return self._predictions(out, first, start, end, self.head)


def _check(model, cfg: SampleSettings, block_size: int, name: str) -> None:
    if cfg.block_size is not None and cfg.block_size != block_size:
        raise ValueError(
            f"block_size={cfg.block_size} is a sampling schedule for a bidirectional model; this "
            f"block-diffusion model's blocks are its architecture (block_size={block_size}, "
            "fixed in training): leave block_size out")
    if cfg.revisable:
        raise ValueError("revisable prompt tokens need a bidirectional model; a block model's "
                         "finished blocks are its clean past")
    if get_strategy(name).start != "mask":
        raise ValueError(f"strategy {name!r} starts from random tokens; a block model decodes "
                         "from [MASK]")


def step_plan(free_blocks: list[int], steps: int) -> list[int]:
    """Steps per block: ``steps`` shared evenly, the remainder to the first blocks."""
    if steps < len(free_blocks):
        raise ValueError(f"steps={steps} is fewer than the {len(free_blocks)} blocks to decode; "
                         f"use steps >= {len(free_blocks)}")
    per, extra = divmod(steps, len(free_blocks))
    return [per + (i < extra) for i in range(len(free_blocks))]


def _frame(step, x, masked, conf, revealed, remasked) -> Frame:
    return Frame(step, x.cpu().clone(), masked.cpu().clone(), conf.float().cpu().clone(),
                 revealed.cpu().clone(), remasked.cpu().clone())


@torch.no_grad()
def generate_blocks(model, tok, prompts: Sequence[str] = ("",),
                    settings: SampleSettings | None = None, *, cache: bool = True,
                    stop: str | None = None, callback_on_step_end=None,
                    **kwargs) -> Trajectory:
    """Sample a block model block by block (module docstring); returns a `Trajectory` whose
    ``passes_per_row`` counts, per row, the passes until its block with the stop token
    (``stop``, e.g. ``"[EOS]"``, else the tokenizer's ``eos_token``: `ar_sampling.stop_token_id`).

    Keyword arguments as `sampling.generate` (``length``, ``steps`` shared among the blocks to
    decode, ``strategy`` (default ``"threshold"``), ``temperature``, ``top_k``, ``top_p``,
    ``seed``, ``num_samples``, ``record`` and the strategy's options); ``block_size`` must be
    left out (the model's own).  ``cache=False`` recomputes the prefix at every step;
    ``callback_on_step_end(step, frame)`` as in `sampling.generate` (True stops)."""
    from .sampling import _settings, check_prompts, prepare

    cfg = _settings(settings, kwargs)
    check_prompts(model, prompts, cfg.length)
    block_size, _ = block_config(model)
    name = cfg.strategy or "threshold"
    _check(model, cfg, block_size, name)
    rule = get_strategy(name)
    options = rule.resolve_options(name, cfg.options)
    prompts = [p for p in prompts for _ in range(cfg.num_samples)]
    device, info = next(model.parameters()).device, TokenInfo.from_tokenizer(tok)
    gen = torch.Generator(device=device).manual_seed(seed_or_random(cfg.seed))
    x, fixed = (t.to(device) for t in prepare(tok, prompts, cfg.length))
    stop = stop_token_id(tok, stop)
    context = (KVCache if cache else Recompute)(model.eval(), info, x.shape[1])
    blocks = context.blocks.to(device)
    todo = [int(b) for b in blocks.unique() if bool((~fixed[:, blocks == b]).any())]
    masked, conf, nothing = ~fixed, fixed.double(), torch.zeros_like(fixed)
    start, frames, per_row = _frame(0, x, masked, conf, nothing, nothing), [], \
        torch.zeros(len(x), dtype=torch.long, device=device)
    done, tick, k = torch.zeros(len(x), dtype=torch.bool, device=device), time.perf_counter(), 0
    record, halt = cfg.record or callback_on_step_end is not None, False
    for b, n in zip(todo, step_plan(todo, cfg.steps), strict=True):
        cols = blocks == b
        region = ~fixed & cols[None]
        in_block = region[:, cols]  # (B, block length): the region, in the block's columns
        grid = rule.time_grid(n, options)
        for i in range(len(grid) - 1):
            per_row += ((masked & region).any(1) & ~done).long()
            logits = context.logits(x, b)  # (B, block length, V)
            rows = logits[in_block]  # (slots, V) this step may touch
            drawn = sample_filtered(rows, gen, cfg.temperature, cfg.top_k, cfg.top_p)
            proposal, p = x.clone(), torch.zeros_like(conf)
            proposal[region], p[region] = drawn, probability_of(rows, drawn)
            ctx = StepContext(x=x, masked=masked, region=region, proposal=proposal, p=p,
                              conf=conf, t=grid[i], s=grid[i + 1], step=i, n=len(grid) - 1,
                              generator=gen, options=options)
            update, remask = leave_no_mask(ctx, *rule.rule(ctx))
            x_new = torch.where(update, proposal, x).masked_fill(remask, info.mask_id)
            conf = torch.where(update, p, conf).masked_fill(remask, 0.0)
            masked_new = (masked & ~update) | remask
            k += 1
            if record:
                frames.append(_frame(k, x_new, masked_new, conf, update & ~remask & (
                    masked | (x_new != x)), remask & ~masked))
                halt = bool(callback_on_step_end and callback_on_step_end(k, frames[-1]))
            x, masked = x_new, masked_new
            if halt or rule.finished(ctx, masked):
                break
        if halt:
            break
        if stop is not None:
            done = done | ((x == stop) & ~fixed & (blocks <= b)[None]).any(1)
            if bool(done.all()):
                break
    seconds = time.perf_counter() - tick
    if stop is not None:  # after a row's stop token, the rest of the row is that token
        after = (((x == stop) & ~fixed).cumsum(1) > 0) & ~fixed
        x = torch.where(after, stop, x)
        masked = masked & ~after
    if not cfg.record:
        frames = [_frame(1, x, masked, conf, nothing, nothing)]
    elif stop is not None:
        frames.append(_frame(k + 1, x, masked, conf, nothing, nothing))
    return Trajectory(decode_texts(tok, x, fixed), frames, start, fixed.cpu(), tok, name,
                      context.passes, seconds, per_row.cpu())
