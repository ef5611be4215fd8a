r"""The reverse process: one loop from all-[MASK] to text, with pluggable rules (``strategies``).

For a masked-diffusion model (MDLM, Sahoo et al. 2024) the reverse step from $t$ to $s < t$ is

$$ p_\theta(z_s^i \mid z_t) = \begin{cases} \delta_{z_t^i} & z_t^i \ne m \\
   \frac{t - s}{t}\, p_\theta(x^i \mid z_t) + \frac{s}{t}\,\delta_m & z_t^i = m \end{cases} $$

(linear schedule): unmasked tokens are copied, each masked slot is revealed with probability
$(t-s)/t$ and its value drawn from the denoiser.  Every sampler of the lineage keeps this loop and
changes only *which* slots are revealed or taken back; `generate` runs the loop and asks a
registered rule (see ``strategies``) at each step.

Conventions: every row starts with the [CLS] anchor; ``length`` counts the text tokens (prompt
included, anchor excluded); a prompt is a prefix, or an infill template in which each
``tok.mask_token`` marks a slot to fill and every other token is fixed; categoricals are sampled
in float64 from an explicit generator, so a seed gives identical text on the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from . import noise
from .data import require_mask_token
from .models import is_causal_lm, max_positions
from .strategies import StepContext, get_strategy, loop_time_grid
from .trajectory import Frame, Trajectory


def _nucleus(sorted_logp: torch.Tensor, top_p: float) -> torch.Tensor:
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
            -1, order, _nucleus(sorted_logits, top_p))
        logits = logits.masked_fill(drop, float("-inf"))
    return logits.log_softmax(-1)


def sample_categorical(logp: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gumbel-max over the last axis in float64 (float32 noise lowers entropy)."""
    u = torch.rand(logp.shape, generator=generator, device=logp.device, dtype=torch.float64)
    return (logp - torch.log(-torch.log(u.clamp(1e-300, 1.0)))).argmax(-1)


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
        values = values.masked_fill(_nucleus(values, top_p), float("-inf"))
    choice = sample_categorical(values.log_softmax(-1), generator)
    return index.gather(-1, choice[:, None])[:, 0]


