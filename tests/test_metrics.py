"""Metrics: each number the book reports, checked against a hand computation."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import diffusion_lab as dl
from diffusion_lab import data, metrics, noise

TEXT = "the cat sat on the mat; a bat ate the hat.\n" * 20


@pytest.fixture(scope="module")
def tok():
    """This file's alphabet: conftest's ``mlm`` and ``ar`` (untrained, xs, 64 positions) are
    built on it."""
    return dl.CharTokenizer.from_texts([TEXT])


def test_bits_per_token_is_deterministic_given_a_seed(mlm, tok):
    kwargs = dict(seq_len=32, max_blocks=8, n_t=2)
    a = metrics.bits_per_token(mlm, tok, TEXT, seed=0, **kwargs)
    b = metrics.bits_per_token(mlm, tok, TEXT, seed=0, **kwargs)
    c = metrics.bits_per_token(mlm, tok, TEXT, seed=1, **kwargs)
    assert a == b
    assert a != c  # the seed really drives the noise
    assert 0.5 * math.log2(len(tok)) < a < 3 * math.log2(len(tok))


def test_bits_per_token_of_an_ar_model_is_its_exact_nll(ar, tok):
    seq_len, max_blocks = 32, 6
    got = metrics.bits_per_token(ar, tok, TEXT, seq_len=seq_len, max_blocks=max_blocks,
                                 batch_size=4)  # two batches of unequal size
    blocks = data.sequential_blocks(data.encode_corpus(tok, TEXT), seq_len,
                                    cls_id=tok.cls_token_id, max_blocks=max_blocks)
    with torch.no_grad():
        logits = ar(input_ids=blocks).logits.double()
        logits[..., dl.denoiser.banned_token_ids(tok)] = float("-inf")  # the one denoiser
        logp = logits.log_softmax(-1)
    nll = -logp[:, :-1].gather(-1, blocks[:, 1:, None]).mean()  # every next token, nats
    assert got == pytest.approx(float(nll) / math.log(2), rel=1e-5)


def test_bits_per_token_refuses_empty_text(mlm, tok):
    with pytest.raises(ValueError, match="text"):
        metrics.bits_per_token(mlm, tok, "  ")


@pytest.mark.parametrize("texts, bits", [("abab", 1.0), ("aaaa", 0.0), (["ab", "cd"], 2.0),
                                         ("aab", -(2 / 3) * math.log2(2 / 3)
                                          - (1 / 3) * math.log2(1 / 3))])
def test_unigram_entropy_by_hand(texts, bits):
    assert metrics.unigram_entropy(texts) == pytest.approx(bits, abs=1e-12)


def test_unigram_entropy_with_a_tokenizer_counts_tokens(tok):
    assert metrics.unigram_entropy("abab", tok) == pytest.approx(1.0)
    assert metrics.unigram_entropy("a[MASK]a[MASK]", tok) == pytest.approx(1.0)  # 1 mask token
    with pytest.raises(ValueError, match="empty"):
        metrics.unigram_entropy([""])


def test_distinct_n_and_repetition_by_hand():
    texts = ["a b a b", "c d"]
    # word bigrams: (a,b) (b,a) (a,b) | (c,d): 3 distinct of 4
    assert metrics.distinct_n(texts, n=2) == pytest.approx(3 / 4)
    assert metrics.distinct_n(texts, n=1) == pytest.approx(4 / 6)
    assert metrics.distinct_n(["abcabc"], n=3, unit="char") == pytest.approx(3 / 4)
    assert metrics.distinct_n(["a"], n=2) == 0.0  # no bigram at all
    # repetition: within one text, (a,b) comes back once of 3 bigrams; "c d" repeats nothing
    assert metrics.repetition_rate(texts, n=2) == pytest.approx(1 / 4)
    assert metrics.repetition_rate(["x y z w"], n=2) == 0.0
    assert metrics.repetition_rate(["aaaaa"], n=2, unit="char") == pytest.approx(3 / 4)
    # repetition counts within a text, distinct_n pools texts
    assert metrics.repetition_rate(["a b", "a b"], n=2) == 0.0
    assert metrics.distinct_n(["a b", "a b"], n=2) == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="unit"):
        metrics.distinct_n(texts, unit="byte")


def test_generative_perplexity_is_two_to_the_judge_bits(ar, tok):
    texts = ["the cat", "a bat ate the hat", "mat"]
    bits = metrics.judge_bits_per_token(ar, tok, texts, batch_size=2)
    assert metrics.generative_perplexity(ar, tok, texts, batch_size=2) == pytest.approx(2 ** bits)


def test_judge_bits_of_a_uniform_judge_is_log2_v(ar, tok):
    special = list(tok.all_special_ids)
    judge = dl.tiny_ar(tok, size="xs", max_length=64)

    def forward(input_ids, **kwargs):
        logits = torch.zeros(*input_ids.shape, len(tok))
        logits[..., special] = float("-inf")
        return SimpleNamespace(logits=logits)

    judge.forward = forward
    n_content = len(tok) - len(special)
    # unequal lengths: padding must not be scored
    bits = metrics.judge_bits_per_token(judge, tok, ["the cat", "a", "hat hat hat"], batch_size=3)
    assert bits == pytest.approx(math.log2(n_content))


def test_judge_bits_matches_a_per_text_computation(ar, tok):
    texts = ["the cat sat", "a", "bat"]
    total = count = 0.0
    with torch.no_grad():
        for t in texts:
            ids = torch.tensor([[tok.cls_token_id] + tok(t, add_special_tokens=False)["input_ids"]])
            logits = ar(input_ids=ids).logits[:, :-1]
            logits[..., dl.denoiser.banned_token_ids(tok)] = float("-inf")
            total += F.cross_entropy(logits[0], ids[0, 1:], reduction="sum").item()
            count += ids.shape[1] - 1
    got = metrics.judge_bits_per_token(ar, tok, texts, batch_size=8)
    assert got == pytest.approx(total / count / math.log(2), rel=1e-5)


def test_judge_bits_per_text_scores_each_text_alone(ar, tok):
    texts = ["the cat sat", "a", "bat ate the hat"]
    per_text = metrics.judge_bits_per_text(ar, tok, texts, batch_size=2)
    alone = [metrics.judge_bits_per_token(ar, tok, [t]) for t in texts]
    assert per_text.shape == (3,)
    assert per_text.tolist() == pytest.approx(alone, rel=1e-5)  # batching and padding: no change
    with pytest.raises(ValueError, match="non-empty"):
        metrics.judge_bits_per_text(ar, tok, ["the cat", ""])


def test_unigram_counts_pool_back_to_the_entropy(tok):
    texts = ["the cat", "aab", "hat hat hat"]
    counts = metrics.unigram_counts(texts, tok)
    assert counts.shape == (3, len(tok)) and counts[1, tok.convert_tokens_to_ids("a")] == 2
    assert dl.stats.pooled_entropy(counts).item() == pytest.approx(
        metrics.unigram_entropy(texts, tok), abs=1e-12)


def test_judge_must_be_causal(mlm, tok):
    with pytest.raises(ValueError, match="judge must be a causal LM"):
        metrics.judge_bits_per_token(mlm, tok, ["the cat"])


def test_calibration_bins_cover_every_masked_slot(mlm, tok):
    seq_len, max_blocks, rate, seed = 32, 8, 0.5, 3
    cal = metrics.calibration(mlm, tok, TEXT, seq_len=seq_len, max_blocks=max_blocks, rate=rate,
                              bins=10, seed=seed)
    blocks = data.sequential_blocks(data.encode_corpus(tok, TEXT), seq_len,
                                    cls_id=tok.cls_token_id, max_blocks=max_blocks)
    _, masked = noise.absorbing_mask(blocks, rate, mask_id=tok.mask_token_id,
                                     fixed=noise.anchor_fixed(blocks),
                                     generator=torch.Generator().manual_seed(seed))
    assert cal["count"].shape == (10,) and len(cal["edges"]) == 11
    assert int(cal["count"].sum()) == int(masked.sum()) > 0
    assert 0.0 <= cal["ece"] <= 1.0
    filled = cal["count"] > 0
    lo, hi = cal["edges"][:-1][filled], cal["edges"][1:][filled]
    assert ((cal["confidence"][filled] >= lo) & (cal["confidence"][filled] <= hi)).all()
    assert ((cal["accuracy"] >= 0) & (cal["accuracy"] <= 1)).all()


def test_task_accuracy_uses_the_tasks_checker():
    task = dl.worlds.tasks.Addition(digits=1)
    prompts = ["3+4=", "9+9="]
    assert metrics.task_accuracy(task, ["3+4=07", "9+9=18"], prompts) == 1.0
    assert metrics.task_accuracy(task, ["3+4=08", "9+9=18"], prompts) == 0.5
    assert metrics.task_accuracy(task, ["1+1=02", "9+9=18"], prompts) == 0.5  # ignores prompt 0


def test_best_time_keeps_the_fastest_call_and_the_last_result():
    calls = []

    def fn():
        calls.append(len(calls))
        if len(calls) == 1:
            time.sleep(0.05)  # the first call is disturbed: the minimum ignores it
        return len(calls)

    seconds, out = metrics.best_time(fn, repeats=3)
    assert calls == [0, 1, 2] and out == 3
    assert 0 <= seconds < 0.05
    with pytest.raises(ValueError, match="repeats"):
        metrics.best_time(fn, repeats=0)
