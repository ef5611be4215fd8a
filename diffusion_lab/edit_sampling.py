r"""Sampling an Edit Flow: tau-leaping on the chain of insertions, deletions and substitutions.

From time $t$ to $t + h$ every edit the model offers at $x_t$ (`edit_model`) happens
independently with the chance its rate gives it, at most once per place (the first-order Euler
step Havasi et al. 2025 sample with):

$$ P(\mathrm{ins}_i) = \min(1, h\,\lambda^{\mathrm{ins}}_i) \text{ of a word from }
   Q^{\mathrm{ins}}_i, \qquad
   P(\mathrm{del}_i) = h\,\lambda^{\mathrm{del}}_i, \quad
   P(\mathrm{sub}_i) = h\,\lambda^{\mathrm{sub}}_i \text{ to a word from } Q^{\mathrm{sub}}_i, $$

with $\lambda = \hat\lambda / (1 - t)$ (`edit_flows.rate_scale`; a token's two chances are
scaled down together if they pass 1), and all of a step's edits are applied at once: words
after an insertion shift right, words after a deletion shift left.  At most one word per gap
per step (``insertions="one"``): a Poisson number of words drawn independently from one
$Q^{\mathrm{ins}}_i$ (``insertions="poisson"``, exact tau-leaping) writes two copies of the
likeliest word side by side — on the book's grammar it halves the share of valid sentences
(`bench/bench_edit_flows.py`).  On a uniform grid of $K$
steps the last one has $h / (1 - t) = 1$: every edit the model still expects is made, as the
masked sampler's last step reveals every slot left.

One loop, as `sampling.generate`: `start` (the rows at $t_0$), `edit_step` (one leap; returns
the step's `edit_trajectory.EditFrame`), `finish` (the texts).  A prompt says where to start:

* ``""`` — a draw of the start distribution $p_0$ the model was trained from (a few random
  words: `edit_flows.Coupling`), at $t_0 = 0$;
* words — revise them from ``t_start`` on: every word may be deleted or substituted, every gap
  may receive words;
* words with ``[MASK]`` marks — infill: the words are fixed, and only the marked gaps receive
  words, *as many as the model wants* (a mark is a place, not one slot).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .categorical import sample_categorical
from .denoiser import TokenInfo
from .edit_flows import PAD, Coupling, allowed_ids, compact, rate_scale
from .edit_model import is_edit_model
from .edit_trajectory import (
    DELETED,
    FIXED,
    INSERTED,
    KEPT,
    NONE,
    SUBSTITUTED,
    EditFrame,
    EditTrajectory,
)
from .models import max_positions
from .runtime import seed_or_random
from .settings import check_int
from .tokenization import anchor_id


@dataclass
class EditRun:
    """The rows between two steps: tokens (anchor first), lengths, and per token whether edits
    may touch it (``frozen``: no deletion or substitution) and whether its gap is ``open``."""

    model: torch.nn.Module
    ids: torch.Tensor  # (B, W)
    lengths: torch.Tensor  # (B,) anchor included
    frozen: torch.Tensor  # (B, W)
    open: torch.Tensor  # (B, W) insertions may follow this token
    max_length: int  # words (anchor not counted)
    temperature: float
    insertions: str  # "one" per gap per step, or a "poisson" number
    gen: torch.Generator
    pad_id: int
    passes: int = 0


INSERTIONS = ("one", "poisson")


def _check(model, steps, t_start, max_length, temperature, insertions) -> int:
    if insertions not in INSERTIONS:
        raise ValueError(f"insertions must be one of {list(INSERTIONS)}, got {insertions!r}")
    if not is_edit_model(model):
        raise TypeError(f"model must be an edit model (dl.edit_model.tiny_edit), got "
                        f"{type(model).__name__}")
    check_int(steps, "steps", 1, note=" (the edit budget: one forward pass per step)")
    if not isinstance(t_start, (int, float)) or not 0.0 <= t_start < 1.0:
        raise ValueError(f"t_start must be a float in [0, 1), got {t_start!r}")
    limit = max_positions(model) - 1
    max_length = limit if max_length is None else max_length
    check_int(max_length, "max_length", 1, limit,
              note=f" (the longest sequence, in words: the model sees {limit + 1} positions, "
                   "one of them the anchor)")
    if not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    return max_length


def start(model, tok, prompts: Sequence[str], *, max_length: int, temperature: float,
          seed: int | None, insertions: str = "one") -> EditRun:
    """The rows before the first step (see the module for what a prompt means)."""
    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts or not all(
            isinstance(p, str) for p in prompts):
        raise TypeError(f"prompts must be a non-empty list of str ([''] to generate), got "
                        f"{prompts!r:.80}")
    gen = torch.Generator().manual_seed(seed_or_random(seed))
    info = TokenInfo.from_tokenizer(tok)
    rows, frozen, opened = [], [], []
    junk, k = Coupling.of(model).start(len(prompts), allowed_ids(model, info), gen)
    for i, prompt in enumerate(prompts):
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        words = [w for w in ids if w != info.mask_id]
        if len(words) > max_length:
            raise ValueError(f"prompts[{i}] has {len(words)} words, more than max_length="
                             f"{max_length}: the length bound cannot be met")
        if not prompt.strip():
            words = junk[i, :int(k[i])].tolist()
        gaps = {j - n for n, j in enumerate(j for j, w in enumerate(ids) if w == info.mask_id)}
        rows.append(words)
        frozen.append([bool(gaps)] * len(words))  # infill: the prompt's words are fixed
        opened.append([not gaps or j + 1 in gaps for j in range(len(words))])
        opened[-1] = [not gaps or 0 in gaps] + opened[-1]
    width = 1 + max(map(len, rows))
    ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    froz = torch.ones((len(rows), width), dtype=torch.bool)
    ope = torch.zeros((len(rows), width), dtype=torch.bool)
    ids[:, 0] = anchor_id(tok)
    for i, (words, f, o) in enumerate(zip(rows, frozen, opened, strict=True)):
        ids[i, 1:1 + len(words)] = torch.tensor(words, dtype=torch.long)
        froz[i, 1:1 + len(f)] = torch.tensor(f, dtype=torch.bool)
        ope[i, :len(o)] = torch.tensor(o, dtype=torch.bool)
    lengths = torch.tensor([1 + len(w) for w in rows])
    return EditRun(model.eval(), ids, lengths, froz, ope, max_length, float(temperature),
                   insertions, gen, tok.pad_token_id)


def _draw(logits: torch.Tensor, n: int, run: EditRun) -> torch.Tensor:
    """(..., n) tokens drawn from each row of (..., V) logits at the run's temperature."""
    logp = (logits.double() / run.temperature).log_softmax(-1)
    return sample_categorical(logp[..., None, :].expand(*logp.shape[:-1], n, logp.shape[-1]),
                              run.gen)


