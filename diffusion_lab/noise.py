r"""Forward processes: how clean text is corrupted, from BERT's 15% to absorbing-state diffusion.

Notation: $x$ is a clean sequence, $m$ the mask token, $t \in [0, 1]$ the noise level and
$\alpha_t$ the probability that a token survives to time $t$.

**Absorbing (masking) diffusion** — D3PM's absorbing state (Austin et al. 2021), MDLM's forward
process (Sahoo et al. 2024).  Each token is masked independently:

$$ q(z_t^i \mid x^i) = \alpha_t\,\delta_{x^i} + (1 - \alpha_t)\,\delta_m . $$

The masked fraction $1 - \alpha_t$ follows a *schedule*:

* ``linear``: $1 - \alpha_t = t$ (MDLM's default; its ELBO weight is $1/t$);
* ``cosine``: $1 - \alpha_t = \sin(\pi t / 2)$ (MaskGIT's $\gamma(r) = \cos(\pi r / 2)$ at
  progress $r = 1 - t$: few tokens revealed first, many at the end; MD4's cosine.  MDLM's code
  calls the other one, $1 - \cos(\pi t / 2)$, "cosine"; its ELBO weight is
  $(\pi/2)\cot(\pi t/2) \approx 1/t$ near 0, like the linear one's);
* ``discrete10``: the seed article's ten levels $\{0.1, 0.2, \dots, 1.0\}$.

**BERT** (Devlin et al. 2019) is the single slice $t = 0.15$ of this process, plus a twist: of the
chosen positions 80% become $m$, 10% a random token and 10% stay as they are.

**Uniform noise** (D3PM's uniform transition, SUNDAE): a corrupted token becomes a random
vocabulary token instead of $m$, so the model can never tell which tokens are wrong.

Every function takes ``fixed`` (B, L) bool — the [CLS] anchor, a prompt, infill context — and
never corrupts those positions.  Randomness goes through an explicit ``torch.Generator``.
"""

from __future__ import annotations

import math

import torch

SCHEDULES = ("linear", "cosine", "discrete10")
TRANSITIONS = ("uniform", "absorbing", "bert")
DISCRETE_LEVELS = torch.linspace(0.1, 1.0, 10)


def _check_schedule(schedule: str) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {schedule!r}")


def mask_rate(t: torch.Tensor | float, schedule: str = "linear") -> torch.Tensor:
    """$1 - \\alpha_t$: the probability that a token is masked at noise level ``t``."""
    _check_schedule(schedule)
    t = torch.as_tensor(t, dtype=torch.float64)
    if schedule == "linear":
        return t.clone()
    if schedule == "cosine":
        return torch.sin(math.pi * t / 2)
    return torch.ceil(t * 10 - 1e-9).clamp(0, 10) / 10  # discrete10: round up to a level


def alpha(t: torch.Tensor | float, schedule: str = "linear") -> torch.Tensor:
    """$\\alpha_t$: the probability that a token is still clean at noise level ``t``."""
    return 1.0 - mask_rate(t, schedule)


def elbo_weight(t: torch.Tensor, schedule: str = "linear") -> torch.Tensor:
    """MDLM's weight $-\\alpha'_t / (1 - \\alpha_t)$: $1/t$ for the linear schedule,
    $(\\pi/2)\\cot(\\pi t/2)$ for the cosine one."""
    _check_schedule(schedule)
    if schedule == "linear":
        return 1.0 / t
    if schedule == "cosine":
        return (math.pi / 2) * torch.cos(math.pi * t / 2) / torch.sin(math.pi * t / 2)
    raise ValueError("the discrete10 schedule has no continuous-time ELBO weight; use linear")


def sample_t(
    batch: int,
    *,
    generator: torch.Generator | None = None,
    eps: float = 1e-3,
    antithetic: bool = True,
    schedule: str = "linear",
) -> torch.Tensor:
    """One noise level per sequence, (B,) float64 in [eps, 1].

    ``antithetic`` spreads the batch evenly over [0, 1) from one random offset (MDLM's
    low-discrepancy sampler): same expectation, lower variance.  ``discrete10`` draws one of the
    ten levels uniformly.
    """
    _check_schedule(schedule)
    if schedule == "discrete10":
        idx = torch.randint(0, 10, (batch,), generator=generator)
        return DISCRETE_LEVELS.double()[idx]
    u = torch.rand(batch, generator=generator, dtype=torch.float64)
    if antithetic:
        u = (u[:1] + torch.arange(batch, dtype=torch.float64) / batch) % 1.0
    return eps + (1 - eps) * u


def _as_rows(rate: torch.Tensor | float, batch: int) -> torch.Tensor:
    rate = torch.as_tensor(rate, dtype=torch.float64).reshape(-1)
    if rate.numel() == 1:
        rate = rate.expand(batch)
    if rate.numel() != batch or (rate < 0).any() or (rate > 1).any():
        raise ValueError(f"rate must be one probability in [0, 1] or one per row ({batch}), "
                         f"got {rate.tolist()}")
    return rate[:, None]


