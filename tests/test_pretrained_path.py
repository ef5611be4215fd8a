"""Chapter 7's two paths without a network.

* the online path's library calls, against checkpoint folders this file writes itself with
  ``save_pretrained``: a tiny ``RobertaForMaskedLM`` (``<s>``/``<mask>`` tokenizer, as
  ``roberta-base``) and a tiny GPT-2 (no padding token, as ``gpt2``) sharing one byte-level BPE;
* the errors that send the chapter down the offline path (``roberta-base``, ``gpt2``,
  ``"wikitext-2"`` while offline), which must name the offline alternative;
* the offline path end to end at smoke size: the shared BERT and judge from the zoo, a fine-tune
  with the ten rates that is interrupted and resumed, the article's sampler settings, the judge.

Every test runs with the hub switched off and a socket guard that fails the test on any
connection attempt.
"""

from __future__ import annotations

import copy
import json
import math
import socket

import huggingface_hub.constants as hub_constants
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPT2Tokenizer,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaTokenizer,
)

import diffusion_lab as dl

LENGTH = 32  # tokens generated per sample (prompt included)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No hub, an empty HF cache, and sockets that record (and refuse) every connection."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[1:] or args)
        raise OSError("test is offline: no network")

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    try:  # `datasets` is optional (the "online" extra); when present it reads its own flags
        import datasets.config as ds_config

        monkeypatch.setattr(ds_config, "HF_HUB_OFFLINE", True, raising=False)
        monkeypatch.setattr(ds_config, "HF_DATASETS_OFFLINE", True, raising=False)
    except ImportError:
        pass
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts
    assert not attempts, f"the test touched the network: {attempts}"


@pytest.fixture(scope="module")
def text():
    return dl.load_corpus("shakespeare", max_chars=60_000)


