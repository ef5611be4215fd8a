"""The grammar's exact answers against brute-force enumeration, and its bad-input errors."""

import dataclasses
import math

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab.course import recipes
from diffusion_lab.worlds import grammar_metrics
from diffusion_lab.worlds.grammar import Grammar, book_language, tiny_language
from diffusion_lab.worlds.grammar_oracle import GrammarOracleForMaskedLM


@pytest.fixture(scope="module")
def tiny():
    return tiny_language()


@pytest.fixture(scope="module")
def book():
    return book_language()


def brute_force(g: Grammar):
    """Every derivation expanded by hand (no templates): {sentence: probability}."""
    def expand(symbol):
        if symbol in g.rules:
            out = {}
            for p, rhs in g.rules[symbol]:
                partial = {(): p}
                for sym in rhs:
                    partial = {a + b: pa * pb for a, pa in partial.items()
                               for b, pb in expand(sym).items()}
                for k, v in partial.items():
                    out[k] = out.get(k, 0.0) + v
            return out
        row = g.emission[g.categories.index(symbol)]
        return {(g.words[i],): float(row[i]) for i in row.nonzero()[:, 0].tolist()}
    return {" ".join(k): v for k, v in expand(g.start).items()}


def test_probabilities_sum_to_one_and_match_enumeration(tiny):
    truth = brute_force(tiny)
    sentences, probs = tiny.enumerate()
    assert len(truth) == len(sentences) == 30
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-12)
    got = dict(zip(sentences, probs.tolist(), strict=True))
    assert got == pytest.approx(truth, abs=1e-12)
    assert tiny.log_prob(list(truth)).exp().tolist() == pytest.approx(list(truth.values()),
                                                                       abs=1e-12)


def test_entropy_matches_enumeration(tiny):
    p = torch.tensor(list(brute_force(tiny).values()), dtype=torch.float64)
    assert tiny.entropy() == pytest.approx(float(-(p * p.log()).sum()), abs=1e-12)


def test_book_language_entropy_matches_monte_carlo(book):
    lp = book.log_prob_ids(book.sample_ids(20000, seed=3))
    assert torch.isfinite(lp).all()
    mean, se = float(-lp.mean()), float(lp.std() / math.sqrt(len(lp)))
    assert abs(mean - book.entropy()) < 4 * se  # observed: |diff| ~ 1 standard error


def test_sampling_frequencies_match_log_prob(tiny):
    samples = tiny.sample(60000, seed=1)
    sentences, probs = tiny.enumerate()
    counts = {s: 0 for s in sentences}
    for s in samples:
        counts[s] += 1
    freq = torch.tensor([counts[s] / len(samples) for s in sentences], dtype=torch.float64)
    se = (probs * (1 - probs) / len(samples)).sqrt()
    assert ((freq - probs).abs() <= 5 * se + 1e-9).all()
    assert grammar_metrics.total_variation(samples, sentences, probs) < 0.02


def test_invalid_sentences_have_zero_probability(tiny, book):
    assert tiny.log_prob(["a dog runs .", "a dogs runs .", "a dog runs", "a dog . runs",
                          "a [EOS] runs ."]).tolist() == [
        pytest.approx(math.log(2 / 3 * 3 / 4 * 1 / 4 * 0.5)), -math.inf, -math.inf, -math.inf,
        -math.inf]
    padded = book.log_prob(["the dog runs .", "the dog runs . [EOS] [EOS]"])
    assert padded[0] == padded[1] and torch.isfinite(padded[0])
    assert book.is_valid(["the dog that the cats chase runs .",
                          "the dog that the cats chase run ."]).tolist() == [True, False]


@pytest.mark.parametrize("bad, match", [
    ([""], "empty"), (["a unicorn runs ."], "outside the vocabulary"),
    (["a dog runs . . ."], "more than the model's max_len"), ([3], "list of str")])
def test_bad_input_names_the_argument(tiny, bad, match):
    with pytest.raises((ValueError, TypeError), match=match) as err:
        tiny.log_prob(bad)
    assert "sentences" in str(err.value)


