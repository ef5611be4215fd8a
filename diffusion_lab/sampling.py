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
from dataclasses import dataclass

import torch

from . import noise
from .ar_sampling import generate_ar
from .block_diffusion import is_block_model
from .categorical import (  # noqa: F401 - public here too: dl.sampling.sample_categorical
    filter_logits,
    probability_of,
    sample_categorical,
    sample_filtered,
)
from .denoiser import TokenInfo, denoiser_logits
from .models import is_causal_lm, max_positions
from .runtime import seed_or_random
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


@dataclass
class Run:
    """One sampling run between two steps: the state $z_t$ and what every step reads."""

    model: torch.nn.Module
    info: TokenInfo
    cfg: SampleSettings
    rule: Strategy
    options: dict  # the strategy's options, defaults filled in
    gen: torch.Generator
    fixed: torch.Tensor  # (B, L) prompt tokens no step may change
    x: torch.Tensor  # (B, L) z_t: current ids, [MASK] included
    masked: torch.Tensor  # (B, L) True where x is [MASK]
    conf: torch.Tensor  # (B, L) float64: the probability each token had when it was decoded
    passes: int = 0  # forward passes of the denoiser so far
    logits: torch.Tensor | None = None  # the denoiser on x, reused until x changes
    # a re-reading strategy's (now, top, p_top, passes) on x for one region, reused likewise
    reread: tuple | None = None
    reread_region: torch.Tensor | None = None

    def frame(self, step: int, revealed: torch.Tensor, remasked: torch.Tensor) -> Frame:
        return Frame(step, self.x.cpu().clone(), self.masked.cpu().clone(),
                     self.conf.float().cpu().clone(), revealed.cpu().clone(),
                     remasked.cpu().clone())


def start(model, tok, prompts: Sequence[str], name: str, cfg: SampleSettings) -> Run:
    """Prepare a run: the strategy and its options, the seeded generator, the all-[MASK] rows
    after their prompts (`prepare`), ``revisable`` prompt tokens and the start state."""
    rule = get_strategy(name)
    options = rule.resolve_options(name, cfg.options)
    device, info = next(model.parameters()).device, TokenInfo.from_tokenizer(tok)
    gen = torch.Generator(device=device).manual_seed(seed_or_random(cfg.seed))
    x, fixed = (t.to(device) for t in prepare(tok, prompts, cfg.length))
    revisable = revisable_slots(cfg.revisable, x, info.mask_id)
    fixed = fixed & ~revisable
    x, masked, conf, passes = start_state(rule, model.eval(), tok, x, fixed, revisable, info, gen)
    return Run(model, info, cfg, rule, options, gen, fixed, x, masked, conf, passes)


def reverse_step(run: Run, region: torch.Tensor, t: float, s: float, step: int, n: int
                 ) -> tuple[StepContext, torch.Tensor, torch.Tensor]:
    r"""One reverse step from $t$ to $s$ over the slots of ``region``; updates ``run`` in place.

    $$ \hat x \sim p_\theta(\cdot \mid z_t), \quad \hat p = p_\theta(\hat x \mid z_t), \quad
       (U, R) = \mathrm{rule}(z_t, \hat x, \hat p, t, s), \quad
       z_s = \mathrm{mask}_R\big(\mathrm{where}(U, \hat x, z_t)\big) $$

    ``step`` is the step's index in its block of ``n`` steps: the last reveals every slot still
    masked (`strategies.leave_no_mask`).  Returns the rule's `StepContext` and the (B, L) slots
    this step revealed and remasked (a `Frame`'s ``revealed`` and ``remasked``).
    """
    if run.logits is None:  # the denoiser sees only z_t: reuse its output until z_t changes
        run.logits, run.reread = denoiser_logits(run.model, run.x, run.info), None
        run.passes += 1
    rows = run.logits[region]  # (N, V): only the slots this step may touch
    drawn = sample_filtered(rows, run.gen, run.cfg.temperature, run.cfg.top_k, run.cfg.top_p)
    proposal, p = run.x.clone(), torch.zeros_like(run.conf)
    proposal[region], p[region] = drawn, probability_of(rows, drawn)  # untempered p
    decoded, now = region & ~run.masked, None
    if run.rule.reread:  # every decoded token re-scored in z_t (strategies_revision)
        if run.reread is None or run.reread_region is not region:
            run.reread = reread_scores(run.model, run.x, run.logits, decoded, run.info,
                                       run.options["score"])
            run.reread_region = region
            run.passes += run.reread[3]
        now, top, p_top, _ = run.reread
        proposal, p = torch.where(decoded, top, proposal), torch.where(decoded, p_top, p)
    ctx = StepContext(x=run.x, masked=run.masked, region=region, proposal=proposal, p=p,
                      conf=run.conf, t=t, s=s, step=step, n=n, generator=run.gen,
                      options=run.options, reread=now)
    update, remask = leave_no_mask(ctx, *run.rule.rule(ctx))
    x = torch.where(update, proposal, run.x).masked_fill(remask, run.info.mask_id)
    revealed = update & ~remask & (run.masked | (x != run.x))
    remasked = remask & ~run.masked
    if bool((x != run.x).any()):
        run.logits = None
    if now is not None:  # a kept token shows the confidence it has now
        run.conf = torch.where(decoded, now, run.conf)
    run.conf = torch.where(update, p, run.conf).masked_fill(remask, 0.0)
    run.x, run.masked = x, (run.masked & ~update) | remask
    return ctx, revealed, remasked