@pytest.fixture(scope="module")
def bpe(text):
    """(vocab, merges) of a 400-token byte-level BPE with RoBERTa's and GPT-2's special tokens."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, show_progress=False,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator([text], trainer=trainer)
    state = json.loads(backend.to_str())["model"]
    return state["vocab"], [tuple(m) for m in state["merges"]]


@pytest.fixture
def roberta_folder(bpe, tmp_path):
    """A tiny RoBERTa masked LM and its tokenizer, written with save_pretrained."""
    torch.manual_seed(0)
    tok = RobertaTokenizer(vocab=bpe[0], merges=bpe[1])
    config = RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=64,
                           max_position_embeddings=LENGTH + 1 + 2,  # + RoBERTa's pad offset
                           pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id)
    model = RobertaForMaskedLM(config).eval()
    folder = tmp_path / "tiny-roberta"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder, model, tok


@pytest.fixture
def gpt2_folder(bpe, tmp_path):
    """A tiny GPT-2 and its tokenizer (no pad token, as the real one), via save_pretrained."""
    torch.manual_seed(0)
    tok = GPT2Tokenizer(vocab=bpe[0], merges=bpe[1], unk_token="<|endoftext|>",
                        bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    config = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=1, n_head=2,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = GPT2LMHeadModel(config).eval()
    folder = tmp_path / "tiny-gpt2"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder, model, tok


# --- the online path's calls, against local folders -------------------------------------------

def test_load_pretrained_reads_a_roberta_folder(roberta_folder):
    folder, model, tok = roberta_folder
    loaded, tok2 = dl.load_pretrained(str(folder))
    assert type(loaded) is RobertaForMaskedLM
    assert (tok2.mask_token, tok2.cls_token) == ("<mask>", "<s>")
    assert tok2.mask_token_id == tok.mask_token_id and len(tok2) == len(tok)
    ids = torch.tensor([[tok.cls_token_id, 50, 60, 70, tok.mask_token_id]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, loaded.eval()(input_ids=ids).logits)


def test_load_pretrained_reads_a_gpt2_folder(gpt2_folder):
    folder, model, tok = gpt2_folder
    loaded, tok2 = dl.load_pretrained(str(folder), causal=True)
    assert type(loaded) is GPT2LMHeadModel and dl.models.is_causal_lm(loaded)
    assert tok2.pad_token_id is None  # as gpt2's: the chapter sets pad = eos before judging
    ids = torch.tensor([[tok.bos_token_id, 50, 60, 70]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, loaded.eval()(input_ids=ids).logits)


def test_a_roberta_checkpoint_fine_tunes_and_generates_like_the_article(
        roberta_folder, gpt2_folder, text, tmp_path):
    """The online recipe's calls: fine-tune with the ten rates (checkpointed), sample with the
    article's settings after a prompt, and score the samples with a GPT-2 judge whose tokenizer
    only shares the BPE (different special tokens, no pad)."""
    mlm, rtok = dl.load_pretrained(str(roberta_folder[0]))
    judge, gtok = dl.load_pretrained(str(gpt2_folder[0]), causal=True)
    gtok.pad_token = gtok.eos_token
    hist = dl.train(mlm, rtok, text, objective="variable", steps=4, batch_size=4,
                    seq_len=LENGTH + 1, lr=1e-3, warmup=1, checkpoint_dir=tmp_path / "ckpt",
                    checkpoint_every=2, resume=True, progress=False, device="cpu")
    assert hist.steps == 4 and all(math.isfinite(v) for v in hist.loss)
    assert dl.checkpoint.latest_checkpoint(tmp_path / "ckpt").name == "step-000004"
    prompt = "ROMEO: But"
    traj = dl.generate(mlm, rtok, [prompt, prompt], length=LENGTH, steps=10, strategy="random",
                       top_k=50, top_p=0.95, seed=0, record=False)
    assert traj.forward_passes <= 10 and traj.ids.shape == (2, LENGTH + 1)
    assert (traj.ids[:, 0] == rtok.cls_token_id).all(), "<s> is the anchor"
    assert not torch.isin(traj.ids[:, 1:], torch.tensor(rtok.all_special_ids)).any()
    assert all(sample.startswith(prompt) for sample in traj.texts)
    bits = dl.metrics.judge_bits_per_token(judge, gtok, traj.texts)
    assert 0 < bits < 2 * math.log2(len(gtok))
    ar = dl.generate(judge, gtok, [prompt], length=LENGTH, top_k=50, top_p=0.95, seed=0)
    n_prompt = len(gtok(prompt)["input_ids"])
    assert ar.texts[0].startswith(prompt) and ar.forward_passes == LENGTH - n_prompt


# --- the errors that send the chapter down the offline path --------------------------------------

@pytest.mark.parametrize("name, causal, alternative", [
    ("roberta-base", False, 'dl.zoo.pretrained("mlm")'),
    ("bert-base-uncased", False, 'dl.zoo.pretrained("mlm")'),
    ("gpt2", True, 'dl.zoo.pretrained("ar")'),
])
def test_hub_checkpoints_offline_raise_runtime_error_naming_the_alternative(name, causal,
                                                                           alternative):
    with pytest.raises(RuntimeError) as err:
        dl.load_pretrained(name, causal=causal)
    message = str(err.value)
    assert repr(name) in message and "offline alternative" in message
    assert alternative in message


@pytest.mark.parametrize("name", ["wikitext-2", "tinystories"])
def test_online_corpora_offline_raise_corpus_unavailable_naming_the_alternative(name):
    with pytest.raises(dl.data.CorpusUnavailableError) as err:
        dl.load_corpus(name)
    assert isinstance(err.value, RuntimeError)  # the chapter catches both in one clause
    message = str(err.value)
    assert repr(name) in message and 'offline alternative is load_corpus("shakespeare")' in message


# --- the offline path, end to end, at smoke size --------------------------------------------------

def test_offline_path_end_to_end_at_smoke_size(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUSION_LAB_CACHE", str(tmp_path / "cache"))
    prof = dl.profile("smoke")
    bert, tok, info = dl.zoo.pretrained("mlm", prof, progress=False)  # trained: cache is empty
    assert info["trained_now"]
    bert, tok, info = dl.zoo.pretrained("mlm", prof, progress=False)  # then loaded
    assert not info["trained_now"] and info["steps"] == prof.train_steps
    judge, _, _ = dl.zoo.pretrained("ar", prof, progress=False)
    train_text, valid_text = dl.zoo.corpus(prof)
    L = prof.seq_len - 1
    prompts = [valid_text[i * 997:i * 997 + 16] for i in range(prof.num_samples)]
    article = dict(steps=10, strategy="random", top_k=50, top_p=0.95, record=False)

    # fine-tune with the ten rates; a disconnect after step 6 and a resume from the checkpoint
    args = dict(objective="variable", steps=prof.quick_steps, batch_size=prof.batch_size,
                seq_len=prof.seq_len, lr=prof.lr, warmup=1, seed=0, progress=False,
                checkpoint_dir=tmp_path / "finetune", checkpoint_every=4)

    def disconnect(step, history, model):
        if step == 6:
            raise KeyboardInterrupt

    student = copy.deepcopy(bert)
    with pytest.raises(KeyboardInterrupt):
        dl.train(student, tok, train_text, callbacks=[disconnect], **args)
    seen = []
    student = copy.deepcopy(bert)
    hist = dl.train(student, tok, train_text, resume=True,
                    callbacks=[lambda step, h, m: seen.append(step)], **args)
    assert seen == list(range(5, prof.quick_steps + 1)), "resumes after the step-4 checkpoint"
    assert hist.steps == prof.quick_steps and all(math.isfinite(v) for v in hist.loss)
    assert not torch.equal(student.get_output_embeddings().weight,
                           bert.get_output_embeddings().weight), "the copy was fine-tuned"

    # generate before and after with the article's sampler; the pair of quality numbers
    for model in (bert, student):
        traj = dl.generate(model, tok, prompts, length=L, seed=0, **article)
        assert traj.forward_passes <= 10
        pairs = zip(traj.texts, prompts, strict=True)
        assert all(t.startswith(p) and len(t) == L for t, p in pairs)
        bits = dl.metrics.judge_bits_per_token(judge, tok, traj.texts)
        entropy = dl.metrics.unigram_entropy(traj.texts)
        assert 0 < bits < 3 * math.log2(len(tok)) and 0 < entropy <= math.log2(len(tok))
    elbo = dl.metrics.bits_per_token(student, tok, valid_text, seq_len=prof.seq_len, max_blocks=2)
    nll = dl.metrics.bits_per_token(judge, tok, valid_text, seq_len=prof.seq_len, max_blocks=2)
    assert math.isfinite(elbo) and math.isfinite(nll)

    # the race's two kinds of run, and the article's own sampler on the same model
    ar = dl.generate(judge, tok, prompts[:1], length=L, top_k=50, top_p=0.95, seed=0)
    diff = dl.generate(student, tok, prompts[:1], length=L, steps=L // 8, strategy="ancestral",
                       top_k=50, top_p=0.95, seed=0)
    assert ar.forward_passes == L - 16 and diff.forward_passes <= L // 8
    assert dl.viz.race(ar, diff).caption_text.startswith(f"AR: {L - 16} forward passes")
    texts = dl.reference_samplers.seed_article_sampler(student, tok, prompts[:2], length=L,
                                                       steps=10, seed=0)
    assert all(t.startswith(p) and len(t) == L for t, p in zip(texts, prompts[:2], strict=True))