def edit_step(run: EditRun, t: float, s: float, step: int) -> EditFrame:
    r"""One leap from $t$ to $s$ (see the module); updates ``run`` in place and returns the
    frame: the rows after the step and the view of its edits."""
    b, w = run.ids.shape
    device = next(run.model.parameters()).device
    valid = torch.arange(w)[None] < run.lengths[:, None]
    with torch.no_grad():
        out = run.model(input_ids=run.ids.to(device), attention_mask=valid.long().to(device),
                        t=torch.full((b,), t, device=device))
    run.passes += 1
    h = (s - t) * float(rate_scale(torch.tensor(t, dtype=torch.float64)))
    lam = h * out.rates.double().cpu()  # (B, W, 3): expected edits of each kind this step
    editable = valid & ~run.frozen
    editable[:, 0] = False
    u = torch.rand((b, w), generator=run.gen, dtype=torch.float64)
    both = (lam[..., 1] + lam[..., 2]).clamp(min=1.0)  # two chances of one token, at most 1
    dele = editable & (u < lam[..., 1] / both)
    sub = editable & ~dele & (u < (lam[..., 1] + lam[..., 2]) / both)
    sub_tok = _draw(out.sub_logits.cpu(), 1, run)[..., 0]
    if run.insertions == "poisson":
        count = torch.poisson(lam[..., 0].clamp(max=run.max_length), generator=run.gen).long()
    else:  # at most one word per gap per step
        count = (torch.rand((b, w), generator=run.gen, dtype=torch.float64) < lam[..., 0]).long()
    count = count * (valid & run.open)
    keep = valid & ~dele
    room = (run.max_length + 1 - keep.sum(1)).clamp(min=0)  # the length bound
    c = max(int(count.max()), 1)
    slot = torch.arange(c)[None, None] < count[..., None]  # (B, W, C)
    slot &= slot.flatten(1).cumsum(1).reshape(b, w, c) <= room[:, None, None]
    count = slot.sum(2)
    ins_tok = _draw(out.ins_logits.cpu(), c, run)  # (B, W, C)
    new = torch.where(sub, sub_tok, run.ids)

    def lay(per_token: torch.Tensor, values: tuple, inserted: tuple, fill: tuple):
        """Tokens (where ``per_token``) then their insertions, compacted per row."""
        parts = [torch.cat([v[..., None], i], -1) for v, i in zip(values, inserted, strict=True)]
        shown = torch.cat([per_token[..., None], slot], -1).flatten(1)
        return [compact(p.flatten(1), shown, f)[0] for p, f in zip(parts, fill, strict=True)]

    grid = (b, w, c)
    ids, frozen, opened = lay(keep, (new, run.frozen, run.open),
                              (ins_tok, torch.zeros(grid, dtype=torch.bool),
                               torch.ones(grid, dtype=torch.bool)), (run.pad_id, True, False))
    kind = torch.where(dele, DELETED, torch.where(sub, SUBSTITUTED, torch.where(
        run.frozen, FIXED, KEPT)))
    shown = valid.clone()
    shown[:, 0] = False  # the anchor is not in the view
    view_ids, view_kind, view_old = lay(
        shown, (new, kind, torch.where(sub, run.ids, -1)),
        (ins_tok, torch.full(grid, INSERTED), torch.full(grid, -1)), (PAD, NONE, -1))
    run.ids, run.frozen, run.open = ids, frozen.bool(), opened.bool()
    run.lengths = keep.sum(1) + count.sum(1)
    return EditFrame(step, s, run.ids.clone(), run.lengths.clone(), view_ids, view_kind,
                     view_old)


