"""Training objectives: every loss trains, refuses the wrong model, and has the right scale.

The scale check uses a denoiser that knows nothing — uniform over the content tokens.  Its NLL is
exactly log V per token, so BERT's loss, the seed article's loss, SUNDAE's and the AR loss must
all read log V, and the MDLM ELBO must read log V *in expectation* (it is a bound that is tight
for a model that ignores its input).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab import noise, objectives
from diffusion_lab.objectives import OBJECTIVES, TokenInfo, compute_loss, denoiser_logits

CHARS = "abcdefghij"
V_CONTENT = len(CHARS)


@pytest.fixture(scope="module")
def tok():
    return dl.CharTokenizer.from_texts([CHARS])


def batch_of(tok, batch: int, length: int, seed: int = 0) -> torch.Tensor:
    """(batch, length) random content ids behind the [CLS] anchor."""
    content = noise.content_token_ids(tok)
    gen = torch.Generator().manual_seed(seed)
    ids = content[torch.randint(0, len(content), (batch, length), generator=gen)]
    ids[:, 0] = tok.cls_token_id
    return ids


def model_for(objective: str, tok):
    torch.manual_seed(0)
    factory = dl.tiny_ar if objective == "ar" else dl.tiny_mlm
    model = factory(tok, size="xs", max_length=64)
    if objective == "block_diffusion":  # a block model: the objective reads its block size
        dl.block_diffusion.as_block_model(model, block_size=8)
    if objective == "edit_flow":  # an edit model: insertion, deletion and substitution rates
        model = dl.edit_model.tiny_edit(tok, size="xs", max_length=64)
    return model


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_objective_gives_a_finite_positive_scalar_with_gradients(tok, objective):
    model = model_for(objective, tok)
    ids = batch_of(tok, 8, 32)
    loss = compute_loss(objective, model, ids, tok, generator=torch.Generator().manual_seed(0))
    assert loss.dim() == 0
    assert torch.isfinite(loss) and loss.item() > 0
    # an untrained model is about as good as uniform over the vocabulary: a loose sanity band
    # (Edit Flows' loss is a rate loss summed over edits, not a cross-entropy per token)
    if objective != "edit_flow":
        assert 0.3 * math.log(len(tok)) < loss.item() < 5 * math.log(len(tok))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads, "no parameter received a gradient"
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


@pytest.mark.parametrize("objective", ["mlm", "variable", "mdlm", "sundae"])
def test_same_generator_same_loss(tok, objective):
    model = model_for(objective, tok)
    ids = batch_of(tok, 8, 32)
    with torch.no_grad():
        a, b, c = (compute_loss(objective, model, ids, tok,
                                generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2))
    assert a.item() == b.item()
    assert a.item() != c.item()  # the noise really comes from the generator


def test_unknown_objective_lists_valid_ones(tok):
    with pytest.raises(ValueError) as err:
        compute_loss("elbo", model_for("mdlm", tok), batch_of(tok, 2, 8), tok)
    assert "'elbo'" in str(err.value)
    for name in OBJECTIVES:
        assert name in str(err.value)


def test_ar_objective_on_a_masked_lm_is_refused(tok):
    with pytest.raises(ValueError, match="causal LM"):
        compute_loss("ar", model_for("mdlm", tok), batch_of(tok, 2, 8), tok)


@pytest.mark.parametrize("objective", ["mdlm", "mlm", "variable", "sundae"])
def test_diffusion_objectives_on_gpt2_are_refused(tok, objective):
    with pytest.raises(ValueError, match="masked LM") as err:
        compute_loss(objective, model_for("ar", tok), batch_of(tok, 2, 8), tok)
    assert "GPT2LMHeadModel" in str(err.value)


def uniform_over_content(model, tok):
    """Patch ``model``: logits uniform over the content tokens, whatever the input."""
    special = list(tok.all_special_ids)

    def forward(input_ids, **kwargs):
        logits = torch.zeros(*input_ids.shape, len(tok))
        logits[..., special] = float("-inf")
        return SimpleNamespace(logits=logits)

    model.forward = forward
    return model


@pytest.mark.parametrize("objective", ["mlm", "variable", "sundae", "ar"])
def test_losses_of_a_know_nothing_model_are_log_v(tok, objective):
    model = uniform_over_content(model_for(objective, tok), tok)
    ids = batch_of(tok, 16, 48)
    with torch.no_grad():
        loss = compute_loss(objective, model, ids, tok, generator=torch.Generator().manual_seed(3))
    assert loss.item() == pytest.approx(math.log(V_CONTENT), rel=1e-5)


def test_mdlm_elbo_of_a_know_nothing_model_is_log_v_in_expectation(tok):
    model = uniform_over_content(model_for("mdlm", tok), tok)
    ids = batch_of(tok, 512, 64)
    with torch.no_grad():
        values = [compute_loss("mdlm", model, ids, tok,
                               generator=torch.Generator().manual_seed(s)).item() for s in range(4)]
    mean = sum(values) / len(values)
    # measured: within about 1% (the 1/t weight makes single draws noisy near t = eps)
    assert mean == pytest.approx(math.log(V_CONTENT), rel=0.05)


def test_mdlm_scores_only_free_slots(tok):
    """A prompt marked ``fixed`` is never masked, so a perfect-on-prompt model is not rewarded."""
    model = uniform_over_content(model_for("mdlm", tok), tok)
    ids = batch_of(tok, 4, 16)
    all_fixed = torch.ones_like(ids, dtype=torch.bool)
    with torch.no_grad():
        loss = compute_loss("mdlm", model, ids, tok, fixed=all_fixed,
                            generator=torch.Generator().manual_seed(0))
    assert loss.item() == 0.0


def test_subs_denoiser_never_puts_mass_on_mask_or_cls(tok):
    model = model_for("mdlm", tok)
    info = TokenInfo.from_tokenizer(tok)
    ids = batch_of(tok, 4, 24)
    ids[:, 5:15] = tok.mask_token_id
    with torch.no_grad():
        probs = denoiser_logits(model, ids, info).softmax(-1)
    assert probs[..., tok.mask_token_id].max().item() == 0.0
    assert probs[..., tok.cls_token_id].max().item() == 0.0
    assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[:2]))


def test_token_info_refuses_a_tokenizer_without_mask():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocab={"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    plain = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    with pytest.raises(ValueError, match="mask token"):
        objectives.TokenInfo.from_tokenizer(plain)
