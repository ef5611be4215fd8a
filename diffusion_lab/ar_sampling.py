"""Left-to-right sampling for the autoregressive baseline, recorded as a `Trajectory`.

One forward pass per token with a KV cache (``past_key_values``), so the race against diffusion
(`viz.race`) and the speed benchmark compare like with like.  Frames show the unwritten slots as
[MASK] so both kinds of trajectory animate the same way.  Sampling stops once every row has
written [EOS] (the slots after it become [EOS]): an AR model pays only for the answer it writes.
"""

from __future__ import annotations

import inspect
import time

import torch

from .categorical import sample_filtered
from .denoiser import TokenInfo, ban
from .models import is_causal_lm
from .runtime import seed_or_random
from .tokenization import anchor_id
from .trajectory import Frame, Trajectory, decode_texts


@torch.no_grad()
def generate_ar(model, tok, prompts, name, cfg, callback_on_step_end=None) -> Trajectory:
    """Sample ``cfg.length`` tokens (prompt included) per prompt (a `settings.SampleSettings`);
    prompts of a batch must have the same number of tokens (rows are decoded in lock step).
    ``callback_on_step_end(step, frame)`` as in `sampling.generate`."""
    if cfg.revisable:
        raise ValueError("an autoregressive model never revisits its prefix: revisable "
                         "needs a masked LM (the AR baseline takes the tokens as a prompt)")
    if not (is_causal_lm(model) and name == "ar"):
        raise ValueError(f"strategy 'ar' goes with a causal model and a causal model with "
                         f"'ar'; got strategy={name!r} for {type(model).__name__}")
    if cfg.options:
        raise ValueError(f"strategy 'ar' has no option {sorted(cfg.options)[0]!r}; it takes none")
    length, seed, record = cfg.length, cfg.seed, cfg.record or callback_on_step_end is not None
    device = next(model.parameters()).device
    info = TokenInfo.from_tokenizer(tok, need_mask=False)
    mask_id = tok.mask_token_id if tok.mask_token_id is not None else tok.pad_token_id
    cls_id = anchor_id(tok)
    encoded = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    if any(mask_id in e for e in encoded):
        raise ValueError("an autoregressive model cannot fill an infill template; use a masked "
                         "LM with a diffusion strategy")
    if len({len(e) for e in encoded}) != 1:
        raise ValueError("for the AR model every prompt of a batch must have the same number of "
                         f"tokens, got {sorted({len(e) for e in encoded})}")
    n_prompt = len(encoded[0])
    if n_prompt > length:
        raise ValueError(f"prompt is {n_prompt} tokens long, more than length={length}")
    gen = torch.Generator(device=device).manual_seed(seed_or_random(seed))
    B, L = len(prompts), length + 1
    x = torch.full((B, L), mask_id, dtype=torch.long, device=device)
    x[:, 0] = cls_id
    if n_prompt:
        x[:, 1:1 + n_prompt] = torch.tensor(encoded, device=device)
    fixed = x != mask_id
    conf = fixed.float()
    empty = torch.zeros_like(fixed)

    def frame(step, revealed):
        return Frame(step, x.cpu().clone(), (x == mask_id).cpu() & ~fixed.cpu(),
                     conf.cpu().clone(), revealed.cpu().clone(), empty.cpu().clone())

    start, frames, passes = frame(0, empty), [], 0
    eos_id = getattr(tok, "eos_token_id", None)
    finished = torch.zeros(B, dtype=torch.bool, device=device)

    def done_at(ids):  # (B, L) True from each row's first generated [EOS] on
        hit = (ids == eos_id) & ~fixed
        return hit.cumsum(1) > 0
    tick = time.perf_counter()
    model.eval()
    # transformers >= 5.2x names the KV cache `cache`; earlier releases `past_key_values`
    key = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    past, inputs = None, x[:, :1 + n_prompt]
    for pos in range(1 + n_prompt, L):  # one forward pass per generated token
        out = model(input_ids=inputs, use_cache=True, **{key: past})
        passes += 1
        past, logits = out[key], out.logits[:, -1].double()
        token = sample_filtered(ban(logits, info), gen, cfg.temperature, cfg.top_k, cfg.top_p)
        x[:, pos] = token
        conf[:, pos] = logits.softmax(-1).gather(-1, token[:, None])[:, 0].float()
        inputs = token[:, None]
        finished = finished | (token == eos_id) if eos_id is not None else finished
        if record:
            revealed = empty.clone()
            revealed[:, pos] = True
            frames.append(frame(len(frames) + 1, revealed))
            if callback_on_step_end is not None and callback_on_step_end(len(frames), frames[-1]):
                break
        if bool(finished.all()):
            break
    seconds = time.perf_counter() - tick
    if not cfg.record or not frames:
        frames = [frame(1, empty)]
    if eos_id is not None:  # after a row's [EOS], the rest of it is [EOS] too
        x[:, 1:] = torch.where(done_at(x)[:, 1:] & ~fixed[:, 1:] & (x[:, 1:] == mask_id),
                               eos_id, x[:, 1:])
    texts = decode_texts(tok, x, fixed)
    return Trajectory(texts, frames, start, fixed.cpu(), tok, "ar", passes, seconds)
