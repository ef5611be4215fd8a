r"""Revision that re-reads the present context: remasking and editing by a confidence re-scored
at every step, not the one a token had when it was decoded.

The decode-time rule (``confidence_weighted``) remembers $c^i = p_\theta(x^i \mid z_{t'})$ from
the step $t'$ that decoded slot $i$ and remasks with probability $\propto 1 - c^i$ ever after:
whatever is written later, the token's score does not move.  A verdict written before the
equation that contradicts it cannot be judged by that equation.  The rules here ask the model
again, at every step, in the context $z_t$ of *that* step:

$$ r^i_t = p_\theta\big(x^i \mid z_t \text{ with slot } i \text{ masked}\big)
   \qquad (\text{``score="probe"``}) $$

— the model's probability of the token it wrote, had it not written it, given everything
visible now.  A masked-diffusion model cannot simply be read at a visible slot: trained only on
masked slots (MDLM's SUBS, Sahoo et al. 2024), its output there is untrained, and ``score="self"``
(read $p_\theta(x^i \mid z_t)$ at the visible slot from the step's own pass, no extra pass) is
meaningful only for a model trained to judge visible tokens (BERT's 10% random tokens, GIDD's
uniform corruption: ``objectives`` option ``corrupt``).  The probe is the masked model's own way,
as P2's self-planner (Peng et al. 2025) and the informed corrector (Zhao et al. 2024) score a
decoded token: re-mask it and ask.  It costs one forward row per decoded slot; the rows of one
step go through the model as one batch.

* ``reread_remask``: remask every decoded token whose re-read confidence $r^i_t$ fell below
  ``remask_below`` (0.5: the model now prefers another token), least confident first, at most as
  many as the schedule still leaves masked; then reveal the most confident masked slots so the
  count follows the schedule (as ``confidence_weighted``).  A remasked slot is decoded again at
  the next step, in the context that made it lose confidence.  The schedule writes its least
  certain slot at its last step, where nothing may be remasked, so ``rounds`` (2) more steps at
  $t = 0$ re-read the finished text (`checking_time_grid`): one to take a token back, one to
  write it again; a round that doubts nothing ends the block.
* ``token_editing``: LLaDA2.1's token editing (the ``editing_threshold`` of diffusers'
  ``BlockRefinementScheduler``): a committed token is *replaced* in place by the model's top
  prediction for its slot when that is another token with probability > ``editing_threshold``
  (0.9); masked slots are revealed as ``low_confidence``.  LLaDA2.1 reads the prediction at the
  visible slot (``score="self"``) from a model trained to edit; ``score="probe"`` re-masks.

The sampling loop computes $r_t$ (`reread_scores`) for strategies registered with
``reread=True``, puts it in ``ctx.reread``, and gives every decoded slot the re-read top token
as its proposal (``ctx.proposal``, ``ctx.p``), so a rule may replace a token as well as remask it.
"""

from __future__ import annotations

import torch

from .denoiser import TokenInfo, denoiser_logits
from .registry import StepContext, register_strategy, top_k_mask

SCORES = ("probe", "self")