def test_bad_grammars_are_rejected():
    lex = {"N": {"dog": 1.0}, "V": {"runs": 1.0}}
    with pytest.raises(ValueError, match="sum to"):
        Grammar({"S": [(0.5, ("N", "V"))]}, lex)
    with pytest.raises(ValueError, match="recursive"):
        Grammar({"S": [(1.0, ("N", "S"))]}, lex)
    with pytest.raises(ValueError, match="max_len"):
        Grammar({"S": [(1.0, ("N", "V"))]}, lex, max_len=1)
    with pytest.raises(ValueError, match="already belongs"):
        Grammar({"S": [(1.0, ("N", "V"))]}, {"N": {"dog": 1.0}, "V": {"dog": 1.0}})


def test_tokenizer_round_trip_and_training_conventions(book):
    tok = book.tokenizer()
    text = book.texts(1, seed=0)[0]
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == book.max_len and tok.decode(ids) == text
    assert tok.mask_token_id == 4 and tok.cls_token_id == 2 and tok.pad_token_id == 0
    assert tok.convert_tokens_to_ids("[EOS]") not in tok.all_special_ids  # samplers may emit it
    assert 90 <= len(tok) <= 300  # 92 words, [EOS] and the 5 special tokens


def test_oracle_conditionals_are_exact(tiny):
    """The oracle's marginal for a hidden slot equals the enumerated conditional."""
    tok, oracle = tiny.tokenizer(), GrammarOracleForMaskedLM(tiny)
    sentences, probs = tiny.enumerate()
    ids = tok(["[MASK] dogs [MASK] [MASK]"], add_special_tokens=False, return_tensors="pt")
    ids = torch.cat([torch.tensor([[tok.cls_token_id]]), ids["input_ids"]], 1)
    p = oracle(input_ids=ids).logits[0, 3].softmax(-1)  # the verb slot
    want = {}
    for s, q in zip(sentences, probs.tolist(), strict=True):
        if s.split()[1:2] == ["dogs"]:
            want[s.split()[2]] = want.get(s.split()[2], 0.0) + q
    total = sum(want.values())
    for verb, q in want.items():
        assert p[tok.convert_tokens_to_ids(verb)].item() == pytest.approx(q / total, abs=1e-6)
    assert p[tok.convert_tokens_to_ids("runs")].item() == 0.0


def test_oracle_decoded_one_slot_at_a_time_samples_the_truth(tiny):
    """With the perfect denoiser and one slot per step, sampling is exact (TV near its floor)."""
    tok, oracle = tiny.tokenizer(), GrammarOracleForMaskedLM(tiny)
    run = dl.generate(oracle, tok, prompts=[""], length=4, steps=4, strategy="low_confidence",
                      seed=0, num_samples=1, record=False)  # warm-up: the model interface works
    assert tiny.is_valid(run.texts).all()
    run = dl.generate(oracle, tok, prompts=[""], length=4, steps=4, strategy="maskgit",
                      gumbel_temperature=1e9, seed=0, num_samples=20000, record=False)
    sentences, probs = tiny.enumerate()
    tv = grammar_metrics.total_variation(tiny.decode(tiny.encode(run.texts)), sentences, probs)
    floor = grammar_metrics.total_variation(tiny.sample(20000, seed=9), sentences, probs)
    assert tiny.is_valid(run.texts).all()
    assert tv < floor + 0.02  # observed: 0.021 vs floor 0.021


def test_error_kinds_and_agreement_checks(book):
    kinds = grammar_metrics.error_kinds(book, [
        "the dog that the cats chase runs .", "the dog that the cats chase run .",
        'a dog says " the cats run .', "the dog runs", "the dog . runs ."])
    assert kinds == ["valid", "agreement", "quotes", "end", "end"]
    checks = grammar_metrics.agreement_checks(book, ["the dog that the cats chase run ."])
    assert ("N-V", 1, 6, False) in [c[1:] for c in checks]
    assert ("N-TV", 4, 5, True) in [c[1:] for c in checks]


def test_sentence_nll_of_the_oracle_is_the_exact_nll(tiny):
    """For exact conditionals every decoding order factorises p(x): the bound is tight."""
    sentences, probs = tiny.enumerate()
    nll = grammar_metrics.sentence_nll(GrammarOracleForMaskedLM(tiny), tiny, sentences, orders=2)
    assert (nll + probs.log()).abs().max() < 1e-5


