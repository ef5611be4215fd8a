"""Model factories: the tiny denoiser, its same-size GPT-2, and pretrained loading (offline)."""

from __future__ import annotations

import socket

import huggingface_hub.constants as hub_constants
import pytest
import torch
from transformers import GPT2LMHeadModel, ModernBertForMaskedLM

import diffusion_lab as dl
from diffusion_lab.models import SIZES, is_causal_lm, max_positions, param_count


@pytest.mark.parametrize("size", list(SIZES))
def test_tiny_mlm_is_a_global_attention_modernbert(tok, size):
    model = dl.tiny_mlm(tok, size=size, max_length=48)
    hidden, layers, heads = SIZES[size]
    cfg = model.config
    assert isinstance(model, ModernBertForMaskedLM) and not is_causal_lm(model)
    assert cfg.vocab_size == len(tok) == model.get_output_embeddings().out_features
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (hidden, layers,
                                                                                  heads)
    assert cfg.layer_types == ["full_attention"] * layers  # no sliding-window layer
    assert cfg.local_attention >= 48
    assert max_positions(model) == 48
    assert cfg.pad_token_id == tok.pad_token_id and cfg.cls_token_id == tok.cls_token_id


def test_tiny_mlm_sees_the_whole_sequence(tok):
    """Global attention: with one layer, the first slot's logits depend on the last token."""
    torch.manual_seed(0)
    model = dl.tiny_mlm(tok, size="xs", max_length=64).eval()
    model.model.layers = model.model.layers[:1]  # one layer: no hop-by-hop propagation
    ids = torch.full((1, 64), tok.convert_tokens_to_ids("a"))
    ids[0, 0] = tok.cls_token_id
    other = ids.clone()
    other[0, -1] = tok.convert_tokens_to_ids("h")
    with torch.no_grad():
        a, b = model(input_ids=ids).logits[0, 1], model(input_ids=other).logits[0, 1]
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("size", ["xs", "s"])
def test_tiny_ar_matches_the_denoisers_shape(tok, size):
    mlm, ar = dl.tiny_mlm(tok, size=size, max_length=48), dl.tiny_ar(tok, size=size, max_length=48)
    assert isinstance(ar, GPT2LMHeadModel) and is_causal_lm(ar)
    assert (ar.config.n_embd, ar.config.n_layer, ar.config.n_head) == (
        mlm.config.hidden_size, mlm.config.num_hidden_layers, mlm.config.num_attention_heads)
    assert ar.config.vocab_size == len(tok) and max_positions(ar) == 48
    assert ar.config.bos_token_id == tok.cls_token_id  # the [CLS] anchor is GPT-2's BOS
    # same width and depth: parameter counts within a factor of 2 (GPT-2's MLP is 4x, BERT's 2x)
    assert 0.5 < param_count(ar) / param_count(mlm) < 2


@pytest.mark.parametrize("factory", [dl.tiny_mlm, dl.tiny_ar])
def test_unknown_size_lists_valid_ones(tok, factory):
    with pytest.raises(ValueError) as err:
        factory(tok, size="huge")
    assert "'huge'" in str(err.value)
    assert all(repr(s) in str(err.value) for s in SIZES)


@pytest.mark.parametrize("max_length", [1, 0, 64.0])
def test_bad_max_length(tok, max_length):
    with pytest.raises(ValueError, match="max_length"):
        dl.tiny_mlm(tok, size="xs", max_length=max_length)


def test_is_causal_lm_refuses_a_plain_module():
    with pytest.raises(TypeError, match="PreTrainedModel"):
        is_causal_lm(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("causal", [False, True])
def test_load_pretrained_from_a_local_folder(tok, tmp_path, causal):
    torch.manual_seed(0)
    model = (dl.tiny_ar if causal else dl.tiny_mlm)(tok, size="xs", max_length=32).eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded, tok2 = dl.load_pretrained(str(tmp_path), causal=causal)
    assert type(loaded) is type(model)
    assert tok2.mask_token_id == tok.mask_token_id
    ids = torch.tensor([[tok.cls_token_id, 5, 6, 7, tok.mask_token_id]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, loaded.eval()(input_ids=ids).logits)


def test_load_pretrained_on_an_empty_folder_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="no loadable checkpoint"):
        dl.load_pretrained(str(tmp_path))


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No hub, an empty cache, and a socket that records (and refuses) any connection."""
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError(f"test is offline: refused connection to {address}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield attempts
    assert not attempts, f"the test touched the network: {attempts}"


@pytest.mark.parametrize("name, causal, hint", [
    ("roberta-base", False, "dl.tiny_mlm(tok)"),
    ("gpt2", True, "dl.tiny_ar(tok)"),
])
def test_load_pretrained_offline_names_the_alternative(offline, name, causal, hint):
    with pytest.raises(RuntimeError) as err:
        dl.load_pretrained(name, causal=causal)
    message = str(err.value)
    assert repr(name) in message
    assert "offline alternative" in message and hint in message


def test_load_pretrained_rejects_bad_names(tmp_path):
    with pytest.raises(TypeError, match="name"):
        dl.load_pretrained("")
    with pytest.raises(ValueError, match="does not exist"):
        dl.load_pretrained(str(tmp_path / "missing"))


def test_window_fallback_computes_what_all_global_layers_do():
    """transformers 5.15.0 (Colab, Aug 2026) rejects all-global ModernBERT layers; the fallback
    (sliding layers whose window covers every position, global RoPE base) gives the same logits."""
    import transformers

    from diffusion_lab import models

    tok = dl.CharTokenizer.from_texts(["hello world, the quick brown fox"])
    torch.manual_seed(0)
    full = dl.tiny_mlm(tok, size="xs", max_length=32).eval()
    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "max_position_embeddings", "pad_token_id", "bos_token_id",
            "cls_token_id", "sep_token_id", "eos_token_id")
    config = models._all_global_via_windows({k: getattr(full.config, k) for k in keys}, 32)
    assert "sliding_attention" in config.layer_types
    windowed = transformers.ModernBertForMaskedLM(config).eval()
    windowed.load_state_dict(full.state_dict())
    ids = torch.randint(0, len(tok), (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(full(input_ids=ids).logits, windowed(input_ids=ids).logits,
                              atol=1e-5)