def reread_scores(model, x: torch.Tensor, logits: torch.Tensor, decoded: torch.Tensor,
                  info: TokenInfo, score: str = "probe", chunk: int = 512):
    """``(now, top, p_top, passes)``: for every ``decoded`` slot (B, L) of ``x``, the model's
    probability of its token in the present context (``now``, float64), its most likely token
    there (``top``) and that token's probability (``p_top``); 0 / the token itself elsewhere.

    ``score="probe"``: slot $i$ re-masked, one row per decoded slot, run in batches of ``chunk``
    rows; ``passes`` is the most probe rows of one sample (forward passes per sample, as the
    loop counts them).  ``score="self"``: read from ``logits`` (the step's own pass), 0 passes.
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {list(SCORES)}, got {score!r}")
    now = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    top, p_top = x.clone(), now.clone()
    if score == "self":
        logp = logits.double().log_softmax(-1)
        p_all, arg = logp.max(-1)
        here = logp.gather(-1, x[..., None])[..., 0]
        return (torch.where(decoded, here.exp(), now), torch.where(decoded, arg, x),
                torch.where(decoded, p_all.exp(), now), 0)
    b, i = decoded.nonzero(as_tuple=True)
    if len(b) == 0:
        return now, top, p_top, 0
    rows = x[b].clone()
    rows[torch.arange(len(b), device=x.device), i] = info.mask_id
    parts = []
    for s in range(0, len(b), chunk):
        k = torch.arange(min(chunk, len(b) - s), device=x.device)
        parts.append(denoiser_logits(model, rows[s:s + chunk], info)[k, i[s:s + chunk]].double()
                     .log_softmax(-1))
    logp = torch.cat(parts)  # (K, V): slot i's distribution with slot i masked
    now[b, i] = logp.gather(-1, x[b, i][:, None])[:, 0].exp()
    best, arg = logp.max(-1)
    top[b, i], p_top[b, i] = arg, best.exp()
    return now, top, p_top, int(decoded.sum(1).max())


def _check_probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
    return float(value)


def _reveal_most_confident(ctx: StepContext, extra=0) -> torch.Tensor:
    score = ctx.p.masked_fill(~(ctx.masked & ctx.region), float("-inf"))
    return top_k_mask(score, ctx.reveal_count(extra=extra))


def checking_time_grid(n: int, options) -> list[float]:
    r"""The linear grid $1, 1 - 1/n, \dots, 0$, then ``rounds`` more steps at $t = s = 0$: once
    every slot is written, the rule may still take a token back (and the next step write it
    again); the block stops at the first round with nothing to take back (`nothing_doubted`)."""
    rounds = options.get("rounds", 2)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"rounds must be an int >= 0, got {rounds!r}")
    return [1 - i / n for i in range(n + 1)] + [0.0] * rounds


def _doubted(ctx: StepContext) -> torch.Tensor:
    below = _check_probability("remask_below", ctx.option("remask_below"))
    return ctx.region & ~ctx.masked & (ctx.reread < below)


def _edits(ctx: StepContext) -> torch.Tensor:
    tau = _check_probability("editing_threshold", ctx.option("editing_threshold"))
    return ctx.region & ~ctx.masked & (ctx.proposal != ctx.x) & (ctx.p > tau)


def nothing_doubted(ctx: StepContext, masked_after: torch.Tensor) -> bool:
    """Stop once a step after the schedule (t = 0) leaves no mask: it took nothing back."""
    return ctx.t == 0 and not bool((masked_after & ctx.region).any())


def nothing_edited(ctx: StepContext, masked_after: torch.Tensor) -> bool:
    """Stop once a step after the schedule (t = 0) leaves no mask and proposes no edit."""
    return ctx.t == 0 and not bool((masked_after & ctx.region).any() or _edits(ctx).any())


@register_strategy("reread_remask", revises=True, reread=True, time_grid=checking_time_grid,
          finished=nothing_doubted, options={"score": "probe", "remask_below": 0.5, "rounds": 2})
def reread_remask(ctx: StepContext):
    """Remask each decoded token whose confidence re-read in the present context
    (``ctx.reread``, `reread_scores`) is below ``remask_below`` (0.5), least confident first and
    at most round(N rate(s)) of them; reveal the most confident masked slots to keep the
    schedule.  After the schedule, up to ``rounds`` (2) steps at t = 0 re-read the finished
    text: a doubted token is remasked (no cap) and written again at the next step; the last
    step leaves no mask.  ``score``: "probe" (re-mask and ask: any masked LM) or "self" (a
    model trained to judge visible tokens)."""
    doubt = _doubted(ctx)
    if ctx.t == 0:  # after the schedule: any doubted token may go back
        target = ctx.region.sum(1)
    else:
        target = torch.round(ctx.region.sum(1).double() * ctx.rate_s).long()
    remask = top_k_mask((-ctx.reread).masked_fill(~doubt, float("-inf")), target)
    return _reveal_most_confident(ctx, extra=remask.sum(1)), remask


@register_strategy("token_editing", revises=True, reread=True, time_grid=checking_time_grid,
          finished=nothing_edited, options={"score": "self", "editing_threshold": 0.9,
                                             "rounds": 2})
def token_editing(ctx: StepContext):
    """LLaDA2.1's token editing: replace a decoded token by the model's top prediction for its
    slot (``ctx.proposal`` there) when that is another token with probability >
    ``editing_threshold`` (0.9); reveal masked slots as ``low_confidence``; after the schedule,
    up to ``rounds`` (2) editing steps on the finished text, until none proposes an edit (as
    LLaDA2.1 edits a block until it is stable).  ``score``: where the prediction is read
    ("self": at the visible slot, LLaDA2.1's way; "probe": re-masked)."""
    return _reveal_most_confident(ctx) | _edits(ctx), ctx.nothing()
