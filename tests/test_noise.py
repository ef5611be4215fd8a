"""Forward processes, checked statistically: the corruption must have the rates the book claims.

Tolerances are 4 binomial standard deviations, so a correct implementation fails about once in
15,000 runs per check, while an off-by-a-few-percent rate fails every time.
"""

from __future__ import annotations

import math

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab import noise

MASK_ID = 4
CONTENT = torch.arange(5, 1005)  # 1000 content ids: random replacement rarely draws itself back


def clean_ids(batch: int = 1000, length: int = 101, seed: int = 0) -> torch.Tensor:
    """(batch, length) content ids with the [CLS] anchor (2) in column 0."""
    gen = torch.Generator().manual_seed(seed)
    ids = CONTENT[torch.randint(0, len(CONTENT), (batch, length), generator=gen)]
    ids[:, 0] = 2
    return ids


def assert_binomial(successes: int, trials: int, p: float, sigmas: float = 4.0) -> None:
    sd = math.sqrt(trials * p * (1 - p))
    assert abs(successes - trials * p) <= sigmas * sd + 1e-9, (successes / trials, p)


@pytest.mark.parametrize("rate", [0.05, 0.15, 0.5, 0.9])
def test_absorbing_mask_fraction_matches_rate(rate):
    ids = clean_ids()  # 100,000 free slots
    gen = torch.Generator().manual_seed(1)
    noisy, masked = noise.absorbing_mask(ids, rate, mask_id=MASK_ID,
                                         fixed=noise.anchor_fixed(ids), generator=gen)
    assert_binomial(int(masked.sum()), ids[:, 1:].numel(), rate)
    assert torch.equal(masked, noisy == MASK_ID)
    assert torch.equal(noisy[~masked], ids[~masked])  # unmasked slots keep their token


def test_absorbing_mask_per_row_rates():
    ids = clean_ids(batch=4, length=2001)
    rates = torch.tensor([0.0, 0.25, 0.75, 1.0])
    _, masked = noise.absorbing_mask(ids, rates, mask_id=MASK_ID, fixed=noise.anchor_fixed(ids),
                                     generator=torch.Generator().manual_seed(2))
    counts = masked.sum(1)
    assert counts[0] == 0 and counts[3] == 2000
    for row in (1, 2):
        assert_binomial(int(counts[row]), 2000, float(rates[row]))


def test_absorbing_mask_is_reproducible_from_a_generator():
    ids = clean_ids(batch=8, length=33)
    runs = [noise.absorbing_mask(ids, 0.5, mask_id=MASK_ID,
                                 generator=torch.Generator().manual_seed(7))[0] for _ in range(2)]
    assert torch.equal(*runs)


@pytest.mark.parametrize("bad", [-0.1, 1.5, [0.2, 0.3]])
def test_rate_outside_probabilities_or_wrong_rows_is_rejected(bad):
    ids = clean_ids(batch=3, length=5)
    with pytest.raises(ValueError, match="rate"):
        noise.absorbing_mask(ids, torch.tensor(bad), mask_id=MASK_ID)


def random_fixed(ids: torch.Tensor) -> torch.Tensor:
    fixed = torch.rand(ids.shape, generator=torch.Generator().manual_seed(3)) < 0.3
    fixed[:, 0] = True
    return fixed


@pytest.mark.parametrize("process", ["absorbing", "bert", "uniform"])
def test_fixed_positions_never_change(process):
    ids = clean_ids(batch=200, length=64)
    fixed = random_fixed(ids)
    gen = torch.Generator().manual_seed(4)
    if process == "absorbing":
        noisy, touched = noise.absorbing_mask(ids, 1.0, mask_id=MASK_ID, fixed=fixed, generator=gen)
    elif process == "bert":
        noisy, touched = noise.bert_mask(ids, mask_id=MASK_ID, content_ids=CONTENT, fixed=fixed,
                                         rate=1.0, generator=gen)
    else:
        noisy, touched = noise.uniform_noise(ids, 1.0, content_ids=CONTENT, fixed=fixed,
                                             generator=gen)
    assert torch.equal(noisy[fixed], ids[fixed])
    assert not touched[fixed].any()
    assert touched[~fixed].all()  # rate 1: every free slot is corrupted
    assert (noisy[~fixed] != ids[~fixed]).float().mean() > 0.5


