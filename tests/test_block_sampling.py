"""Block-by-block decoding (diffusion_lab/block_sampling.py): the KV cache is exact — cached
and recomputed logits agree to 1e-5 on every block, for every strategy that runs inside a block
— while a bidirectional model's prefix changes under it; bad settings are refused by name."""

from __future__ import annotations

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab import block_diffusion as bd
from diffusion_lab import block_sampling as bs


@pytest.fixture(scope="module")
def tok():
    return dl.worlds.grammar.book_language().tokenizer()


def block_model(tok, block_size, shift, seed=0):
    torch.manual_seed(seed)
    return bd.as_block_model(dl.tiny_ar(tok, "xs", 17), block_size, shift)


class Checked(bs.KVCache):
    """The cached logits, each compared with a fresh recomputation of the whole prefix."""

    diffs: list[tuple[int, float]] = []

    def logits(self, x, b):
        cached = super().logits(x, b)
        fresh = bs.Recompute(self.model, self.info, x.shape[1]).logits(x, b)
        finite = torch.isfinite(fresh)
        assert torch.equal(finite, torch.isfinite(cached))
        Checked.diffs.append((b, (cached[finite] - fresh[finite]).abs().max().item()))
        return cached


@pytest.mark.parametrize("strategy", ["threshold", "low_confidence", "ancestral"])
@pytest.mark.parametrize("block_size, shift", [(1, True), (4, False), (4, True), (16, True)])
def test_cached_logits_equal_recomputed_ones_on_every_block(tok, monkeypatch, strategy,
                                                            block_size, shift):
    model = block_model(tok, block_size, shift)
    monkeypatch.setattr(bs, "KVCache", Checked)
    Checked.diffs = []
    run = bs.generate_blocks(model, tok, ["the dog", "", "a"], length=16, steps=16,
                             strategy=strategy, seed=0)
    blocks = {b for b, _ in Checked.diffs}
    want = {b for b in range(16 // block_size)}
    assert blocks == want, f"every block decoded and checked: {sorted(blocks)}"
    worst = max(d for _, d in Checked.diffs)
    assert worst < 1e-5, worst  # observed: ~1e-6 (float32 sums in another order)
    assert run.forward_passes == len(Checked.diffs)  # the cache costs no extra pass


@pytest.mark.parametrize("strategy", ["threshold", "low_confidence", "ancestral"])
def test_cached_and_recomputed_decoding_write_the_same_text(tok, strategy):
    model = block_model(tok, 4, True, seed=1)
    kw = dict(length=16, steps=8, strategy=strategy, seed=3, num_samples=4)
    cached = bs.generate_blocks(model, tok, ["the"], **kw)
    fresh = bs.generate_blocks(model, tok, ["the"], cache=False, **kw)
    assert cached.texts == fresh.texts
    assert cached.forward_passes == fresh.forward_passes


def test_a_bidirectional_prefix_changes_a_block_prefix_does_not(tok):
    """Why a cache is exact only for a block model: change a later token and look at the
    hidden states of the first block (what a cache would have stored)."""
    torch.manual_seed(0)
    mlm = dl.tiny_mlm(tok, "xs", 17)
    ids = torch.randint(6, len(tok), (1, 17))
    ids[0, 0] = tok.cls_token_id
    later = ids.clone()
    later[0, 10] = 7

    def states(model, x, **kw):
        return model(input_ids=x, output_hidden_states=True, **kw).hidden_states[-1][0, :5]

    assert (states(mlm, ids) - states(mlm, later)).abs().max() > 1e-3
    gpt = block_model(tok, 4, True)
    allow = bd.training_mask(17, 4, True)[17:, 17:]  # the clean half: block-causal
    mask = bd.attention_mask_for(gpt, allow, 1)
    assert torch.equal(states(gpt, ids, attention_mask=mask),
                       states(gpt, later, attention_mask=mask))


def test_dl_generate_decodes_a_block_model_and_stops_at_the_stop_token(tok):
    model = block_model(tok, 4, True)
    run = dl.generate(model, tok, [""], length=16, steps=16, strategy="threshold", seed=0,
                      num_samples=6)
    assert run.strategy == "threshold" and len(run.texts) == 6
    assert all("[MASK]" not in t for t in run.texts)
    eos = tok.convert_tokens_to_ids("[EOS]")
    stopped = bs.generate_blocks(model, tok, [""], length=16, steps=16, seed=0, num_samples=6,
                                 stop="[EOS]")
    ids = stopped.ids[:, 1:]
    after = (ids == eos).cumsum(1) > 0
    assert bool((ids[after] == eos).all()), "after a row's [EOS] every slot is [EOS]"
    assert stopped.passes_per_row.shape == (6,)
    assert int(stopped.passes_per_row.max()) <= stopped.forward_passes


def test_modernbert_block_model_decodes_without_a_cache(tok):
    torch.manual_seed(0)
    mlm = bd.as_block_model(dl.tiny_mlm(tok, "xs", 17), 4)
    with pytest.raises(ValueError, match="cache=False"):
        bs.generate_blocks(mlm, tok, [""], length=16, steps=8)
    run = bs.generate_blocks(mlm, tok, [""], length=16, steps=8, cache=False, seed=0)
    assert run.forward_passes <= 8 and "[MASK]" not in run.texts[0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(block_size=8), "schedule for a bidirectional model"),
    (dict(revisable=[0]), "revisable"),
    (dict(strategy="sundae"), "starts from random tokens"),
    (dict(steps=2), "steps=2 is fewer than the 4 blocks"),
])
def test_bad_settings_are_named(tok, kwargs, message):
    model = block_model(tok, 4, True)
    with pytest.raises(ValueError, match=message):
        dl.generate(model, tok, ["the"], **{"length": 16, "steps": 16, **kwargs})
