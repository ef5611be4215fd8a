r"""Edit Flows: text written by insertions, deletions and substitutions (Havasi et al. 2025).

Every other model of the book writes into a fixed canvas of $L$ slots: a word can be revealed
or remasked in place, but never put *between* two words, and a sentence shorter than $L$ is
padded with ``[EOS]``.  An Edit Flow is a continuous-time Markov chain on sequences of any
length whose jumps are single edits — insert $a$ after position $i$, delete position $i$,
substitute $a$ at $i$ — with rates given by a network (`edit_model`):

$$ u_t(\mathrm{ins}(x,i,a)\mid x) = \lambda^{\mathrm{ins}}_i Q^{\mathrm{ins}}_i(a),\quad
   u_t(\mathrm{del}(x,i)\mid x) = \lambda^{\mathrm{del}}_i,\quad
   u_t(\mathrm{sub}(x,i,a)\mid x) = \lambda^{\mathrm{sub}}_i Q^{\mathrm{sub}}_i(a). $$

**Training through an aligned auxiliary process** (the paper's section 3).  Draw a start
$x_0 \sim p_0$ and a sentence $x_1$, and *align* them: two rows $z_0, z_1$ of one length $N$
over the vocabulary plus a blank $\varepsilon$ (`BLANK`), no column blank in both, with
$x_0, x_1$ the rows without blanks.  A column $(\varepsilon, a)$ is an insertion, $(b,
\varepsilon)$ a deletion, $(b, a)$ with $b \ne a$ a substitution.  The mixture path switches
each column independently: $z_t^i = z_1^i$ with probability $\kappa_t$, else $z_0^i$, and
$x_t = \mathrm{strip}(z_t)$; every column not yet switched switches at rate
$\dot\kappa_t / (1 - \kappa_t)$.  The loss (their eq. for $\mathcal L$, a Bregman divergence)

$$ \mathcal L(\theta) = \mathbb E_{t, (z_0, z_1), z_t}\Big[\sum_{x' \ne x_t}
   u^\theta_t(x' \mid x_t) \;-\; \sum_{i:\, z_t^i \ne z_1^i} \frac{\dot\kappa_t}{1 - \kappa_t}
   \log u^\theta_t\big(\mathrm{edit}(z_t, i, z_1^i) \mid x_t\big)\Big] $$

is minimised by the marginal rates $u_t(x' \mid x_t) = \mathbb E[\text{conditional rate}
\mid x_t]$, which carry $p_0$ to the data at $t = 1$.  The first sum is every rate the model
offers at $x_t$ (all gaps, all tokens); the second rewards the edits still to make.  Here
$\kappa_t = t$, so $\dot\kappa_t / (1 - \kappa_t) = 1 / (1 - t)$ (`rate_scale`; MDLM's $1/t$
read backwards), and the loss is divided by the number of words of $x_1$.

**The coupling (this book's choice; any coupling is allowed).**  $p_0$: $k \sim U\{0..K\}$
words drawn uniformly (`Coupling.junk`).  Each junk word substitutes a random word of $x_1$
with probability ``p_substitute``, else it gets a column of its own at a random place (to be
deleted); every other word of $x_1$ is inserted.  So generation starts from almost nothing and
mostly inserts — FlexMDM's picture (Kim et al. 2025) without the masks — while every kind of
edit is trained, so the model learns to delete and substitute words that do not belong.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import noise
from .settings import check_int

BLANK = -1  # epsilon: the aligned rows' empty cell
PAD = -2  # after a row's last column


@dataclass(frozen=True)
class Coupling:
    """How $x_0$ is drawn and aligned with $x_1$: ``junk`` = K, the most random words in $x_0$;
    ``p_substitute``: the chance that a junk word is aligned with a word of $x_1$ (substituted)
    rather than given its own column (deleted)."""

    junk: int = 2
    p_substitute: float = 0.5

    def __post_init__(self):
        check_int(self.junk, "junk", 0)
        if not 0.0 <= self.p_substitute <= 1.0:
            raise ValueError(f"p_substitute must be in [0, 1], got {self.p_substitute!r}")

    @classmethod
    def of(cls, model) -> Coupling:
        """The coupling ``model`` was built for (its config's ``junk`` and ``p_substitute``)."""
        return cls(model.config.junk, model.config.p_substitute)

    def start(self, n: int, content_ids: torch.Tensor, generator: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``n`` draws of $x_0 \sim p_0$: (words (n, K) `PAD`-filled, lengths (n,))."""
        k = torch.randint(0, self.junk + 1, (n,), generator=generator)
        words = content_ids[torch.randint(0, len(content_ids), (n, max(self.junk, 1)),
                                          generator=generator)]
        return words.masked_fill(torch.arange(words.shape[1])[None] >= k[:, None], PAD), k


def kappa(t: torch.Tensor) -> torch.Tensor:
    """$\\kappa_t = t$: the chance that a column has switched to $z_1$ by time $t$."""
    return t


def rate_scale(t: torch.Tensor) -> torch.Tensor:
    """$\\dot\\kappa_t / (1 - \\kappa_t) = 1 / (1 - t)$: the switching rate of a column."""
    return 1.0 / (1.0 - t)


def rows_of(ids: torch.Tensor, drop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(words (B, n_max) left-aligned and `PAD`-filled, lengths (B,)) of anchored fixed-canvas
    rows ``ids`` (B, 1 + L) without the anchor and the tokens in ``drop`` ([EOS], [PAD])."""
    body = ids[:, 1:]
    keep = ~torch.isin(body, drop.to(body.device))
    return compact(body, keep, PAD)


def compact(values: torch.Tensor, keep: torch.Tensor, fill: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's kept values moved to the front, in order, ``fill`` after: ((B, W), (B,))."""
    lengths = keep.sum(1)
    width = max(int(lengths.max()) if len(lengths) else 0, 1)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :width]
    out = values.gather(1, order)
    out = out.masked_fill(torch.arange(width, device=values.device)[None] >= lengths[:, None],
                          fill)
    return out, lengths


def align(x1: torch.Tensor, lengths: torch.Tensor, content_ids: torch.Tensor,
          coupling: Coupling, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(z0, z1), each (B, N): a draw of $x_0 \\sim p_0$ aligned with the words ``x1``
    (B, n_max) by `Coupling`; `BLANK` for $\\varepsilon$, `PAD` after a row's columns."""
    b, n_max = x1.shape
    ar = torch.arange(n_max)[None]
    real = ar < lengths[:, None]  # (B, n)
    junk, _ = coupling.start(b, content_ids, generator)  # (B, K) x0's words, PAD after
    k_max, is_junk = junk.shape[1], junk != PAD
    sub = is_junk & (torch.rand(b, k_max, generator=generator, dtype=torch.float64)
                     < coupling.p_substitute)
    # the s-th substituting junk word takes the s-th word of a random permutation of x1
    perm = torch.rand(b, n_max, generator=generator, dtype=torch.float64).masked_fill(~real, 2.0)
    target = perm.argsort(1)  # (B, n): random order of the real words first
    slot = sub.long().cumsum(1) - 1  # (B, K)
    sub = sub & (slot < lengths[:, None])  # no word left to substitute: the junk is deleted
    z0_words = torch.full_like(x1, BLANK).masked_fill(~real, PAD)
    rows = torch.arange(b)[:, None].expand(b, k_max)
    z0_words[rows[sub], target.gather(1, slot.clamp(min=0))[sub]] = junk[sub]
    # deleted junk words: a column in a random gap g in 0..n (before word g + 1)
    dele = is_junk & ~sub
    gap = (torch.rand(b, k_max, generator=generator, dtype=torch.float64)
           * (lengths[:, None] + 1)).floor()
    key_junk = (gap + torch.rand(b, k_max, generator=generator, dtype=torch.float64) * 0.999
                ).masked_fill(~dele, float("inf"))
    key_words = (ar + 1.0).double().expand(b, n_max).masked_fill(~real, float("inf"))
    keys = torch.cat([key_words, key_junk], 1)  # (B, n + K): the columns' order
    z0 = torch.cat([z0_words, torch.where(dele, junk, PAD)], 1)
    z1 = torch.cat([x1, torch.full_like(junk, BLANK).masked_fill(~dele, PAD)], 1)
    order = keys.argsort(dim=1, stable=True)
    width = int((real.sum(1) + dele.sum(1)).max())
    return z0.gather(1, order)[:, :width], z1.gather(1, order)[:, :width]


def mix(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor, generator: torch.Generator
        ) -> torch.Tensor:
    """$z_t$: each column $z_1^i$ with probability $\\kappa_t$, else $z_0^i$ (``t`` is (B,))."""
    u = torch.rand(z0.shape, generator=generator, dtype=torch.float64)
    return torch.where(u < kappa(t)[:, None], z1, z0)


def strip(zt: torch.Tensor, anchor: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """($x_t$ (B, 1 + W) anchor first and ``pad_id`` after each row, lengths (B,) with the
    anchor): $z_t$ without its blanks."""
    words, n = compact(zt, zt >= 0, pad_id)
    first = torch.full((len(zt), 1), anchor, dtype=zt.dtype)
    return torch.cat([first, words], 1), n + 1


@dataclass(frozen=True)
class Edits:
    """The edits still to make at $z_t$, one entry per column with $z_t^i \\ne z_1^i$:
    ``row``, ``kind`` (0 ins, 1 del, 2 sub: `edit_model.OPS`), ``pos`` (the position in $x_t$
    whose head carries it: the token before an insertion's gap, the token itself otherwise) and
    ``token`` (what is inserted or substituted; -1 for a deletion)."""

    row: torch.Tensor
    kind: torch.Tensor
    pos: torch.Tensor
    token: torch.Tensor


def remaining_edits(zt: torch.Tensor, z1: torch.Tensor) -> Edits:
    """Every column where $z_t \\ne z_1$, as an edit of $x_t = \\mathrm{strip}(z_t)$ (positions
    count the anchor as 0)."""
    present = zt >= 0
    before = present.long().cumsum(1) - present.long()  # tokens of x_t left of each column
    todo = (zt != z1) & (z1 != PAD)
    row, col = todo.nonzero(as_tuple=True)
    a, b = zt[row, col], z1[row, col]
    kind = torch.where(a == BLANK, 0, torch.where(b == BLANK, 1, 2))
    pos = before[row, col] + (kind > 0).long()  # insertion: after the token before the gap
    return Edits(row, kind, pos, torch.where(kind == 1, -1, b))


def apply_edits(x: list[int], edits: list[tuple[int, int, int]]) -> list[int]:
    """A plain-Python reference: ``x`` (anchor first) after ``edits`` [(kind, pos, token)],
    all addressed to positions of ``x`` (insertions in one gap keep their listed order)."""
    out = []
    for i, token in enumerate(x):
        kinds = {k: tok for k, p, tok in edits if p == i and k in (1, 2)}
        if 1 not in kinds:
            out.append(kinds.get(2, token))
        out += [tok for k, p, tok in edits if p == i and k == 0]
    return out


WEIGHTINGS = ("paper", "flat")


def edit_loss_terms(out, x_lengths: torch.Tensor, edits: Edits, t: torch.Tensor,
                    weighting: str = "paper") -> torch.Tensor:
    r"""(B,) the loss of each row at one $z_t$ (see the module): every offered rate minus the
    log-rates of the remaining ``edits``, given the model output ``out`` (`edit_model`) on
    $x_t$ and the rows' lengths (anchor included).  ``weighting="flat"`` divides row $t$ by
    $\dot\kappa_t / (1 - \kappa_t)$: the same minimiser at every $t$, less variance."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {list(WEIGHTINGS)}, got {weighting!r}")
    scale = rate_scale(t).to(out.rates.device).float()  # (B,)
    width = out.rates.shape[1]
    valid = torch.arange(width, device=out.rates.device)[None] < x_lengths[:, None].to(
        out.rates.device)
    offered = out.rates[..., 0] * valid  # every gap, the anchor's included
    offered = offered + (out.rates[..., 1] + out.rates[..., 2]) * valid
    offered[:, 0] -= out.rates[:, 0, 1] + out.rates[:, 0, 2]  # the anchor is never edited
    total = scale * offered.sum(1)
    r, k, p = (v.to(out.rates.device) for v in (edits.row, edits.kind, edits.pos))
    log_rate = (scale[r] * out.rates[r, p, k]).clamp_min(1e-12).log()
    token = edits.token.to(out.rates.device).clamp(min=0)
    log_q = torch.zeros_like(log_rate)
    for kind, logits in ((0, out.ins_logits), (2, out.sub_logits)):
        pick = k == kind
        rows = logits[r[pick], p[pick]].log_softmax(-1)
        log_q[pick] = rows.gather(1, token[pick][:, None])[:, 0]
    gain = torch.zeros_like(total).index_add(0, r, scale[r] * (log_rate + log_q))
    return (total - gain) / (scale if weighting == "flat" else 1.0)


def allowed_ids(model, info) -> torch.Tensor:
    """The words an edit may write: ``info``'s content ids less the model's banned ones."""
    banned = torch.tensor(model.config.banned_ids, dtype=torch.long)
    return info.content_ids[~torch.isin(info.content_ids, banned)]


def edit_flow_loss(model, ids: torch.Tensor, fixed: torch.Tensor, info, generator,
                   eps: float = 1e-3, weighting: str = "paper") -> torch.Tensor:
    """The Edit Flows loss of the module, per word of $x_1$, for anchored fixed-canvas rows
    ``ids`` (B, 1 + L) (their [EOS]/[PAD] padding is stripped: an edit sequence has none),
    with the model's `Coupling`.  Draws on the CPU from ``generator``; ``fixed`` (the anchor)
    is accepted for the loop's signature."""
    coupling, cfg = Coupling.of(model), model.config
    drop = torch.tensor([i for i in (cfg.end_token_id, cfg.pad_token_id) if i is not None])
    x1, n1 = rows_of(ids.cpu(), drop)
    z0, z1 = align(x1, n1, allowed_ids(model, info), coupling, generator)
    t = 1.0 - noise.sample_t(len(ids), generator=generator, eps=eps)  # antithetic, in [0, 1-eps]
    zt = mix(z0, z1, t, generator)
    x, lengths = strip(zt, int(ids[0, 0]), cfg.pad_token_id)
    attention = (torch.arange(x.shape[1])[None] < lengths[:, None]).long()
    out = model(input_ids=x.to(ids.device), attention_mask=attention.to(ids.device),
                t=t.float().to(ids.device))
    terms = edit_loss_terms(out, lengths, remaining_edits(zt, z1), t, weighting)
    return terms.sum() / n1.sum().clamp(min=1)
