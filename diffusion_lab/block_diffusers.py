r"""The book's block model driven by diffusers' ``BlockRefinementScheduler`` (optional extra).

diffusers (>= 0.39; ``pip install diffusion-lab[diffusers]``) ships LLaDA2's decoding rule as a
scheduler: per block, sample a token for every slot, then *commit by confidence*

$$ U = \{i \text{ masked} : \hat p^i > \tau\} \quad\text{if } |U| \ge n_k, \text{ else the } n_k
   \text{ most confident masked slots}, \qquad n_k = \lfloor B/K \rfloor + [k < B \bmod K] ,$$

and, with a positive ``editing_threshold``, replace a committed token whose new draw has
confidence above it.  `generate_with_scheduler` feeds it the logits of `block_sampling.KVCache`
(the same exact cache, the same shift), so only the rule is diffusers'.  How it maps onto the
library (tests/test_block_diffusers.py checks the first point token for token):

* ``num_inference_steps = B`` (so $n_k = 1$), greedy (``temperature=0``) and no editing: the
  same tokens, committed in the same steps, as ``strategy="threshold"`` with ``top_k=1``;
* fewer steps than $B$: the scheduler commits at least $n_k \ge 2$ a step, the library's
  threshold at least one (its floor is the schedule's count, like ``low_confidence`` with
  ``counts="llada"``);
* ``temperature > 0``: the scheduler draws with ``torch.multinomial`` over float32
  probabilities and scores the *tempered* probability; the library draws by float64 Gumbel-max
  and scores the untempered one (``categorical``) — same distribution, different draws;
* ``editing_threshold``: the library's ``threshold`` never revises a committed token (the
  revising rules are ``remdm`` and ``confidence_weighted``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .block_diffusion import block_config
from .block_sampling import KVCache, step_plan
from .denoiser import TokenInfo


def require_diffusers():
    """diffusers' ``BlockRefinementScheduler``; an ImportError naming the extra when absent."""
    try:
        from diffusers import BlockRefinementScheduler
    except ImportError as err:
        raise ImportError("diffusers is an optional extra: pip install 'diffusion-lab[diffusers]' "
                          "(diffusers >= 0.39)") from err
    return BlockRefinementScheduler


@torch.no_grad()
def generate_with_scheduler(model, tok, prompts: Sequence[str] = ("",), *, length: int,
                            steps_per_block: int | None = None, threshold: float = 0.9,
                            editing_threshold: float | None = None, temperature: float = 0.0,
                            seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``(ids (B, 1 + length), commits)``: decode a block model block by block, the commits of
    every step chosen by diffusers' scheduler; ``commits`` holds each step's (B, 1 + length)
    bool mask of the slots it wrote.  ``steps_per_block`` defaults to the block size."""
    from .sampling import check_prompts, prepare

    scheduler_cls = require_diffusers()
    check_prompts(model, prompts, length)
    block_size, _ = block_config(model)
    steps = steps_per_block or block_size
    scheduler = scheduler_cls(block_length=block_size, num_inference_steps=steps,
                              threshold=threshold, editing_threshold=editing_threshold)
    device, info = next(model.parameters()).device, TokenInfo.from_tokenizer(tok)
    x, fixed = (t.to(device) for t in prepare(tok, list(prompts), length))
    context = KVCache(model.eval(), info, x.shape[1])
    blocks = context.blocks.to(device)
    todo = [int(b) for b in blocks.unique() if bool((~fixed[:, blocks == b]).any())]
    step_plan(todo, steps * len(todo))  # validates
    gen = torch.Generator(device=device).manual_seed(seed)
    commits = []
    for b in todo:
        cols = blocks == b
        scheduler.set_timesteps(steps, device=device, block_length=int(cols.sum()))
        for k in range(steps):
            logits = context.logits(x, b)  # (B, block length, V), banned ids at -inf
            out = scheduler.step(logits, k, x[:, cols], mask_token_id=info.mask_id,
                                 temperature=temperature, prompt_mask=fixed[0, cols],
                                 generator=gen)
            block = torch.where(fixed[:, cols], x[:, cols], out.prev_sample)
            wrote = torch.zeros_like(fixed)
            wrote[:, cols] = (out.transfer_index | out.editing_transfer_index) & ~fixed[:, cols]
            x[:, cols] = block
            commits.append(wrote)
            if not bool((x[:, cols] == info.mask_id).any()) and not editing_threshold:
                break
    return x, commits
