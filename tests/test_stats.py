"""The book's tests over independent units: the bootstrap, its two-set form, the sign test."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_lab import stats


def test_sign_test_matches_hand_values():
    yes, no = torch.ones(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)
    assert stats.sign_test(yes, no) == (3, 0, pytest.approx(1 / 8))
    assert stats.sign_test(no, yes) == (0, 3, 1.0)
    assert stats.sign_test(yes, yes) == (0, 0, 1.0)  # ties carry no information
    a = torch.tensor([True] * 5 + [False] * 5)
    w, losses, p = stats.sign_test(a, ~a)
    assert (w, losses) == (5, 5) and p == pytest.approx(638 / 1024)
    assert stats.sign_test(a, ~a, two_sided=True)[2] == pytest.approx(1.0)  # capped at 1
    assert stats.sign_test(yes, no, two_sided=True)[2] == pytest.approx(2 / 8)
    rates = torch.tensor([1.0, 2 / 3, 0.0]), torch.tensor([1 / 3, 2 / 3, 0.0])  # per-unit rates
    assert stats.sign_test(*rates)[:2] == (1, 0)
    with pytest.raises(ValueError, match="pair unit for unit"):
        stats.sign_test(yes, torch.ones(4, dtype=torch.bool))


def test_sign_test_by_hand_on_bools_and_rates():
    """One-sided: P(X >= wins), X ~ Binomial(wins + losses, 1/2); ties carry no information."""
    a = torch.tensor([True, True, True, False, True])
    b = torch.tensor([False, False, False, False, True])
    assert stats.sign_test(a, b) == (3, 0, 1 / 8)
    assert stats.sign_test(b, a) == (0, 3, 1.0)
    assert stats.sign_test(a, a) == (0, 0, 1.0)
    wins = torch.tensor([True] * 5 + [False] * 5)
    assert stats.sign_test(wins, ~wins)[2] == pytest.approx(638 / 1024)
    # per-item solve rates (a puzzle solved 2 of 3 times beats one solved 1 of 3 times)
    rates_a, rates_b = torch.tensor([2 / 3, 1.0, 0.0]), torch.tensor([1 / 3, 1.0, 1.0])
    assert stats.sign_test(rates_a, rates_b) == (1, 1, 3 / 4)


def test_sign_test_two_sided_is_mcnemar():
    """Twice the smaller tail, capped at 1; symmetric in its two arguments."""
    a = torch.tensor([True] * 9 + [False] * 1 + [True] * 4)
    b = torch.tensor([False] * 9 + [True] * 1 + [True] * 4)
    wins, losses, p = stats.sign_test(a, b, two_sided=True)
    assert (wins, losses) == (9, 1)
    assert p == pytest.approx(2 * 11 / 1024)
    assert stats.sign_test(b, a, two_sided=True)[2] == p
    assert stats.sign_test(a, a, two_sided=True) == (0, 0, 1.0)
    one_each = torch.tensor([True, False])
    assert stats.sign_test(one_each, ~one_each, two_sided=True)[2] == 1.0  # 2 x 3/4, capped
    with pytest.raises(ValueError, match="pair unit for unit"):
        stats.sign_test(a, b[:3])


def test_bootstrap_interval_covers_the_mean_as_the_normal_theory_says():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, generator=g, dtype=torch.float64) + 1.0
    mean, lo, hi = stats.bootstrap(x)
    se = x.std().item() / math.sqrt(len(x))
    assert mean == pytest.approx(x.mean().item())
    assert lo < mean < hi
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)  # percentile ~ normal interval


def test_bootstrap_difference_finds_a_shift_and_not_a_null():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(300, generator=g, dtype=torch.float64) + 0.5
    b = torch.randn(200, generator=g, dtype=torch.float64)  # sets may differ in size
    diff, lo, hi = stats.bootstrap_difference(a, b)
    se = math.sqrt(a.var().item() / len(a) + b.var().item() / len(b))
    assert diff == pytest.approx((a.mean() - b.mean()).item())
    assert lo > 0.2 and hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)
    same = torch.randn(300, generator=g, dtype=torch.float64)
    _, lo0, hi0 = stats.bootstrap_difference(same[:150], same[150:])
    assert lo0 < 0 < hi0


def test_bootstrap_difference_resamples_pooled_statistics():
    # two sets of "texts" as count rows: one uses 2 symbols evenly (1 bit), one only 1 (0 bits)
    even = torch.tensor([[2.0, 2.0]] * 20)
    flat = torch.tensor([[4.0, 0.0]] * 20)
    diff, lo, hi = stats.bootstrap_difference(even, flat, stat=stats.pooled_entropy)
    assert (diff, lo, hi) == pytest.approx((1.0, 1.0, 1.0))  # no spread across rows: no width


@pytest.mark.parametrize("bad, match", [(dict(values=[]), "empty"),
                                        (dict(values=[1.0, 2.0], n_boot=10), "n_boot"),
                                        (dict(values=[1.0, 2.0], level=1.5), "level")])
def test_bad_input_is_named(bad, match):
    with pytest.raises(ValueError, match=match):
        stats.bootstrap(**bad)
    with pytest.raises(ValueError, match="b is empty"):
        stats.bootstrap_difference([1.0], [])


# ------------------------------------------------------------------ Student's t, exactly


@pytest.mark.parametrize("t, df", [(12.706, 1), (4.303, 2), (2.571, 5), (2.228, 10),
                                   (2.0423, 30), (2.0395, 31), (1.9600, 100_000)])
def test_student_t_tail_at_the_tabled_critical_values(t, df):
    """Two-sided 5% critical values of the t table: the upper tail is 0.025 there."""
    from diffusion_lab.stats import student_t_sf

    assert student_t_sf(t, df) == pytest.approx(0.025, abs=2e-5)
    assert student_t_sf(-t, df) == pytest.approx(0.975, abs=2e-5)
    assert student_t_sf(0.0, df) == pytest.approx(0.5)


def test_paired_t_test_is_exact_where_the_normal_approximation_is_not():
    """The chapter 7 case (issue 24): t = 2.01 on 31 df is p = 0.053, not the normal 0.044."""
    from diffusion_lab.stats import paired_t_test, student_t_sf

    d = torch.tensor([1.0, -1.0] * 16) + 2.01 * (32 ** -0.5) * torch.tensor([1.0, -1.0] * 16).std()
    mean, t, p = paired_t_test(d, torch.zeros(32))
    assert t == pytest.approx(2.01, rel=1e-6) and mean > 0
    assert p == pytest.approx(2 * student_t_sf(2.01, 31)) and 0.052 < p < 0.054
    assert paired_t_test(d, torch.zeros(32), two_sided=False)[2] == pytest.approx(p / 2)
    assert paired_t_test(torch.zeros(32), d)[2] == pytest.approx(p)  # symmetric


def test_paired_t_test_rejects_what_it_cannot_test():
    from diffusion_lab.stats import paired_t_test, student_t_sf

    with pytest.raises(ValueError, match="pair unit for unit"):
        paired_t_test(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="at least 2 units"):
        paired_t_test(torch.zeros(1), torch.zeros(1))
    with pytest.raises(ValueError, match="the same"):
        paired_t_test(torch.ones(5), torch.zeros(5))
    with pytest.raises(ValueError, match="df must be an int >= 1"):
        student_t_sf(1.0, 0)


def test_student_t_quantile_inverts_the_tail():
    from diffusion_lab.stats import student_t_quantile

    assert student_t_quantile(0.975, 30) == pytest.approx(2.0423, abs=1e-4)
    assert student_t_quantile(0.025, 30) == pytest.approx(-2.0423, abs=1e-4)
    assert student_t_quantile(0.5, 7) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="q must be in"):
        student_t_quantile(1.0, 3)
