r"""Block diffusion (BD3-LM, Arriola et al. 2025): autoregressive over blocks, diffusion inside.

Cut the $L$ text positions into blocks of $B$ tokens, $x = (x^1, \dots, x^{L/B})$, and factorise

$$ p_\theta(x) = \prod_b p_\theta(x^b \mid x^{<b}), $$

each factor a masked-diffusion model of one block given the clean blocks before it.  Its ELBO is
MDLM's (``objectives.mdlm_loss``) block by block:

$$ -\log p_\theta(x) \le \sum_b \mathbb{E}_{t_b \sim U(0,1)}\; \frac{1}{t_b}
   \sum_{i \in b:\, z_{t_b}^i = m} -\log p_\theta(x^i \mid z_{t_b}^b, x^{<b}) . $$

**One forward pass for every block** (the paper's vectorised training).  The input is the noisy
and the clean sequence side by side, $[z_t \oplus x]$ ($2N$ tokens, $N = 1 + L$ with the [CLS]
anchor), both halves with the position ids $0 \dots N-1$, and the attention mask

$$ M = \begin{pmatrix} M_{BD} & M_{OBC} \\ 0 & M_{BC} \end{pmatrix}:\quad
   \begin{aligned} M_{BD}[i, j] &= [\,b(i) = b(j)\,] && \text{noisy} \to \text{its own noisy
   block} \\ M_{OBC}[i, j] &= [\,b(j) < b(i)\,] && \text{noisy} \to \text{earlier clean blocks}
   \\ M_{BC}[i, j] &= [\,b(j) \le b(i)\,] && \text{clean} \to \text{clean, block-causal}
   \end{aligned} $$

so every noisy block sees exactly what it will see at sampling time: itself and the clean past.
The clean half's keys and values depend only on the clean past, which is why a key-value cache
is *exact* here (``block_sampling``) and only an approximation for a bidirectional model.

**The limits.**  With $B = L$ and no shift the anchor joins the one block: the noisy half sees
only itself, and the loss *is* ``mdlm_loss`` (same draws from the same generator, same
weights).  With $B = 1$ and the shifted prediction below, every token is predicted from the
clean prefix and the loss *is* ``ar_loss`` (tests/test_block_diffusion.py checks both).

**Shifted prediction** (``shift=True``; DiffuLLaMA, Gong et al. 2025; Dream; Fast-dLLM v2, Wu et
al. 2025): keep the AR model's habit that the output at position $i - 1$ predicts token $i$.
Inside a block that output is the noisy half's; a block's *first* token is predicted by the
clean half's output at the position before the block (its AR prediction from $x^{<b}$), and the
anchor is the clean prefix of every block.  That term's CE does not depend on the noise, so the
loss takes its expectation exactly ($\mathbb{E}_t[\tfrac1t \mathbf 1[\text{masked}]] = 1$):
same ELBO, less variance.  A2D (AR-to-diffusion) adapts a GPT with ``shift=True``.

A model becomes a block model with `as_block_model` (its config records ``block_size`` and
``shift``, saved with it); the loss, the bound and the sampler all read them from there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import noise
from .denoiser import TokenInfo, ban

CONFIG_KEY = "block_diffusion"  # model.config.block_diffusion = {"block_size": B, "shift": bool}


def as_block_model(model, block_size: int, shift: bool = False):
    """Mark ``model`` (any transformers LM that takes a 4-D ``attention_mask`` and
    ``position_ids``: GPT-2, ModernBERT) as a block-diffusion model; returns it."""
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")
    if not isinstance(shift, bool):
        raise TypeError(f"shift must be a bool, got {shift!r}")
    setattr(model.config, CONFIG_KEY, {"block_size": block_size, "shift": shift})
    return model


def block_config(model) -> tuple[int, bool]:
    """``(block_size, shift)`` of a block model; a ValueError for any other model."""
    cfg = getattr(getattr(model, "config", None), CONFIG_KEY, None)
    if not isinstance(cfg, dict) or "block_size" not in cfg:
        raise ValueError(f"{type(model).__name__} is not a block-diffusion model: mark it with "
                         "dl.block_diffusion.as_block_model(model, block_size, shift)")
    return int(cfg["block_size"]), bool(cfg.get("shift", False))


def is_block_model(model) -> bool:
    """True for a model marked by `as_block_model`."""
    return isinstance(getattr(getattr(model, "config", None), CONFIG_KEY, None), dict)


def block_index(n: int, block_size: int, shift: bool, device=None) -> torch.Tensor:
    """(n,) the block of each position: text position $i \\ge 1$ is in block $(i-1) // B$; the
    anchor is in block 0, or in a clean prefix block -1 when ``shift`` (it predicts $x^1$)."""
    pos = torch.arange(n, device=device)
    blocks = (pos - 1).clamp(min=0) // block_size
    blocks[0] = -1 if shift else 0
    return blocks


def allowed(query_blocks: torch.Tensor, key_blocks: torch.Tensor, query_noisy: torch.Tensor,
            key_noisy: torch.Tensor) -> torch.Tensor:
    """(Q, K) bool: may a query attend to a key?  The three rules of $M$ (module docstring):
    noisy -> same noisy block, noisy -> strictly earlier clean blocks, clean -> clean blocks up
    to its own; never clean -> noisy."""
    qb, kb = query_blocks[:, None], key_blocks[None, :]
    qn, kn = query_noisy[:, None], key_noisy[None, :]
    return (qn & kn & (qb == kb)) | (qn & ~kn & (kb < qb)) | (~qn & ~kn & (kb <= qb))


def training_mask(n: int, block_size: int, shift: bool, device=None) -> torch.Tensor:
    """(2n, 2n) bool: the BD3-LM mask over $[z_t \\oplus x]$ (True = attend)."""
    blocks = block_index(n, block_size, shift, device).repeat(2)
    noisy = torch.arange(2 * n, device=device) < n
    return allowed(blocks, blocks, noisy, noisy)


def attention_mask_for(model, allow: torch.Tensor, batch: int) -> torch.Tensor:
    """``allow`` (Q, K) bool as the 4-D mask ``model`` takes: bool for SDPA and flex kernels
    (True = attend), additive float (0 or the dtype's min) for the eager one."""
    if getattr(model.config, "_attn_implementation", "sdpa") == "eager":
        dtype = next(model.parameters()).dtype
        mask = torch.zeros(allow.shape, dtype=dtype, device=allow.device)
        mask = mask.masked_fill(~allow, torch.finfo(dtype).min)
        return mask[None, None].expand(batch, 1, *allow.shape)
    return allow[None, None].expand(batch, 1, *allow.shape)


def from_clean_stream(n: int, block_size: int, shift: bool, device=None) -> torch.Tensor:
    """(n,) True where token $i$ is predicted by the clean half (shift: a block's first token,
    from the position before the block); False where by the noisy half."""
    blocks = block_index(n, block_size, shift, device)
    first = torch.zeros(n, dtype=torch.bool, device=device)
    if shift:
        first[1:] = blocks[1:] != blocks[:-1]
    return first


def two_stream_logits(model, noisy: torch.Tensor, clean: torch.Tensor, info: TokenInfo
                      ) -> torch.Tensor:
    """(B, N, V) logits of every position's prediction, banned ids at -inf, in one forward pass
    over $[z_t \\oplus x]$ with the block mask: row $i$ is $p_\\theta(x^i \\mid z_t^{b(i)},
    x^{<b(i)})$ (row 0, the anchor's, is never a target)."""
    block_size, shift = block_config(model)
    b, n = noisy.shape
    allow = training_mask(n, block_size, shift, noisy.device)
    pos = torch.arange(n, device=noisy.device).repeat(2)[None].expand(b, -1)
    out = model(input_ids=torch.cat([noisy, clean], 1), position_ids=pos,
                attention_mask=attention_mask_for(model, allow, b)).logits.float()
    noisy_out, clean_out = out[:, :n], out[:, n:]
    if not shift:
        return ban(noisy_out, info)
    first = from_clean_stream(n, block_size, shift, noisy.device)[None, :, None]  # (1, N, 1)
    before = lambda t: torch.cat([t[:, :1], t[:, :-1]], 1)  # noqa: E731 - row i <- row i - 1
    return ban(torch.where(first, before(clean_out), before(noisy_out)), info)


def mask_blocks(ids: torch.Tensor, fixed: torch.Tensor, info: TokenInfo, block_size: int,
                shift: bool, generator: torch.Generator | None, eps: float = 1e-3,
                t_range: tuple[float, float] | None = None):
    """``(noisy, masked, t)``: one $t_b \\sim U(\\epsilon, 1)$ per row and block (MDLM's
    antithetic draw over all of them), each free token of block b masked with probability
    $t_b$; ``t`` is (B, N), each position's own block's $t$ (rows of one block: one $t$).
    ``t_range=(lo, hi)``: $t_b \\sim U(lo, hi)$ instead, BD3-LM's clipped schedule (a
    training objective of lower variance, no longer the ELBO)."""
    b, n = ids.shape
    blocks = block_index(n, block_size, shift).clamp(min=0)  # the anchor: block 0's t, fixed
    count = int(blocks.max()) + 1
    if t_range is None:
        t = noise.sample_t(b * count, generator=generator, eps=eps)
    else:
        lo, hi = t_range
        if not 0 < lo < hi <= 1:
            raise ValueError(f"t_range must be (lo, hi) with 0 < lo < hi <= 1, got {t_range!r}")
        t = lo + (hi - lo) * noise.sample_t(b * count, generator=generator, eps=0.0)
    t = t.reshape(b, count)[:, blocks]
    u = torch.rand(ids.shape, generator=generator, dtype=torch.float64)  # absorbing_mask's draw
    masked = (u < t) & ~fixed.cpu()
    return ids.cpu().masked_fill(masked, info.mask_id), masked, t


def block_diffusion_loss(model, ids, fixed, info: TokenInfo, generator, eps: float = 1e-3,
                         t_range: tuple[float, float] | None = None):
    """The block-diffusion ELBO in nats per free token (module docstring), in one pass.

    Noisy-half terms: $\\frac{1}{t_b}$ CE on the masked slots; clean-half terms (``shift``: each
    block's first token) their exact expectation, the CE itself."""
    block_size, shift = block_config(model)
    if info.mask_id is None:
        raise ValueError("block diffusion masks tokens: the tokenizer needs a [MASK] token")
    noisy, masked, t = mask_blocks(ids, fixed, info, block_size, shift, generator, eps, t_range)
    logits = two_stream_logits(model, noisy.to(ids.device), ids, info)  # (B, N, V)
    free = ~fixed.to(ids.device)
    ce = F.cross_entropy(logits.transpose(1, 2), ids, reduction="none")
    clean = from_clean_stream(ids.shape[1], block_size, shift, ids.device)[None] & free
    weight = torch.where(masked.to(ids.device), (1.0 / t).float().to(ids.device), 0.0)
    terms = torch.where(clean, ce, torch.where(masked.to(ids.device) & free, ce * weight, 0.0))
    return terms.sum() / free.sum().clamp(min=1)


@torch.no_grad()
def block_nll_bound(model, ids: torch.Tensor, info: TokenInfo, orders: int = 1,
                    generator: torch.Generator | None = None,
                    fixed: torch.Tensor | None = None) -> torch.Tensor:
    r"""(B,) nats per row: the any-order form of the ELBO, block by block.  Inside every block
    the tokens are revealed one at a time in a random order $\sigma$:
    $\sum_b \sum_k -\log p_\theta(x^{\sigma_k} \mid x^{\sigma_{<k}}, x^{<b})$ (its mean over
    orders is the ELBO; exact for $B = 1$).  All blocks advance together: $B$ forward passes
    per order, not $L$."""
    block_size, shift = block_config(model)
    fixed = noise.anchor_fixed(ids) if fixed is None else fixed.bool()
    b, n = ids.shape
    blocks = block_index(n, block_size, shift).clamp(min=0)
    total = torch.zeros(b, dtype=torch.float64)
    same = blocks[:, None] == blocks[None, :]  # (N, N)
    for _ in range(orders):
        key = torch.rand(b, n, generator=generator, dtype=torch.float64)
        before = (key[:, None, :] < key[:, :, None]) & same & ~fixed.cpu()[:, None, :]
        rank = before.sum(2).masked_fill(fixed.cpu(), -1)  # (B, N): the turn in its block
        for k in range(block_size):
            noisy = ids.cpu().masked_fill(rank >= k, info.mask_id).to(ids.device)
            logits = two_stream_logits(model, noisy, ids, info).double()
            ce = F.cross_entropy(logits.transpose(1, 2), ids, reduction="none").cpu()
            total += torch.where(rank == k, ce, 0.0).sum(1)
    return total / orders