def finish(run: EditRun, tok) -> list[str]:
    """Each row's words (the anchor excluded), joined by the tokenizer's decoder."""
    rows = [run.ids[i, 1:int(n)].tolist() for i, n in enumerate(run.lengths)]
    return tok.batch_decode(rows, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def _still(run: EditRun, step: int, t: float) -> EditFrame:
    view = run.ids[:, 1:].masked_fill(
        torch.arange(1, run.ids.shape[1])[None] >= run.lengths[:, None], PAD)
    kind = torch.where(view == PAD, NONE, torch.where(run.frozen[:, 1:], FIXED, KEPT))
    return EditFrame(step, t, run.ids.clone(), run.lengths.clone(), view, kind,
                     torch.full_like(view, -1))


@torch.no_grad()
def generate_edits(model, tok, prompts: Sequence[str] = ("",), *, steps: int = 32,
                   t_start: float = 0.0, max_length: int | None = None, num_samples: int = 1,
                   temperature: float = 1.0, seed: int | None = None, record: bool = True,
                   insertions: str = "one") -> EditTrajectory:
    """Sample ``num_samples`` texts per prompt with an edit model; return an `EditTrajectory`.

    ``steps``: the edit budget, one forward pass each, on a uniform grid from ``t_start`` to 1.
    ``max_length``: the longest sequence in words (default: what the model sees); insertions
    that would pass it are dropped, the rightmost first.  A bound below a prompt's words, or a
    budget below one step, is a ValueError naming it.  ``record=False`` keeps only the last
    frame; ``insertions``: ``"one"`` word per gap per step, or ``"poisson"`` (see the
    module)."""
    max_length = _check(model, steps, t_start, max_length, temperature, insertions)
    check_int(num_samples, "num_samples", 1)
    prompts = [p for p in prompts for _ in range(num_samples)] if not isinstance(
        prompts, str) else prompts
    run = start(model, tok, prompts, max_length=max_length, temperature=temperature, seed=seed,
                insertions=insertions)
    first = _still(run, 0, float(t_start))
    grid = torch.linspace(float(t_start), 1.0, steps + 1, dtype=torch.float64).tolist()
    frames, totals = [], {}
    tick = time.perf_counter()
    for k in range(steps):
        frame = edit_step(run, grid[k], grid[k + 1], k + 1)
        for name, value in frame.counts().items():
            totals[name] = totals.get(name, 0) + value
        if record or k == steps - 1:
            frames.append(frame)
    seconds = time.perf_counter() - tick
    return EditTrajectory(finish(run, tok), frames, first, tok, run.passes, seconds, totals)
