"""Left-to-right sampling for the autoregressive baseline, recorded as a `Trajectory`.

One forward pass per token with a KV cache (``past_key_values``), so the race against diffusion
(`viz.race`) and the speed benchmark compare like with like.  Frames show the unwritten slots as
[MASK] so both kinds of trajectory animate the same way.  A row stops at its first stop token
(the tokenizer's ``eos_token``, or the option ``stop="[EOS]"`` for a vocabulary whose end marker
is an ordinary word, as the grammar's): the slots after it are filled with that token at once,
so the frames count each row's passes as they count a diffusion sampler's
(`grammar_metrics.passes_per_row`), and sampling ends when every row has stopped: an AR model
pays only for the answer it writes.
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
    unknown = sorted(set(cfg.options) - {"stop"})
    if unknown:
        raise ValueError(f"strategy 'ar' has no option {unknown[0]!r}; it takes only 'stop' (a "
                         "token that ends a row, e.g. stop='[EOS]')")
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
    eos_id = stop_token_id(tok, cfg.options.get("stop"))
    finished = torch.zeros(B, dtype=torch.bool, device=device)

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
        writing = ~finished  # rows that stopped keep their stop-token padding
        x[:, pos] = torch.where(writing, token, x[:, pos])
        conf[:, pos] = torch.where(
            writing, logits.softmax(-1).gather(-1, token[:, None])[:, 0].float(), conf[:, pos])
        inputs = x[:, pos:pos + 1]
        stops = writing & (token == eos_id) if eos_id is not None else torch.zeros_like(writing)
        if eos_id is not None:  # a row that stops now is padded with its stop token
            x[stops, pos + 1:] = eos_id
            conf[stops, pos + 1:] = 1.0
        finished = finished | stops
        if record:
            revealed = empty.clone()
            revealed[:, pos] = writing
            revealed[stops, pos + 1:] = True
            frames.append(frame(len(frames) + 1, revealed))
            if callback_on_step_end is not None and callback_on_step_end(len(frames), frames[-1]):
                break
        if bool(finished.all()):
            break
    seconds = time.perf_counter() - tick
    if not cfg.record or not frames:
        frames = [frame(1, empty)]
    texts = decode_texts(tok, x, fixed)
    return Trajectory(texts, frames, start, fixed.cpu(), tok, "ar", passes, seconds)


def stop_token_id(tok, stop: str | None) -> int | None:
    """The id that ends an AR row: ``stop``'s (a token of ``tok``), else the ``eos_token``'s."""
    if stop is None:
        return getattr(tok, "eos_token_id", None)
    if not isinstance(stop, str) or not stop:
        raise TypeError(f"stop must be a token (a non-empty str), got {stop!r}")
    ids = tok.convert_tokens_to_ids([stop])
    if not ids or ids[0] is None or (ids[0] == tok.unk_token_id and stop != tok.unk_token):
        raise ValueError(f"stop={stop!r} is not a token of this tokenizer's vocabulary")
    return ids[0]
