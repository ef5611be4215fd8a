r"""The reverse process: one loop from all-[MASK] to text, with pluggable rules (``strategies``).

For a masked-diffusion model (MDLM, Sahoo et al. 2024) the reverse step from $t$ to $s < t$ is

$$ p_\theta(z_s^i \mid z_t) = \begin{cases} \delta_{z_t^i} & z_t^i \ne m \\
   \frac{t - s}{t}\, p_\theta(x^i \mid z_t) + \frac{s}{t}\,\delta_m & z_t^i = m \end{cases} $$

(linear schedule): unmasked tokens are copied, each masked slot is revealed with probability
$(t-s)/t$ and its value drawn from the denoiser.  Every sampler of the lineage keeps this loop and
changes only *which* slots are revealed or remasked; `generate` runs the loop and asks a
registered strategy (see ``strategies``) at each step.

Conventions: every row starts with the anchor (`tokenization.anchor_id`); ``length`` counts the
text tokens (prompt included, anchor excluded); a prompt is a prefix, or an infill template in
which each ``tok.mask_token`` marks a slot to fill and every other token is fixed; categoricals
are sampled in float64 from an explicit generator (``categorical``), so a seed gives identical
text on the CPU.  A model that writes [EOS] (trained with ``objective="sft"``) ends its own
answer: ``texts`` stop at the first generated [EOS] (`trajectory.decode_texts`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

from . import noise
from .ar_sampling import generate_ar
from .categorical import (  # noqa: F401 - public here too: dl.sampling.sample_categorical
    filter_logits,
    probability_of,
    sample_categorical,
    sample_filtered,
)
from .denoiser import TokenInfo, denoiser_logits
from .models import is_causal_lm, max_positions
from .settings import SampleSettings, split_known
from .strategies import StepContext, Strategy, get_strategy, leave_no_mask
from .strategies_revision import reread_scores
from .tokenization import anchor_id, require_mask_token
from .trajectory import Frame, Trajectory, decode_texts

StepCallback = Callable[[int, Frame], "bool | None"]


def check_prompts(model, prompts, length: int) -> None:
    """Reject prompts that are not a non-empty list of str, and lengths the model cannot see."""
    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts:
        raise TypeError(f"prompts must be a non-empty list of str (use [''] for unconditional), "
                        f"got {prompts!r}")
    if not all(isinstance(p, str) for p in prompts):
        raise TypeError("every prompt must be a str")
    if length + 1 > max_positions(model):
        raise ValueError(f"length={length} does not fit the model: it sees {max_positions(model)} "
                         f"positions, one of them the [CLS] anchor, so length <= "
                         f"{max_positions(model) - 1}")


def prepare(tok, prompts: Sequence[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, fixed), each (B, length + 1): anchor, prompt tokens, then masks to fill."""
    mask_id = require_mask_token(tok)
    ids = torch.full((len(prompts), length + 1), mask_id, dtype=torch.long)
    ids[:, 0] = anchor_id(tok)
    for row, prompt in enumerate(prompts):  # one tokenizer call per prompt, not per token
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        if len(p) > length:
            raise ValueError(f"prompt {row} ({prompt!r:.40}) is {len(p)} tokens long, more than "
                             f"length={length}")
        ids[row, 1:1 + len(p)] = torch.tensor(p, dtype=torch.long)
    return ids, ids != mask_id


def revisable_slots(revisable, x: torch.Tensor, mask_id: int) -> torch.Tensor:
    """(B, L) True at the given prompt positions (text positions, anchor excluded)."""
    slots = torch.zeros_like(x, dtype=torch.bool)
    if revisable is None:
        return slots
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in revisable):
        raise TypeError(f"revisable must be a list of int text positions, got {revisable!r}")
    for i in revisable:
        if not 0 <= i < x.shape[1] - 1:
            raise ValueError(f"revisable position {i} is outside the text (0..{x.shape[1] - 2})")
        if (x[:, 1 + i] == mask_id).any():
            raise ValueError(f"revisable position {i} is a [MASK] slot in some prompt: revisable "
                             "marks given prompt tokens that the sampler may change")
        slots[:, 1 + i] = True
    return slots