def test_fixed_of_the_wrong_shape_is_rejected():
    ids = clean_ids(batch=2, length=5)
    with pytest.raises(ValueError, match="fixed"):
        noise.absorbing_mask(ids, 0.5, mask_id=MASK_ID, fixed=torch.zeros(2, 4, dtype=torch.bool))


def test_bert_mask_15_percent_then_80_10_10():
    ids = clean_ids(batch=2000, length=101)  # 200,000 free slots, ~30,000 chosen
    free = ids[:, 1:].numel()
    noisy, chosen = noise.bert_mask(ids, mask_id=MASK_ID, content_ids=CONTENT,
                                    fixed=noise.anchor_fixed(ids),
                                    generator=torch.Generator().manual_seed(5))
    n_chosen = int(chosen.sum())
    assert_binomial(n_chosen, free, 0.15)
    assert torch.equal(noisy[~chosen], ids[~chosen])  # only chosen slots may change
    was, now = ids[chosen], noisy[chosen]
    to_mask = int((now == MASK_ID).sum())
    to_other = int(((now != MASK_ID) & (now != was)).sum())
    unchanged = int((now == was).sum())
    # a random replacement draws the original token back with probability 1/|content|
    p_back = 1 / len(CONTENT)
    assert_binomial(to_mask, n_chosen, 0.8)
    assert_binomial(to_other, n_chosen, 0.1 * (1 - p_back))
    assert_binomial(unchanged, n_chosen, 0.1 + 0.1 * p_back)
    assert torch.isin(now[(now != MASK_ID)], CONTENT).all()


def test_uniform_noise_draws_only_content_ids_and_uniformly():
    content = torch.tensor([7, 9, 11, 13])
    ids = torch.full((500, 101), 6)  # 6 is not a content id, so every replacement is visible
    ids[:, 0] = 2
    noisy, replaced = noise.uniform_noise(ids, 0.6, content_ids=content,
                                          fixed=noise.anchor_fixed(ids),
                                          generator=torch.Generator().manual_seed(6))
    assert_binomial(int(replaced.sum()), 50_000, 0.6)
    drawn = noisy[replaced]
    assert torch.isin(drawn, content).all()
    assert (noisy[~replaced] == ids[~replaced]).all()
    for c in content:  # each content id about 1/4 of the draws
        assert_binomial(int((drawn == c).sum()), drawn.numel(), 0.25)


@pytest.mark.parametrize("schedule", noise.SCHEDULES)
def test_mask_rate_endpoints_and_monotone(schedule):
    assert float(noise.mask_rate(0.0, schedule)) == pytest.approx(0.0, abs=1e-12)
    assert float(noise.mask_rate(1.0, schedule)) == pytest.approx(1.0, abs=1e-12)
    grid = torch.linspace(0, 1, 1001, dtype=torch.float64)
    rates = noise.mask_rate(grid, schedule)
    assert (rates.diff() >= 0).all()
    assert ((rates >= 0) & (rates <= 1)).all()
    assert torch.allclose(noise.alpha(grid, schedule), 1 - rates)


def test_schedule_shapes():
    assert float(noise.mask_rate(0.3, "linear")) == pytest.approx(0.3)
    assert float(noise.mask_rate(0.5, "cosine")) == pytest.approx(math.sin(math.pi / 4))
    # cosine keeps more masked than linear mid-way: walking t from 1 to 0 it reveals few tokens
    # first and many at the end (MaskGIT's gamma(r) = cos(pi r / 2) at r = 1 - t)
    assert float(noise.mask_rate(0.5, "cosine")) > 0.5
    first_step = 1 - float(noise.mask_rate(1 - 1 / 16, "cosine"))
    last_step = float(noise.mask_rate(1 / 16, "cosine"))
    assert first_step < 1 / 16 < last_step
    # discrete10 rounds up to one of the ten levels
    for t, level in [(0.05, 0.1), (0.1, 0.1), (0.15, 0.2), (0.95, 1.0)]:
        assert float(noise.mask_rate(t, "discrete10")) == pytest.approx(level)


@pytest.mark.parametrize("antithetic", [True, False])
def test_sample_t_stays_in_eps_one(antithetic):
    eps = 1e-3
    t = noise.sample_t(4096, generator=torch.Generator().manual_seed(8), eps=eps,
                       antithetic=antithetic)
    assert t.shape == (4096,) and t.dtype == torch.float64
    assert (t >= eps).all() and (t <= 1).all()
    assert t.mean().item() == pytest.approx((1 + eps) / 2, abs=4 * 0.29 / math.sqrt(4096))