def test_reveal_step_and_passes_per_row(tiny):
    tok, oracle = tiny.tokenizer(), GrammarOracleForMaskedLM(tiny)
    run = dl.generate(oracle, tok, prompts=[""], length=4, steps=4, strategy="low_confidence",
                      seed=0, num_samples=8)
    assert sorted(grammar_metrics.reveal_step(run)[0].tolist()) == [1, 2, 3, 4]
    assert grammar_metrics.passes_per_row(run).tolist() == [4] * 8
    fast = dl.generate(oracle, tok, prompts=[""], length=4, steps=4, strategy="threshold",
                       threshold=1e-9, seed=0, num_samples=8)
    assert grammar_metrics.passes_per_row(fast).tolist() == [1] * 8


def test_zoo_trains_caches_and_samples_the_grammar_models(book, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_LAB_CACHE", str(tmp_path))
    prof = dl.profile("smoke")
    for kind in ("grammar-mdlm", "grammar-ar"):
        assert not dl.zoo.is_cached(kind, prof)
        model, tok, info = dl.zoo.pretrained(kind, prof, progress=False)
        steps = recipes.RECIPES[kind].budgets["smoke"].steps
        assert info["trained_now"] and info["steps"] == steps
        assert dl.zoo.is_cached(kind, prof) and not dl.zoo.is_cached(kind, prof, steps=steps + 1)
        assert not dl.zoo.pretrained(kind, prof, progress=False)[2]["trained_now"]
        run = dl.generate(model, tok, prompts=[""], length=book.max_len, steps=4, seed=0,
                          num_samples=4, **({} if kind.endswith("ar") else
                                            {"strategy": "ancestral"}))
        assert book.log_prob(run.texts).shape == (4,)  # every sampled word is in the vocabulary


def test_the_grammar_mdlm_starts_from_wide_embeddings_and_trains_longer(book):
    tok = book.tokenizer()
    model = dl.models.tiny_mlm(tok, size="xs", max_length=book.max_len + 1)
    before = model.get_input_embeddings().weight.std().item()
    recipes.symmetry_breaking_init(model, 1.0)
    weight = model.get_input_embeddings().weight
    assert before < 0.1 and abs(weight.std().item() - 1.0) < 0.1  # BERT's 0.02, then 1.0
    again = recipes.symmetry_breaking_init(
        dl.models.tiny_mlm(tok, size="xs", max_length=book.max_len + 1), 1.0)
    assert torch.equal(again.get_input_embeddings().weight, weight)  # seeded
    cpu = dl.profile("cpu")
    plans = {k: recipes.plan(k, cpu) for k in ("grammar-mdlm", "grammar-ar")}
    assert plans["grammar-mdlm"].settings.steps > plans["grammar-ar"].settings.steps
    assert plans["grammar-mdlm"].recipe.init_std == recipes.EMBEDDING_STD == 1.0
    assert plans["grammar-ar"].recipe.init_std is None
    assert {p.settings.seq_len for p in plans.values()} == {book.max_len + 1}
    narrower = dataclasses.replace(recipes.RECIPES["grammar-mdlm"], init_std=0.5)
    assert dl.zoo.key(recipes.plan(narrower, cpu)) != dl.zoo.key(plans["grammar-mdlm"])  # retrains


class _Blind(torch.nn.Module):
    """The oracle shown no context: every text slot masked, so it predicts the marginals."""

    def __init__(self, g):
        super().__init__()
        self.oracle = GrammarOracleForMaskedLM(g)

    def forward(self, input_ids):
        blind = input_ids.clone()
        blind[:, 1:] = 4
        return self.oracle(input_ids=blind)


def test_hidden_word_excess_is_zero_for_the_truth_and_finds_agreement(tiny):
    sentences, _ = tiny.enumerate()
    exact = grammar_metrics.hidden_word_excess(GrammarOracleForMaskedLM(tiny), tiny, sentences)
    assert all(abs(value) < 1e-6 for value, _ in exact.values())
    assert sum(n for _, n in exact.values()) == len(sentences) * tiny.max_len
    blind = grammar_metrics.hidden_word_excess(_Blind(tiny), tiny, sentences, batch_size=7)
    assert blind.keys() == exact.keys() and blind["N"][0] > 0.1  # the number, unseen, costs
    assert list(blind) == sorted(blind, key=lambda k: -blind[k][0])  # largest first
