r"""Drawing tokens: temperature, top-k / top-p filtering and Gumbel-max, all in float64.

Every sampler of the library (the diffusion loop, the autoregressive baseline, SUNDAE's training
step, MaskGIT's noisy ranking) draws through this module, so a seed gives the same text on every
code path.  The Gumbel-max trick turns sampling into an argmax:

$$ \arg\max_v \big(\log p_v + g_v\big) \sim \mathrm{Categorical}(p), \qquad
   g_v = -\log(-\log u_v),\; u_v \sim U(0, 1). $$

The noise is float64: float32 uniforms round small $u$ to 0, which cuts the Gumbel tail and
lowers the entropy of the samples.  Nucleus (top-p) filtering keeps the smallest set of tokens
whose mass reaches $p$ (Holtzman et al. 2020); the token that crosses $p$ is kept.
"""

from __future__ import annotations

import torch


def gumbel_noise(shape, generator: torch.Generator, device=None) -> torch.Tensor:
    """Standard Gumbel noise $-\\log(-\\log u)$ of ``shape``, float64, from ``generator``."""
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
    return -torch.log(-torch.log(u.clamp(1e-300, 1.0)))


def sample_categorical(logp: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw per row of log-probabilities ``logp`` (..., V) by Gumbel-max, in float64."""
    return (logp.double() + gumbel_noise(logp.shape, generator, logp.device)).argmax(-1)


def nucleus_mask(sorted_logp: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask (True = drop) for logits sorted descending: keep the smallest prefix whose mass
    reaches ``top_p`` (the token that crosses it is kept)."""
    probs = sorted_logp.softmax(-1)
    return probs.cumsum(-1) - probs >= top_p


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """(N, V) float64 log-probabilities after temperature, top-k and nucleus (top-p) filtering."""
    logits = logits.double() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        drop = torch.zeros_like(order, dtype=torch.bool).scatter(
            -1, order, nucleus_mask(sorted_logits, top_p))
        logits = logits.masked_fill(drop, float("-inf"))
    return logits.log_softmax(-1)


def sample_filtered(logits: torch.Tensor, generator: torch.Generator, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Draw one token per row of (N, V) ``logits`` after temperature / top-k / top-p.

    Same distribution as ``sample_categorical(filter_logits(...))``; with ``top_k`` it works on
    the k candidates only (a (N, k) problem instead of (N, V): 50 of RoBERTa's 50,265 tokens).
    """
    if top_k is None or top_k >= logits.shape[-1]:
        return sample_categorical(filter_logits(logits, temperature, None, top_p), generator)
    values, index = torch.topk(logits, top_k, dim=-1)  # sorted, (N, k); float64 from here on
    values = values.double() / temperature
    if top_p is not None and top_p < 1.0:
        values = values.masked_fill(nucleus_mask(values, top_p), float("-inf"))
    choice = sample_categorical(values.log_softmax(-1), generator)
    return index.gather(-1, choice[:, None])[:, 0]


def probability_of(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """p(token) under the untempered softmax of (N, V) ``logits``, float64: the confidence."""
    return (logits.gather(-1, tokens[:, None])[:, 0] - logits.logsumexp(-1)).exp().double()
