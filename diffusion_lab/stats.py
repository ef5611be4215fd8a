r"""The book's statistical tests, at the level of the independent unit (a sample, a sentence, a
puzzle, a question): never over seeds of the same items.

* `bootstrap` — percentile bootstrap (Efron 1979) over the rows of one set of per-unit values:
  $\hat\theta^{*b} = \theta(x_{i_1}, \dots, x_{i_n})$ with $i_k$ drawn uniformly with
  replacement; the interval is the $(1-\ell)/2$ and $(1+\ell)/2$ quantiles of the $\hat\theta^{*b}$.
  For a *paired* comparison (two models scored on the same held-out blocks) pass the per-unit
  differences.
* `bootstrap_difference` — two *independent* sets (two samplers' own samples): each set is
  resampled on its own, $\hat\theta(a^{*b}) - \hat\theta(b^{*b})$.  A statistic of the pooled set
  (the unigram entropy of all samples together) is resampled the same way: pass per-unit rows,
  e.g. `metrics.unigram_counts`, and a ``stat`` that pools them (`pooled_entropy`).
* `sign_test` — exact sign test on paired outcomes (McNemar's on binary ones): with $w$ units
  where ``a`` is higher and $l$ where ``b`` is, $p = \sum_{k \ge w} \binom{w+l}{k} 2^{-(w+l)}$
  (one-sided; two-sided doubles the smaller tail).
* `paired_t_test` — Student's paired t-test on per-unit differences $d_i$:
  $t = \bar d / (s_d / \sqrt n)$ with $n - 1$ degrees of freedom, its p-value from the *exact*
  t distribution (the closed form for an integer number of degrees of freedom, Abramowitz and
  Stegun 26.7.3-4), not the normal approximation, which is too small for a few dozen units
  (t = 2.01 on 31 df: p = 0.053 exact, 0.044 normal).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def _rows(values, name: str) -> torch.Tensor:
    values = torch.as_tensor(values, dtype=torch.float64)
    if values.ndim == 0 or len(values) == 0:
        raise ValueError(f"{name} is empty: nothing to bootstrap (one value per independent unit)")
    return values


def _check(n_boot: int, level: float) -> None:
    if not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot must be an int >= 100, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def _interval(stats: torch.Tensor, level: float) -> tuple[float, float]:
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    lo, hi = torch.quantile(stats, q).tolist()
    return lo, hi


def bootstrap(values, stat: Callable = torch.mean, n_boot: int = 2000, seed: int = 0,
              level: float = 0.95) -> tuple[float, float, float]:
    """(statistic, low, high): percentile bootstrap over the rows (units) of ``values``.
    For a paired comparison pass the per-unit differences."""
    values = _rows(values, "values")
    _check(n_boot, level)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(values), (n_boot, len(values)), generator=g)
    stats = torch.stack([torch.as_tensor(stat(values[row]), dtype=torch.float64) for row in idx])
    return (float(stat(values)), *_interval(stats, level))


def bootstrap_difference(a, b, stat: Callable = torch.mean, n_boot: int = 2000, seed: int = 0,
                         level: float = 0.95) -> tuple[float, float, float]:
    """(stat(a) - stat(b), low, high) for two independent sets of units, each resampled on its
    own (rows of ``a`` and ``b``; they may differ in number)."""
    a, b = _rows(a, "a"), _rows(b, "b")
    _check(n_boot, level)
    g = torch.Generator().manual_seed(seed)
    ia = torch.randint(0, len(a), (n_boot, len(a)), generator=g)
    ib = torch.randint(0, len(b), (n_boot, len(b)), generator=g)
    stats = torch.stack([torch.as_tensor(stat(a[i]) - stat(b[j]), dtype=torch.float64)
                         for i, j in zip(ia, ib, strict=True)])
    return (float(stat(a) - stat(b)), *_interval(stats, level))


def pooled_entropy(counts: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of the unit counts summed over the rows: $-\\sum_v p_v \\log_2 p_v$ with
    $p_v = \\sum_i c_{iv} / \\sum_{i,v} c_{iv}$ (a ``stat`` for `bootstrap_difference`)."""
    p = counts.sum(0)
    p = p[p > 0] / p.sum()
    return -(p * p.log2()).sum()


