"""Model factories: a tiny masked LM (the denoiser), a matching GPT-2 (the AR baseline), pretrained.

Every model here is a plain ``transformers`` model, saved with ``save_pretrained`` (safetensors)
and reloaded with ``from_pretrained`` — nothing custom to pickle.

Why ModernBERT and not BERT for the tiny denoiser: measured on 2 CPU cores, char-level
Shakespeare, 150 s of MDLM training at d=128 with 4 layers, a post-LN ``BertForMaskedLM`` stayed at
the unigram level (held-out ELBO 4.86 bits/char against a unigram entropy of 4.76) whatever the
learning rate, while the pre-LN, RoPE ``ModernBertForMaskedLM`` with 100 warmup steps reached 3.50
(a same-size GPT-2: 3.39).  RoPE has no absolute position, so every sequence starts with a [CLS]
anchor that is never masked (see ``data.random_blocks`` and ``sampling.generate``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    ModernBertConfig,
    ModernBertForMaskedLM,
    PreTrainedModel,
)

from .data import require_mask_token

# hidden size, layers, heads: the same shapes for the denoiser and the AR baseline.
SIZES = {"xs": (64, 2, 2), "s": (128, 4, 4), "m": (256, 6, 8), "l": (384, 6, 6)}
PRETRAINED_HINT = (
    'offline alternative: dl.zoo.pretrained("mlm"), the tiny BERT of chapter 1 (cached), or '
    "dl.tiny_mlm(tok) trained with dl.train, or a local folder written with save_pretrained"
)
CAUSAL_HINT = (
    'offline alternative: dl.zoo.pretrained("ar"), the book\'s tiny GPT-2 (cached), or '
    "dl.tiny_ar(tok) trained with objective='ar', or a local folder written with save_pretrained"
)


def _check_size(size: str, max_length: int) -> tuple[int, int, int]:
    if size not in SIZES:
        raise ValueError(f"size must be one of {list(SIZES)}, got {size!r}")
    if not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an int >= 2 (tokens incl. [CLS]), got {max_length!r}")
    return SIZES[size]


def tiny_mlm(tok, size: str = "s", max_length: int = 128) -> ModernBertForMaskedLM:
    """A randomly initialised pre-LN RoPE masked LM (``ModernBertForMaskedLM``) for ``tok``.

    ``max_length`` counts every position the model will see, the [CLS] anchor included.  All layers
    use global attention (ModernBERT's sliding window only pays off on long inputs).
    """
    hidden, layers, heads = _check_size(size, max_length)
    require_mask_token(tok)
    shape = dict(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=max_length,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.cls_token_id,
        cls_token_id=tok.cls_token_id,
        sep_token_id=tok.sep_token_id,
        eos_token_id=tok.sep_token_id,
    )
    try:
        config = ModernBertConfig(**shape, local_attention=max_length, global_attn_every_n_layers=1)
    except Exception as err:  # noqa: BLE001 - transformers' strict-dataclass error type varies
        if "rope_parameters" not in str(err):
            raise
        config = _all_global_via_windows(shape, max_length)
    return ModernBertForMaskedLM(config)


def _all_global_via_windows(shape: dict, max_length: int) -> ModernBertConfig:
    """The same all-global model where transformers rejects all-global layers (5.15.0, Colab's
    August 2026 version: its RoPE check fails when no layer is ``sliding_attention``).

    ModernBERT's default pattern keeps its "sliding" layers, but with a window of 2 x
    ``max_length`` (every position sees every other) and the global layers' RoPE base: each layer
    then computes exactly what a global one does.
    """
    theta = ModernBertConfig.default_theta["global"]
    return ModernBertConfig(**shape, local_attention=2 * max_length, rope_parameters={
        "full_attention": {"rope_type": "default", "rope_theta": theta},
        "sliding_attention": {"rope_type": "default", "rope_theta": theta}})


def tiny_ar(tok, size: str = "s", max_length: int = 128) -> GPT2LMHeadModel:
    """A GPT-2 of the same width and depth as ``tiny_mlm(tok, size)``: the autoregressive baseline.

    Its sequences start with the same [CLS] anchor, which plays the part of GPT-2's BOS token.
    """
    hidden, layers, heads = _check_size(size, max_length)
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=max_length,
        n_embd=hidden,
        n_layer=layers,
        n_head=heads,
        resid_pdrop=0.0,  # no dropout: the denoiser has none either, and runs are short
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return GPT2LMHeadModel(config)


def is_causal_lm(model) -> bool:
    """True for left-to-right models (GPT-2 and friends), False for masked LMs."""
    if not isinstance(model, PreTrainedModel):
        raise TypeError(f"model must be a transformers PreTrainedModel, got {type(model).__name__}")
    name = type(model).__name__
    return "CausalLM" in name or "LMHead" in name or bool(getattr(model.config, "is_decoder", 0))


def max_positions(model) -> int:
    """How many positions the model can see (its position table or RoPE limit)."""
    cfg = model.config
    for key in ("max_position_embeddings", "n_positions"):
        value = getattr(cfg, key, None)
        if value:
            # RoBERTa reserves two slots of its position table for the padding offset.
            return value - 2 if cfg.model_type in ("roberta", "xlm-roberta") else value
    return 512


def param_count(model) -> int:
    """Trainable parameters, embeddings included."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save(model, tok, path: str | os.PathLike) -> Path:
    """``save_pretrained`` the model (safetensors) and its tokenizer into ``path``."""
    path = Path(path)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def load(path: str | os.PathLike, device: torch.device | str | None = None):
    """Reload ``(model, tokenizer)`` written by `save` (or any local ``save_pretrained`` folder)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValueError(
            f"path {str(path)!r} is not a saved model folder (no config.json); "
            "write one with dl.models.save(model, tok, path)"
        )
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    causal = config.model_type in ("gpt2",) or bool(getattr(config, "is_decoder", False))
    auto = AutoModelForCausalLM if causal else AutoModelForMaskedLM
    model = auto.from_pretrained(path, use_safetensors=True)
    tok = AutoTokenizer.from_pretrained(path)
    return model.to(device or "cpu"), tok


def load_pretrained(name: str, *, causal: bool = False, attn_implementation: str | None = None):
    """A pretrained checkpoint by name (``"roberta-base"``, ``"bert-base-uncased"``, ``"gpt2"``)
    or local folder, as ``(model, tokenizer)``; never ``trust_remote_code``.

    Offline, a hub name raises ``RuntimeError`` naming the offline alternative.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str (hub name or folder), got {name!r}")
    local = Path(name).is_dir()
    if not local and (Path(name).is_absolute() or name.startswith(".")):
        raise ValueError(f"checkpoint folder {name!r} does not exist")
    if local and not (Path(name) / "config.json").is_file():
        raise ValueError(f"folder {name!r} holds no loadable checkpoint (no config.json)")
    auto = AutoModelForCausalLM if causal else AutoModelForMaskedLM
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        tok = AutoTokenizer.from_pretrained(name, trust_remote_code=False)
        model = auto.from_pretrained(name, trust_remote_code=False, use_safetensors=None, **kwargs)
    except OSError as err:
        if local:
            raise ValueError(f"folder {name!r} holds no loadable checkpoint: {err}") from err
        raise RuntimeError(
            f"could not load {name!r} from the Hugging Face hub (offline?): {err}. "
            + (CAUSAL_HINT if causal else PRETRAINED_HINT)
        ) from err
    if not causal:
        require_mask_token(tok)
    return model, tok
