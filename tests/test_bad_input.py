"""Bad input fails early and says what to do: each case checks the exception type and that the
message names the argument and the offending value (and, for names, the valid choices)."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

import diffusion_lab as dl
from diffusion_lab import strategies


@pytest.fixture(scope="module")
def no_mask_tok():
    """A fast tokenizer built without a mask token (like GPT-2's)."""
    vocab = {"[UNK]": 0, "[PAD]": 1, "[CLS]": 2, **{c: 3 + i for i, c in enumerate("abcdefgh ")}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]")


def raises(exc: type[Exception], call, *needles: str) -> str:
    """Run ``call``, require ``exc``, and require every needle in the message."""
    with pytest.raises(exc) as err:
        call()
    message = str(err.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


TRAIN = dict(steps=2, batch_size=2, seq_len=16, progress=False, device="cpu")


def test_unknown_objective(mlm, tok):
    raises(ValueError, lambda: dl.train(mlm, tok, "abc " * 20, objective="diffusion", **TRAIN),
           "objective", "'diffusion'", *dl.objectives.OBJECTIVES)


def test_unknown_strategy(mlm, tok):
    raises(ValueError, lambda: dl.generate(mlm, tok, [""], length=8, steps=2, strategy="greedy"),
           "strategy", "'greedy'", *dl.STRATEGIES)


def test_unknown_corpus():
    raises(ValueError, lambda: dl.load_corpus("shakespear"), "name", "'shakespear'",
           *dl.data.CORPORA)


@pytest.mark.parametrize("steps", [0, -3])
def test_train_steps_not_positive(mlm, tok, steps):
    kwargs = {**TRAIN, "steps": steps}
    raises(ValueError, lambda: dl.train(mlm, tok, "abc " * 20, **kwargs), "steps", repr(steps))


@pytest.mark.parametrize("steps", [0, -1])
def test_generate_steps_not_positive(mlm, tok, steps):
    raises(ValueError, lambda: dl.generate(mlm, tok, [""], length=8, steps=steps),
           "steps", repr(steps))


@pytest.mark.parametrize("length", [0, -5])
def test_length_not_positive(mlm, tok, length):
    raises(ValueError, lambda: dl.generate(mlm, tok, [""], length=length, steps=2),
           "length", repr(length))


@pytest.mark.parametrize("which", ["mlm", "ar"])
def test_length_beyond_the_models_positions(mlm, ar, tok, which):
    model = mlm if which == "mlm" else ar  # 64 positions, one of them the anchor
    raises(ValueError, lambda: dl.generate(model, tok, [""], length=64, steps=2),
           "length=64", "64 positions", "length <= 63")
    dl.generate(model, tok, [""], length=63, steps=1, record=False)  # the limit itself works


@pytest.mark.parametrize("which", ["mlm", "ar"])
def test_prompt_longer_than_length(mlm, ar, tok, which):
    model = mlm if which == "mlm" else ar
    raises(ValueError, lambda: dl.generate(model, tok, ["abcdefgh"], length=5, steps=2),
           "prompt", "8 tokens", "length=5")


@pytest.mark.parametrize("temperature", [0, -1.0])
def test_temperature_not_positive(mlm, tok, temperature):
    raises(ValueError, lambda: dl.generate(mlm, tok, [""], length=8, temperature=temperature),
           "temperature", repr(temperature))


@pytest.mark.parametrize("top_p", [0, 0.0, 1.5])
def test_top_p_outside_unit_interval(mlm, tok, top_p):
    raises(ValueError, lambda: dl.generate(mlm, tok, [""], length=8, top_p=top_p),
           "top_p", repr(top_p), "(0, 1]")


def test_top_k_not_positive(mlm, tok):
    raises(ValueError, lambda: dl.generate(mlm, tok, [""], length=8, top_k=0), "top_k", "0")


def test_tokenizer_without_mask_to_tiny_mlm(no_mask_tok):
    raises(ValueError, lambda: dl.tiny_mlm(no_mask_tok, size="xs"),
           "mask token", "mask_token is None")


def test_tokenizer_without_mask_to_generate(mlm, no_mask_tok):
    raises(ValueError, lambda: dl.generate(mlm, no_mask_tok, ["ab"], length=8, steps=2),
           "mask token", "mask_token is None")


def test_tokenizer_without_mask_to_train(mlm, no_mask_tok):
    raises(ValueError, lambda: dl.train(mlm, no_mask_tok, "abc " * 20, **TRAIN),
           "mask token", "mask_token is None")


@pytest.mark.parametrize("texts, exc", [("", ValueError), ("   \n", ValueError),
                                        ([], TypeError), (["", " "], ValueError)])
def test_empty_corpus_to_train(mlm, tok, texts, exc):
    raises(exc, lambda: dl.train(mlm, tok, texts, **TRAIN), "texts", repr(texts))


def test_missing_checkpoint_folder(tmp_path):
    missing = tmp_path / "no" / "such" / "model"
    raises(ValueError, lambda: dl.models.load(missing), "path", repr(str(missing)))


def test_missing_pretrained_folder(tmp_path):
    missing = str(tmp_path / "nothing-here")
    raises(ValueError, lambda: dl.load_pretrained(missing), "checkpoint folder", repr(missing))


def test_bad_profile_name():
    raises(ValueError, lambda: dl.profile("colab"), "profile", "'colab'", "cpu", "gpu", "smoke")


def test_bad_model_size(tok):
    raises(ValueError, lambda: dl.tiny_mlm(tok, size="xl"), "size", "'xl'", "'xs'", "'l'")


@pytest.mark.parametrize("objective", ["mdlm", "mlm"])
def test_masked_objective_on_a_causal_model(ar, tok, objective):
    raises(ValueError, lambda: dl.train(ar, tok, "abc " * 20, objective=objective, **TRAIN),
           f"objective {objective!r}", "GPT2LMHeadModel", "objective='ar'")


def test_ar_objective_on_a_masked_model(mlm, tok):
    raises(ValueError, lambda: dl.train(mlm, tok, "abc " * 20, objective="ar", **TRAIN),
           "objective 'ar'", "ModernBertForMaskedLM")


def test_remdm_unknown_variant(mlm, tok):
    raises(ValueError, lambda: dl.generate(mlm, tok, [""], length=8, steps=4, strategy="remdm",
                                           variant="wild"),
           "variant", "'wild'", "'cap'", "'rescale'", "'conf'", "'loop'")


def test_remdm_loop_needs_four_steps(mlm, tok):
    raises(ValueError, lambda: dl.generate(mlm, tok, [""], length=8, steps=3, strategy="remdm",
                                           variant="loop"), "steps >= 4", "3")


def test_seq_len_beyond_the_models_positions(mlm, tok):
    kwargs = {**TRAIN, "seq_len": 65}
    raises(ValueError, lambda: dl.train(mlm, tok, "abc " * 40, **kwargs), "seq_len=65", "64")


def test_resume_without_checkpoint_dir(mlm, tok):
    raises(ValueError, lambda: dl.train(mlm, tok, "abc " * 20, resume=True, **TRAIN),
           "resume", "checkpoint_dir")


def test_prompts_must_be_a_list(mlm, tok):
    raises(TypeError, lambda: dl.generate(mlm, tok, "ab", length=8), "prompts", "'ab'")


def test_get_strategy_lists_every_name():
    msg = raises(ValueError, lambda: strategies.get_strategy("nope"), "'nope'")
    assert all(name in msg for name in dl.STRATEGIES)
