"""The seed article's sampler, kept as a reference: same algorithm as dl.generate("random")."""

from __future__ import annotations

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab.reference_samplers import filter_one_position, seed_article_sampler
from diffusion_lab.sampling import filter_logits


@pytest.fixture(scope="module")
def tok():
    return dl.CharTokenizer.from_texts(["abcdefghij klmnop.\n"])


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    return dl.tiny_mlm(tok, size="xs", max_length=33).eval()


@pytest.mark.parametrize("top_k, top_p", [(50, 0.95), (5, 0.9), (3, 1.0), (20, 0.5)])
def test_one_position_filter_equals_the_vectorised_one(top_k, top_p):
    logits = torch.randn(8, 40, generator=torch.Generator().manual_seed(top_k))
    vectorised = filter_logits(logits, 1.0, top_k, top_p).exp()
    for row in range(logits.shape[0]):
        one = filter_one_position(logits[row], top_k, top_p)
        assert torch.allclose(one.double(), vectorised[row], atol=1e-6)
        assert (one > 0).sum() <= min(top_k, logits.shape[1])


def test_one_step_argmax_matches_dl_generate(model, tok):
    """steps=1, top_k=1: both fill every slot with the argmax of one forward pass."""
    prompts = ["ab", "cd ef"]
    ours = dl.generate(model, tok, prompts, length=24, steps=1, strategy="random", top_k=1,
                       top_p=0.95, seed=0, record=False).texts
    theirs = seed_article_sampler(model, tok, prompts, length=24, steps=1, top_k=1, seed=0)
    assert theirs == ours


def test_keeps_prompts_and_leaves_no_mask(model, tok):
    prompts = ["abc", "k"]
    texts = seed_article_sampler(model, tok, prompts, length=20, steps=10, seed=3)
    assert [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts] == [20, 20]
    assert all(t.startswith(p) for t, p in zip(texts, prompts, strict=True))
    banned = tok.convert_ids_to_tokens(dl.denoiser.banned_token_ids(tok))
    assert not any(s in t for t in texts for s in banned)


def test_seeded(model, tok):
    run = [seed_article_sampler(model, tok, ["a"], length=16, steps=4, seed=7) for _ in range(2)]
    assert run[0] == run[1]


def test_validates_like_generate(model, tok):
    with pytest.raises(ValueError, match="length"):
        seed_article_sampler(model, tok, ["a"], length=40)
    with pytest.raises(ValueError, match="top_k"):
        seed_article_sampler(model, tok, ["a"], length=8, top_k=None)
    with pytest.raises(TypeError, match="prompts"):
        seed_article_sampler(model, tok, "a", length=8)