def test_sample_t_antithetic_spreads_the_batch_evenly():
    batch, eps = 64, 1e-3
    spread = noise.sample_t(batch, generator=torch.Generator().manual_seed(9), eps=eps)
    gaps = spread.sort().values.diff()
    assert torch.allclose(gaps, torch.full_like(gaps, (1 - eps) / batch), atol=1e-9)
    iid = noise.sample_t(batch, generator=torch.Generator().manual_seed(9), eps=eps,
                         antithetic=False).sort().values.diff()
    assert iid.std() > 10 * gaps.std() + 1e-6  # independent draws are not evenly spaced


def test_sample_t_discrete10_draws_the_ten_levels():
    t = noise.sample_t(5000, generator=torch.Generator().manual_seed(10), schedule="discrete10")
    levels = torch.linspace(0.1, 1.0, 10, dtype=torch.float64)
    assert torch.isclose(t[:, None], levels[None]).any(1).all()
    assert len(torch.unique(t)) == 10


def test_elbo_weight_linear_is_one_over_t():
    t = torch.linspace(0.01, 1, 100, dtype=torch.float64)
    assert torch.allclose(noise.elbo_weight(t, "linear"), 1 / t)


def test_elbo_weight_cosine_is_minus_alpha_prime_over_one_minus_alpha():
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    h = 1e-6
    d_alpha = (noise.alpha(t + h, "cosine") - noise.alpha(t - h, "cosine")) / (2 * h)
    expected = -d_alpha / (1 - noise.alpha(t, "cosine"))
    assert torch.allclose(noise.elbo_weight(t, "cosine"), expected, rtol=1e-5)


def test_elbo_weight_discrete10_is_refused():
    with pytest.raises(ValueError, match="discrete10"):
        noise.elbo_weight(torch.tensor([0.5]), "discrete10")


@pytest.mark.parametrize("call", [
    lambda s: noise.mask_rate(0.5, s),
    lambda s: noise.elbo_weight(torch.tensor([0.5]), s),
    lambda s: noise.sample_t(4, schedule=s),
])
def test_unknown_schedule_lists_the_names(call):
    with pytest.raises(ValueError) as err:
        call("exponential")
    assert "'exponential'" in str(err.value)
    for name in noise.SCHEDULES:
        assert name in str(err.value)


def test_content_token_ids_exclude_special_tokens():
    tok = dl.CharTokenizer.from_texts(["abc"])
    content = noise.content_token_ids(tok)
    assert sorted(content.tolist()) == sorted(tok.convert_tokens_to_ids(list("abc")))
    assert not set(content.tolist()) & set(tok.all_special_ids)


@pytest.mark.parametrize("kind", noise.TRANSITIONS)
def test_transition_matrix_rows_are_distributions(kind):
    q = noise.transition_matrix(kind, 0.3, 4)
    assert q.shape == (5, 5) and torch.allclose(q.sum(1), torch.ones(5, dtype=torch.float64))
    assert (q >= 0).all() and q[4, 4] == 1.0  # [MASK] is absorbing (or unreachable)
    assert torch.equal(noise.transition_matrix(kind, 0.0, 4), torch.eye(5, dtype=torch.float64))


def test_transition_matrix_bert_matches_bert_mask():
    """The hybrid matrix is what ``bert_mask`` does, measured on 400,000 draws per row."""
    k = 4
    ids = torch.arange(k).repeat(1000, 100)  # every token equally often
    noisy, _ = noise.bert_mask(ids, mask_id=k, content_ids=torch.arange(k), rate=0.3,
                               generator=torch.Generator().manual_seed(0))
    counts = torch.zeros(k, k + 1, dtype=torch.float64)
    counts.index_put_((ids.flatten(), noisy.flatten()), torch.ones(ids.numel(),
                      dtype=torch.float64), accumulate=True)
    empirical = counts / counts.sum(1, keepdim=True)
    assert (empirical - noise.transition_matrix("bert", 0.3, k)[:k]).abs().max() < 0.005


@pytest.mark.parametrize("args", [("gaussian", 0.1, 3), ("bert", 1.5, 3), ("uniform", 0.1, 0)])
def test_transition_matrix_rejects_bad_input(args):
    with pytest.raises(ValueError, match="kind|rate|num_tokens"):
        noise.transition_matrix(*args)