def block_plan(free: torch.Tensor, steps: int, block_size: int | None) -> list[tuple]:
    """[(region (B, L) bool, n_steps), ...]: semi-autoregressive blocks over the free slots.

    As LLaDA's ``generate.py`` (Nie et al. 2025), blocks start at each row's first free slot,
    after the prompt: a 6-token prompt, 64 slots to fill and ``block_size=16`` give 4 blocks of
    16 slots, not blocks counted from position 0 that the prompt cuts short.  Steps are shared
    out evenly, the remainder to the first blocks."""
    if block_size is None:
        return [(free, steps)]
    pos = torch.arange(free.shape[1], device=free.device)[None]
    start = free.int().argmax(1, keepdim=True)  # (B, 1): each row's first free slot
    offset = pos - start  # negative before it: in no block
    count = (free.shape[1] - 1 - int(start.min())) // block_size + 1
    blocks = [free & (offset >= 0) & (offset // block_size == b) for b in range(count)]
    blocks = [b for b in blocks if b.any()]
    if not blocks:  # the prompt fills every slot: nothing to sample
        return []
    if steps < len(blocks):
        raise ValueError(f"steps={steps} is fewer than the {len(blocks)} blocks of "
                         f"block_size={block_size}; use steps >= {len(blocks)}")
    per, extra = divmod(steps, len(blocks))
    return [(b, per + (i < extra)) for i, b in enumerate(blocks)]


def start_state(rule: Strategy, model, tok, x, fixed, revisable, info, gen):
    """(x, masked, conf, passes) before the first step.

    Given ``revisable`` tokens get the confidence the model gives them with their slots masked
    (one extra forward pass), as if the sampler had decoded them; a "uniform" strategy (SUNDAE)
    replaces every mask with a uniformly random content token."""
    masked, conf, passes = x == info.mask_id, fixed.double(), 0
    if revisable.any():
        probe = denoiser_logits(model, x.masked_fill(revisable, info.mask_id), info).double()
        conf = torch.where(revisable, probe.softmax(-1).gather(-1, x[..., None])[..., 0], conf)
        passes = 1
    if rule.start == "uniform":
        content = noise.content_token_ids(tok).to(x.device)
        pick = torch.randint(0, len(content), x.shape, generator=gen, device=x.device)
        x, masked = torch.where(masked, content[pick], x), torch.zeros_like(masked)
    return x, masked, conf, passes


def _frame(step, x, masked, conf, revealed, remasked) -> Frame:
    return Frame(step, x.cpu().clone(), masked.cpu().clone(), conf.float().cpu().clone(),
                 revealed.cpu().clone(), remasked.cpu().clone())


def _settings(settings, kwargs) -> SampleSettings:
    if settings is not None and not isinstance(settings, SampleSettings):
        raise TypeError(f"settings must be a dl.SampleSettings, got {type(settings).__name__}")
    known, options = split_known(SampleSettings, kwargs)
    return (settings or SampleSettings()).with_(**known, **options)


@torch.no_grad()
def generate(model, tok, prompts: Sequence[str] = ("",), settings: SampleSettings | None = None,
             *, callback_on_step_end: StepCallback | None = None, **kwargs) -> Trajectory:
    r"""Sample ``num_samples`` texts per prompt with the reverse process; return a `Trajectory`.

    At each step from $t_i$ to $s = t_{i+1}$ on the strategy's time grid, within each block:

    $$ \hat x \sim p_\theta(\cdot \mid z_t), \quad \hat p = p_\theta(\hat x \mid z_t), \quad
       (U, R) = \mathrm{rule}(z_t, \hat x, \hat p, t, s), \quad
       z_s = \mathrm{mask}_R\big(\mathrm{where}(U, \hat x, z_t)\big), $$

    and the block's last step reveals every slot still masked (`strategies.leave_no_mask`).

    Keyword arguments are the fields of `SampleSettings` (``length``, ``steps``, ``strategy``,
    ``temperature``, ``top_k``, ``top_p``, ``block_size``, ``seed``, ``num_samples``,
    ``record``, ``revisable``), or a ``settings`` record, plus the strategy's own options (e.g.
    ``threshold=0.9``, ``schedule="cosine"``, ``variant="cap"``; an unknown one is a
    ValueError).  ``strategy``: a name from ``dl.STRATEGIES`` (default ``"low_confidence"``) or
    ``"ar"`` for a causal model (its default).  ``block_size`` decodes left to right in blocks,
    ``steps`` shared among them.  ``seed`` fixes every random draw.  ``revisable``: text
    positions of prompt tokens that start decoded but not fixed (a revising strategy may change
    them).  ``callback_on_step_end(step, frame)`` is called after every step (diffusers'
    convention); returning True stops sampling there.
    """
    cfg = _settings(settings, kwargs)
    check_prompts(model, prompts, cfg.length)
    prompts = [p for p in prompts for _ in range(cfg.num_samples)]
    name = cfg.strategy or ("ar" if is_causal_lm(model) else "low_confidence")
    if is_causal_lm(model) or name == "ar":
        return generate_ar(model, tok, prompts, name, cfg, callback_on_step_end)
    rule = get_strategy(name)
    options = rule.resolve_options(name, cfg.options)
    device, info = next(model.parameters()).device, TokenInfo.from_tokenizer(tok)
    gen = torch.Generator(device=device).manual_seed(
        cfg.seed if cfg.seed is not None else int(torch.randint(0, 2**31, (1,))))
    x, fixed = (t.to(device) for t in prepare(tok, prompts, cfg.length))
    revisable = revisable_slots(cfg.revisable, x, info.mask_id)
    fixed = fixed & ~revisable
    x, masked, conf, passes = start_state(rule, model.eval(), tok, x, fixed, revisable, info, gen)
    nothing, k = torch.zeros_like(masked), 0
    start, frames, tick, cached, stop = _frame(0, x, masked, conf, nothing, nothing), [], \
        time.perf_counter(), None, False
    record = cfg.record or callback_on_step_end is not None  # frames for the record / callback
    for region, n in block_plan(~fixed, cfg.steps, cfg.block_size):
        grid, reread = rule.time_grid(n, options), None
        for i in range(len(grid) - 1):
            if cached is None:  # the denoiser sees only z_t: reuse its output until z_t changes
                cached, reread = denoiser_logits(model, x, info), None
                passes += 1
            rows = cached[region]  # (N, V): only the slots this step may touch
            drawn = sample_filtered(rows, gen, cfg.temperature, cfg.top_k, cfg.top_p)
            proposal, p = x.clone(), torch.zeros_like(conf)
            proposal[region], p[region] = drawn, probability_of(rows, drawn)  # untempered p
            decoded = region & ~masked
            if rule.reread:  # every decoded token re-scored in z_t (strategies_revision)
                if reread is None:
                    reread = reread_scores(model, x, cached, decoded, info, options["score"])
                    passes += reread[3]
                proposal = torch.where(decoded, reread[1], proposal)
                p = torch.where(decoded, reread[2], p)
            ctx = StepContext(x, masked, region, proposal, p, conf, grid[i], grid[i + 1], i,
                              len(grid) - 1, gen, options, reread[0] if rule.reread else None)
            update, remask = leave_no_mask(ctx, *rule.rule(ctx))
            x_new = torch.where(update, proposal, x).masked_fill(remask, info.mask_id)
            if rule.reread:  # a kept token shows the confidence it has now
                conf = torch.where(decoded, reread[0], conf)
            conf = torch.where(update, p, conf).masked_fill(remask, 0.0)
            masked_new = (masked & ~update) | remask
            if bool((x_new != x).any()):
                cached = None
            k += 1
            if record:
                frames.append(_frame(k, x_new, masked_new, conf, update & ~remask & (
                    masked | (x_new != x)), remask & ~masked))
                stop = bool(callback_on_step_end and callback_on_step_end(k, frames[-1]))
            x, masked = x_new, masked_new
            if stop or rule.finished(ctx, masked):
                break  # e.g. "threshold" committed everything early, or the callback said stop
        if stop:
            break
    seconds = time.perf_counter() - tick
    if not cfg.record:
        frames = [_frame(1, x, masked, conf, nothing, nothing)]
    texts = decode_texts(tok, x, fixed)  # each cut at its first generated [EOS]
    return Trajectory(texts, frames, start, fixed.cpu(), tok, name, passes, seconds)