def _settings(settings, kwargs) -> SampleSettings:
    if settings is not None and not isinstance(settings, SampleSettings):
        raise TypeError(f"settings must be a dl.SampleSettings, got {type(settings).__name__}")
    known, options = split_known(SampleSettings, kwargs)
    return (settings or SampleSettings()).with_(**known, **options)


@torch.no_grad()
def generate(model, tok, prompts: Sequence[str] = ("",), settings: SampleSettings | None = None,
             *, callback_on_step_end: StepCallback | None = None, **kwargs) -> Trajectory:
    r"""Sample ``num_samples`` texts per prompt with the reverse process; return a `Trajectory`.

    Prepare (`start`), then at each step from $t_i$ to $s = t_{i+1}$ on the strategy's time
    grid, within each block, one `reverse_step`:

    $$ \hat x \sim p_\theta(\cdot \mid z_t), \quad \hat p = p_\theta(\hat x \mid z_t), \quad
       (U, R) = \mathrm{rule}(z_t, \hat x, \hat p, t, s), \quad
       z_s = \mathrm{mask}_R\big(\mathrm{where}(U, \hat x, z_t)\big), $$

    and the block's last step reveals every slot still masked (`strategies.leave_no_mask`).
    A causal model (or ``strategy="ar"``) is handed to `ar_sampling.generate_ar` first.

    Keyword arguments are the fields of `SampleSettings` (``length``, ``steps``, ``strategy``,
    ``temperature``, ``top_k``, ``top_p``, ``block_size``, ``seed``, ``num_samples``,
    ``record``, ``revisable``), or a ``settings`` record, plus the strategy's own options (e.g.
    ``threshold=0.9``, ``schedule="cosine"``, ``variant="cap"``; an unknown one is a
    ValueError).  ``strategy``: a name from ``dl.STRATEGIES`` (default ``"low_confidence"``) or
    ``"ar"`` for a causal model (its default).  ``block_size`` decodes left to right in blocks,
    ``steps`` shared among them: a *schedule* on a bidirectional model, whose every step still
    attends to the whole row.  A block-diffusion model (``dl.block_diffusion.as_block_model``)
    has its blocks in its architecture; it goes to `block_sampling.generate_blocks` (exact KV
    cache, ``block_size`` left out).  ``seed`` fixes every random draw.  ``revisable``: text
    positions of prompt tokens that start decoded but not fixed (a revising strategy may change
    them).  ``callback_on_step_end(step, frame)`` is called after every step (diffusers'
    convention); returning True stops sampling there.
    """
    if is_block_model(model):  # autoregressive over blocks: block_sampling, with its KV cache
        from .block_sampling import generate_blocks
        return generate_blocks(model, tok, prompts, settings,
                               callback_on_step_end=callback_on_step_end, **kwargs)
    cfg = _settings(settings, kwargs)
    check_prompts(model, prompts, cfg.length)
    prompts = [p for p in prompts for _ in range(cfg.num_samples)]
    name = cfg.strategy or ("ar" if is_causal_lm(model) else "low_confidence")
    if is_causal_lm(model) or name == "ar":
        return generate_ar(model, tok, prompts, name, cfg, callback_on_step_end)
    run = start(model, tok, prompts, name, cfg)
    nothing = torch.zeros_like(run.masked)
    first, frames, k, stop = run.frame(0, nothing, nothing), [], 0, False
    record = cfg.record or callback_on_step_end is not None  # frames for the record / callback
    tick = time.perf_counter()
    for region, n in block_plan(~run.fixed, cfg.steps, cfg.block_size):
        grid = run.rule.time_grid(n, run.options)
        for i in range(len(grid) - 1):
            ctx, revealed, remasked = reverse_step(run, region, grid[i], grid[i + 1], i,
                                                   len(grid) - 1)
            k += 1
            if record:
                frames.append(run.frame(k, revealed, remasked))
                stop = bool(callback_on_step_end and callback_on_step_end(k, frames[-1]))
            if stop or run.rule.finished(ctx, run.masked):
                break  # e.g. "threshold" committed everything early, or the callback said stop
        if stop:
            break
    seconds = time.perf_counter() - tick
    if not cfg.record:
        frames = [run.frame(1, nothing, nothing)]
    texts = decode_texts(tok, run.x, run.fixed)  # each cut at its first generated [EOS]
    return Trajectory(texts, frames, first, run.fixed.cpu(), tok, name, run.passes, seconds)
