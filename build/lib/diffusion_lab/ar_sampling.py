"""Left-to-right sampling for the autoregressive baseline, recorded as a `Trajectory`.

One forward pass per token with a KV cache (``past_key_values``), so the race against diffusion
(`viz.race`) and the speed benchmark compare like with like.  Frames show the unwritten slots as
[MASK] so both kinds of trajectory animate the same way.
"""

from __future__ import annotations

import inspect
import time

import torch

from .trajectory import Frame, Trajectory


@torch.no_grad()
def generate_ar(model, tok, prompts, length, temperature, top_k, top_p, seed, record=True):
    """Sample ``length`` tokens (prompt included) per prompt; prompts of a batch must have the
    same number of tokens (rows are decoded in lock step)."""
    from .sampling import sample_filtered

    device = next(model.parameters()).device
    mask_id = tok.mask_token_id if tok.mask_token_id is not None else tok.pad_token_id
    cls_id = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
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
    gen = torch.Generator(device=device).manual_seed(
        seed if seed is not None else int(torch.randint(0, 2**31, (1,))))
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
    tick = time.perf_counter()
    model.eval()
    # transformers >= 5.2x names the KV cache `cache`; earlier releases `past_key_values`
    key = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    past, inputs = None, x[:, :1 + n_prompt]
    for pos in range(1 + n_prompt, L):  # one forward pass per generated token
        out = model(input_ids=inputs, use_cache=True, **{key: past})
        passes += 1
        past, logits = out[key], out.logits[:, -1].double()
        logits[:, list(tok.all_special_ids)] = float("-inf")
        token = sample_filtered(logits, gen, temperature, top_k, top_p)
        x[:, pos] = token
        conf[:, pos] = logits.softmax(-1).gather(-1, token[:, None])[:, 0].float()
        inputs = token[:, None]
        if record:
            revealed = empty.clone()
            revealed[:, pos] = True
            frames.append(frame(len(frames) + 1, revealed))
    seconds = time.perf_counter() - tick
    if not frames:
        frames = [frame(1, empty)]
    texts = tok.batch_decode(x[:, 1:].cpu().tolist(), skip_special_tokens=False,
                             clean_up_tokenization_spaces=False)
    return Trajectory(texts, frames, start, fixed.cpu(), tok, "ar", passes, seconds)