def _validate(model, tok, prompts, length, steps, temperature, top_k, top_p, block_size):
    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts:
        raise TypeError(f"prompts must be a non-empty list of str (use [''] for unconditional), "
                        f"got {prompts!r}")
    if not all(isinstance(p, str) for p in prompts):
        raise TypeError("every prompt must be a str")
    if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
        raise ValueError(f"length must be a positive int (tokens, prompt included), got {length!r}")
    if length + 1 > max_positions(model):
        raise ValueError(f"length={length} does not fit the model: it sees {max_positions(model)} "
                         f"positions, one of them the [CLS] anchor, so length <= "
                         f"{max_positions(model) - 1}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not isinstance(temperature, (int, float)) or temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or an int >= 1, got {top_k!r}")
    if top_p is not None and (not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be None or in (0, 1], got {top_p!r}")
    if block_size is not None and (not isinstance(block_size, int) or block_size < 1):
        raise ValueError(f"block_size must be None or a positive int, got {block_size!r}")


def prepare(tok, prompts: Sequence[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, fixed), each (B, length + 1): anchor, prompt tokens, then masks to fill."""
    mask_id = require_mask_token(tok)
    cls_id = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
    ids = torch.full((len(prompts), length + 1), mask_id, dtype=torch.long)
    ids[:, 0] = cls_id
    for row, prompt in enumerate(prompts):  # one tokenizer call per prompt, not per token
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        if len(p) > length:
            raise ValueError(f"prompt {row} ({prompt!r:.40}) is {len(p)} tokens long, more than "
                             f"length={length}")
        ids[row, 1:1 + len(p)] = torch.tensor(p, dtype=torch.long)
    return ids, ids != mask_id


def _revisable_slots(revisable, x: torch.Tensor, mask_id: int) -> torch.Tensor:
    """(B, L) True at the given prompt positions (text positions, anchor excluded)."""
    loose = torch.zeros_like(x, dtype=torch.bool)
    if revisable is None:
        return loose
    if isinstance(revisable, (str, bytes)) or not isinstance(revisable, Sequence) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in revisable):
        raise TypeError(f"revisable must be a list of int text positions, got {revisable!r}")
    for i in revisable:
        if not 0 <= i < x.shape[1] - 1:
            raise ValueError(f"revisable position {i} is outside the text (0..{x.shape[1] - 2})")
        if (x[:, 1 + i] == mask_id).any():
            raise ValueError(f"revisable position {i} is a [MASK] slot in some prompt: revisable "
                             "marks given prompt tokens that the sampler may change")
        loose[:, 1 + i] = True
    return loose


def _frame(step, x, masked, conf, revealed, remasked) -> Frame:
    return Frame(step, x.cpu().clone(), masked.cpu().clone(), conf.float().cpu().clone(),
                 revealed.cpu().clone(), remasked.cpu().clone())


def _block_plan(free: torch.Tensor, steps: int, block_size: int | None) -> list[tuple]:
    """[(region (B, L) bool, n_steps), ...]: semi-autoregressive blocks over the free slots."""
    if block_size is None:
        return [(free, steps)]
    pos = torch.arange(free.shape[1], device=free.device)
    blocks = [free & ((pos - 1) // block_size == b)[None] for b in range(
        (free.shape[1] - 2) // block_size + 1)]
    blocks = [b for b in blocks if b.any()]
    if steps < len(blocks):
        raise ValueError(f"steps={steps} is fewer than the {len(blocks)} blocks of "
                         f"block_size={block_size}; use steps >= {len(blocks)}")
    per, extra = divmod(steps, len(blocks))
    return [(b, per + (i < extra)) for i, b in enumerate(blocks)]


@torch.no_grad()
def generate(model, tok, prompts: Sequence[str] = ("",), length: int = 128, steps: int = 32,
             strategy: str | None = None, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, block_size: int | None = None, seed: int | None = None,
             num_samples: int = 1, record: bool = True, revisable: Sequence[int] | None = None,
             **options) -> Trajectory:
    """Sample ``num_samples`` texts per prompt with the reverse process; return a `Trajectory`.

    ``strategy``: a name from ``strategies.STRATEGIES`` (default ``"low_confidence"``), or
    ``"ar"`` for a causal model (the default for one: left to right with a KV cache, one frame per
    token).  ``options`` go to the rule (e.g. ``threshold=0.9``, ``schedule="cosine"``,
    ``variant="cap"``).  ``block_size`` decodes left to right in blocks, ``steps`` shared among
    them.  ``seed`` fixes every random draw.

    ``revisable``: text positions (0-based, anchor excluded) of prompt tokens that start *decoded
    but not fixed*, as if the sampler had decoded them itself — e.g. a wrong first answer digit,
    to see whether a strategy can take it back.  Their confidence is the model's probability of
    them with those slots masked (one extra forward pass); a revising strategy may change them,
    the others keep them.
    """
    _validate(model, tok, prompts, length, steps, temperature, top_k, top_p, block_size)
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
    prompts = [p for p in prompts for _ in range(num_samples)]
    causal = is_causal_lm(model)
    name = strategy or ("ar" if causal else "low_confidence")
    if causal or name == "ar":
        if revisable:
            raise ValueError("an autoregressive model never revisits its prefix: revisable "
                             "needs a masked LM (the AR baseline takes the tokens as a prompt)")
        if not (causal and name == "ar"):
            raise ValueError(f"strategy 'ar' goes with a causal model and a causal model with "
                             f"'ar'; got strategy={name!r} for {type(model).__name__}")
        from .ar_sampling import generate_ar

        return generate_ar(model, tok, prompts, length, temperature, top_k, top_p, seed, record)
    rule = get_strategy(name)
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(
        seed if seed is not None else int(torch.randint(0, 2**31, (1,))))
    mask_id = require_mask_token(tok)
    x, fixed = (t.to(device) for t in prepare(tok, prompts, length))
    loose = _revisable_slots(revisable, x, mask_id)
    fixed = fixed & ~loose
    free = ~fixed
    banned = torch.tensor(list(tok.all_special_ids), device=device)
    masked = x == mask_id
    conf = fixed.double()
    passes = 0
    if loose.any():  # confidence of a given token: p(token) with its slot masked, as if decoded
        probe = model.eval()(input_ids=x.masked_fill(loose, mask_id)).logits.double()
        passes += 1
        probe[..., banned] = float("-inf")
        p_given = probe.softmax(-1).gather(-1, x[..., None])[..., 0]
        conf = torch.where(loose, p_given, conf)
    if rule.start == "uniform":
        content = noise.content_token_ids(tok).to(device)
        pick = torch.randint(0, len(content), x.shape, generator=gen, device=device)
        x = torch.where(masked, content[pick], x)  # revisable slots keep their given token
        masked = torch.zeros_like(masked)
    start = _frame(0, x, masked, conf, torch.zeros_like(masked), torch.zeros_like(masked))
    frames, tick, cached = [], time.perf_counter(), None
    model.eval()
    for region, n in _block_plan(free, steps, block_size):
        grid = (loop_time_grid(n) if name == "remdm" and options.get("variant") == "loop"
                else [1 - i / n for i in range(n + 1)])
        for i in range(len(grid) - 1):
            if cached is None:
                logits = model(input_ids=x).logits
                passes += 1
                cached = logits
            rows = cached[region].float()  # (N, V): only the slots this step may touch
            rows[:, banned] = float("-inf")
            proposal_rows = sample_filtered(rows, gen, temperature, top_k, top_p)  # float64 inside
            p_rows = (rows.gather(-1, proposal_rows[:, None])[:, 0]
                      - rows.logsumexp(-1)).exp().double()  # confidence p(x_hat), untempered
            proposal = x.clone()
            proposal[region] = proposal_rows
            p = torch.zeros_like(conf)
            p[region] = p_rows
            ctx = StepContext(x, masked, region, proposal, p, conf, grid[i], grid[i + 1], i,
                              len(grid) - 1, gen, options)
            update, remask = rule.rule(ctx)
            if i == len(grid) - 2:  # the block's last step leaves no mask behind
                update, remask = update | (masked & region), torch.zeros_like(remask)
            before_x, before_masked = x, masked
            x = torch.where(update, proposal, x)
            conf = torch.where(update, p, conf)
            masked = masked & ~update
            x = x.masked_fill(remask, mask_id)
            conf = conf.masked_fill(remask, 0.0)
            masked = masked | remask
            changed = bool((x != before_x).any())
            if changed:
                cached = None
            if record:
                revealed = update & ~remask & (before_masked | (x != before_x))
                frames.append(_frame(len(frames) + 1, x, masked, conf, revealed,
                                     remask & ~before_masked))
            if rule.start == "mask" and not (masked & region).any():
                break  # e.g. "threshold" committed everything early
            if rule.start == "uniform" and bool(((proposal == before_x) | ~region).all()):
                break  # SUNDAE: the model agrees with every token, so nothing would change
    seconds = time.perf_counter() - tick
    if not record:
        frames = [_frame(1, x, masked, conf, torch.zeros_like(masked), torch.zeros_like(masked))]
    texts = tok.batch_decode(x[:, 1:].cpu().tolist(), skip_special_tokens=False,
                             clean_up_tokenization_spaces=False)
    return Trajectory(texts, frames, start, fixed.cpu(), tok, name, passes, seconds)