def _free(ids: torch.Tensor, fixed: torch.Tensor | None) -> torch.Tensor:
    if fixed is None:
        return torch.ones_like(ids, dtype=torch.bool)
    if fixed.shape != ids.shape:
        raise ValueError(f"fixed must have the shape of ids {tuple(ids.shape)}, got "
                         f"{tuple(fixed.shape)}")
    return ~fixed.bool()


def anchor_fixed(ids: torch.Tensor) -> torch.Tensor:
    """The default ``fixed``: only column 0 (the [CLS] anchor)."""
    fixed = torch.zeros_like(ids, dtype=torch.bool)
    fixed[:, 0] = True
    return fixed


def absorbing_mask(
    ids: torch.Tensor,
    rate: torch.Tensor | float,
    *,
    mask_id: int,
    fixed: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample $z_t \\sim q(z_t \\mid x)$: mask each free token with probability ``rate`` (per row).

    Returns ``(noisy, masked)``, both (B, L); ``masked`` is True where the token was replaced.
    """
    u = torch.rand(ids.shape, generator=generator, dtype=torch.float64)
    masked = (u < _as_rows(rate, ids.shape[0])) & _free(ids, fixed)
    return ids.masked_fill(masked, mask_id), masked


def bert_mask(
    ids: torch.Tensor,
    *,
    mask_id: int,
    content_ids: torch.Tensor,
    fixed: torch.Tensor | None = None,
    rate: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption: choose free positions with probability ``rate``; of those 80% -> [MASK],
    10% -> a random content token, 10% unchanged.  Returns ``(noisy, chosen)``; the loss is
    computed on every chosen position (Devlin et al. 2019, Sec. 3.1)."""
    free = _free(ids, fixed)
    chosen = (torch.rand(ids.shape, generator=generator, dtype=torch.float64) < rate) & free
    kind = torch.rand(ids.shape, generator=generator, dtype=torch.float64)
    to_mask = chosen & (kind < 0.8)
    to_random = chosen & (kind >= 0.8) & (kind < 0.9)
    random_tokens = content_ids[torch.randint(0, len(content_ids), ids.shape, generator=generator)]
    noisy = torch.where(to_random, random_tokens, ids).masked_fill(to_mask, mask_id)
    return noisy, chosen


def uniform_noise(
    ids: torch.Tensor,
    rate: torch.Tensor | float,
    *,
    content_ids: torch.Tensor,
    fixed: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each free token, with probability ``rate`` (per row), by a uniformly random content
    token (it may draw the same token back).  Returns ``(noisy, replaced)``."""
    u = torch.rand(ids.shape, generator=generator, dtype=torch.float64)
    replaced = (u < _as_rows(rate, ids.shape[0])) & _free(ids, fixed)
    random_tokens = content_ids[torch.randint(0, len(content_ids), ids.shape, generator=generator)]
    return torch.where(replaced, random_tokens, ids), replaced


def content_token_ids(tok) -> torch.Tensor:
    """Every id that is not a special token: what random replacement may draw."""
    special = set(tok.all_special_ids)
    return torch.tensor([i for i in range(len(tok)) if i not in special], dtype=torch.long)


def transition_matrix(kind: str, rate: float, num_tokens: int) -> torch.Tensor:
    r"""D3PM's one-step transition matrix $Q[i, j] = q(z = j \mid x = i)$ (Austin et al. 2021).

    States ``0 .. num_tokens - 1`` are content tokens and the last one is $m$ ([MASK]);
    (num_tokens + 1, num_tokens + 1) float64, every row sums to 1.

    * ``uniform``:   $Q = (1 - \beta) I + \beta\, \mathbf{1}\mathbf{1}^\top / K$ over the $K$
      content tokens (a corrupted token may draw itself back; $m$ is never reached);
    * ``absorbing``: $Q = (1 - \beta) I + \beta\, \mathbf{1} e_m^\top$, and $m$ stays $m$;
    * ``bert``:      the hybrid of ``bert_mask``: of the $\beta$ chosen, 80% go to $m$, 10% to a
      uniform content token, 10% stay: $(1 - \beta + 0.1\beta) I + 0.1\beta\,
      \mathbf{1}\mathbf{1}^\top / K + 0.8\beta\, \mathbf{1} e_m^\top$.
    """
    if kind not in TRANSITIONS:
        raise ValueError(f"kind must be one of {list(TRANSITIONS)}, got {kind!r}")
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate!r}")
    if int(num_tokens) < 1:
        raise ValueError(f"num_tokens must be >= 1, got {num_tokens!r}")
    k, beta = int(num_tokens), float(rate)
    to_mask, to_uniform = {"uniform": (0.0, beta), "absorbing": (beta, 0.0),
                           "bert": (0.8 * beta, 0.1 * beta)}[kind]
    q = torch.zeros(k + 1, k + 1, dtype=torch.float64)
    q[:k, :k] = torch.eye(k, dtype=torch.float64) * (1 - to_mask - to_uniform) + to_uniform / k
    q[:k, k] = to_mask
    q[k, k] = 1.0
    return q