def sign_test(a, b, *, two_sided: bool = False) -> tuple[int, int, float]:
    """(wins, losses, p): exact sign test on paired outcomes, one per unit (bools: McNemar's test
    on the discordant pairs; or per-unit rates, e.g. a puzzle's solve rate over seeds).

    A *win* is a unit where ``a`` is higher, a *loss* one where ``b`` is; ties carry no
    information.  Were the two equally good, wins ~ Binomial(wins + losses, 1/2): ``p`` is
    P(X >= wins) (one-sided: ``a`` beats ``b``) or, with ``two_sided``, twice the smaller tail,
    capped at 1."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    if a.shape != b.shape:
        raise ValueError(f"a and b must pair unit for unit: shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    wins, losses = int((a > b).sum()), int((a < b).sum())
    n = wins + losses
    if two_sided:
        tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
        return wins, losses, min(1.0, 2 * tail)
    return wins, losses, sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n


def student_t_sf(t: float, df: int) -> float:
    r"""P(T > t) for Student's t with an integer ``df`` >= 1, exactly (no table, no scipy).

    With $\theta = \arctan(t / \sqrt{\nu})$, $A(t \mid \nu) = P(|T| < |t|)$ is a finite
    sum (Abramowitz and Stegun 26.7.3-4): for odd $\nu$,
    $\tfrac{2}{\pi}\bigl(\theta + \sin\theta\,\sum_{k=0}^{(\nu-3)/2} a_k\cos^{2k+1}\theta\bigr)$
    with $a_0 = 1$, $a_k = a_{k-1}\,2k/(2k+1)$; for even $\nu$,
    $\sin\theta \sum_{k=0}^{\nu/2-1} b_k \cos^{2k}\theta$ with $b_0 = 1$,
    $b_k = b_{k-1}(2k-1)/(2k)$."""
    if not isinstance(df, int) or isinstance(df, bool) or df < 1:
        raise ValueError(f"df must be an int >= 1, got {df!r}")
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    if df % 2:
        term, total = c, 0.0
        for k in range((df - 1) // 2):  # k = 0 .. (df-3)/2
            if k:
                term *= c * c * (2 * k) / (2 * k + 1)
            total += term
        inside = 2 / math.pi * (theta + s * total) if df > 1 else 2 * theta / math.pi
    else:
        term, total = 1.0, 0.0
        for k in range(df // 2):
            if k:
                term *= c * c * (2 * k - 1) / (2 * k)
            total += term
        inside = s * total
    upper = (1 - inside) / 2  # P(T > |t|)
    return upper if t >= 0 else 1 - upper


def student_t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile of Student's t with integer ``df`` (bisection on `student_t_sf`): e.g.
    ``student_t_quantile(0.975, n - 1)`` is the half-width multiplier of a 95% t interval."""
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    lo, hi = -1e3, 1e3
    for _ in range(200):  # P(T <= mid) = 1 - sf(mid) rises with mid
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 1 - student_t_sf(mid, df) < q else (lo, mid)
    return (lo + hi) / 2


def paired_t_test(a, b, *, two_sided: bool = True) -> tuple[float, float, float]:
    """(mean difference, t, p): Student's paired t-test of ``a - b`` over units, p exact.

    One value per independent unit in each (a prompt, a sentence); ``two_sided=False`` tests
    mean(a - b) > 0."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D and pair unit for unit: shapes {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    n = len(a)
    if n < 2:
        raise ValueError(f"a paired t-test needs at least 2 units, got {n}")
    d = a - b
    mean, se = float(d.mean()), float(d.std() / math.sqrt(n))
    if se == 0:
        raise ValueError("every difference is the same: the t statistic is undefined")
    t = mean / se
    tail = student_t_sf(t, n - 1)
    return mean, t, min(1.0, 2 * min(tail, 1 - tail)) if two_sided else tail
