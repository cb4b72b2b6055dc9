"""The intervals and tests claims rest on (`reports.statistics.intervals`), each against an
independent computation, and the agreements the claims rely on (interval excludes the null value
exactly when its test rejects)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from reports.statistics.intervals import (
    clopper_pearson,
    equal_values_reason,
    exact_binomial_p,
    holm,
    mean_interval,
    ratio_interval,
    sign_flip_test,
    t_interval,
)


def test_t_interval_matches_scipys_one_sample_t():
    d = np.array([0.5, -1.0, 2.0, 1.5, 0.0, 1.0, 0.5])
    expected = stats.ttest_1samp(d, 0).confidence_interval(0.95)
    assert t_interval(d) == pytest.approx((expected.low, expected.high))


def test_no_interval_for_one_prompt_or_equal_differences():
    assert "at least 2 prompts" in equal_values_reason(np.array([1.0]))
    reason = equal_values_reason(np.array([1.0, 1.0, 1.0]))
    assert "zero width" in reason and "+1.00" in reason
    assert equal_values_reason(np.array([1.0, 0.0])) is None


def _hall_by_hand(values, z):
    """Hall (1992), written out: the means mu whose g(T) = T + aT² + a²T³/3 + b lies within ± z."""
    n, mean, s = len(values), np.mean(values), np.std(values, ddof=1)
    gamma = stats.skew(values)  # the biased sample skewness m3 / m2^1.5
    a, b = gamma / (3 * np.sqrt(n)), gamma / (6 * np.sqrt(n))

    def g(t):
        return t + a * t**2 + a**2 * t**3 / 3 + b

    def solve(target):  # g is increasing: bisect for T
        lo, hi = -50.0, 50.0
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if g(mid) < target else (lo, mid)
        return lo

    return mean - s * solve(z) / np.sqrt(n), mean - s * solve(-z) / np.sqrt(n)


def test_mean_interval_is_the_hull_of_t_and_halls_skewness_corrected_t():
    skewed = np.array([0.8, 1.0, 0.7, 0.9, -2.5, 1.1, 0.6, 0.8, -2.0, 1.0, 0.9, 0.7])
    z = stats.t.ppf(0.975, len(skewed) - 1)
    t_lo, t_hi = t_interval(skewed)
    h_lo, h_hi = _hall_by_hand(skewed, z)
    assert mean_interval(skewed) == pytest.approx((min(t_lo, h_lo), max(t_hi, h_hi)))
    assert h_lo < t_lo  # the long lower tail widens the interval downwards
    symmetric = np.array([-1.0, 0.0, 1.0, 2.0, 3.0])
    assert mean_interval(symmetric) == pytest.approx(t_interval(symmetric))


def test_ratio_interval_is_the_set_of_ratios_the_mean_interval_keeps():
    rng = np.random.default_rng(5)
    base = rng.uniform(1, 5, 20)
    other = base + rng.normal(0.6, 1.0, 20)
    lo, hi = ratio_interval(base, other)
    for r, inside in ((lo + 1e-6, True), (hi - 1e-6, True), (lo - 1e-3, False), (hi + 1e-3, False)):
        m_lo, m_hi = mean_interval(other - r * base)
        assert bool(m_lo <= 0 <= m_hi) is inside, r


def test_ratio_and_difference_intervals_exclude_the_null_together():
    rng = np.random.default_rng(9)
    for _ in range(300):
        n = int(rng.integers(3, 30))
        base = rng.integers(1, 6, n).astype(float)
        other = np.clip(base + rng.integers(-2, 3, n), 1, 5)
        d = other - base
        if equal_values_reason(d):
            continue
        lo, hi = mean_interval(d)
        ratio = ratio_interval(base, other)
        if ratio is None:  # unbounded: only when a handful of base values spread widely
            assert n <= 6
            continue
        assert (lo > 0 or hi < 0) == (ratio[0] > 1 or ratio[1] < 1)


def test_ratio_interval_is_none_when_the_base_mean_is_not_clearly_positive():
    assert ratio_interval(np.array([-1.0, 1.2, 0.1]), np.array([1.0, 2.0, 3.0])) is None


def _plain_sign_flip(d):
    observed = abs(sum(d))
    flips = [abs(sum(s * x for s, x in zip(signs, d))) for signs in itertools.product((1, -1), repeat=len(d))]
    return sum(f >= observed - 1e-9 for f in flips) / len(flips)


def test_exact_sign_flip_matches_a_plain_enumeration():
    d = np.array([1.0, 0.5, 2.0, -0.5, 1.0, 0.0, 1.5, 2.5])
    out = sign_flip_test(d)
    assert out["exact"] and out["p"] == pytest.approx(_plain_sign_flip(d.tolist()))


def test_zero_differences_do_not_change_the_exact_p():
    d = np.array([1.0, 2.0, 1.0, -1.0, 1.5, 1.0])
    assert sign_flip_test(np.r_[d, 0.0, 0.0])["p"] == pytest.approx(sign_flip_test(d)["p"])


def test_monte_carlo_sign_flip_is_fixed_and_near_the_exact_p():
    rng = np.random.default_rng(2)
    d = rng.normal(0.4, 1.0, 17)
    first, second = sign_flip_test(d), sign_flip_test(d)
    assert not first["exact"] and first == second
    signs = 1.0 - 2.0 * ((np.arange(2**17)[:, None] >> np.arange(17)) & 1)
    exact = float(np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-9))
    assert first["p"] == pytest.approx(exact, abs=0.01)


def test_chunked_sign_flip_equals_the_cached_path_on_the_same_stream():
    d = np.random.default_rng(3).normal(0.2, 1.0, 450)  # 450 x 10,000 is over the cached size
    out = sign_flip_test(d)
    gen = np.random.default_rng(20240601)
    per_chunk = 2_000_000 // 450
    hits = done = 0
    while done < 10_000:
        rows = min(per_chunk, 10_000 - done)
        signs = gen.integers(0, 2, size=(rows, 450), dtype=np.int8).astype(np.float64) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ d) >= abs(d.sum()) - 1e-9 * abs(d.sum())))
        done += rows
    assert out["p"] == pytest.approx((1 + hits) / 10_001)


@pytest.mark.parametrize("k,n", [(0, 7), (3, 10), (10, 10), (42, 97)])
def test_clopper_pearson_matches_scipy_exact(k, n):
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    assert clopper_pearson(k, n) == pytest.approx((ci.low, ci.high))


def test_clopper_pearson_excludes_one_half_exactly_when_the_exact_test_rejects():
    for n in range(1, 41):
        for k in range(n + 1):
            lo, hi = clopper_pearson(k, n)
            assert (lo > 0.5 or hi < 0.5) == (exact_binomial_p(k, n) < 0.05), (k, n)


def test_holm_step_down_by_hand():
    # sorted 0.01, 0.03, 0.04 over m=3: 0.03, max(0.03, 0.06), max(0.06, 0.04); None stays None
    adjusted = holm([0.01, 0.04, 0.03, None])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and adjusted[3] is None
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([None]) == [None]


def test_from_two_thousand_prompts_the_sign_flip_p_is_normal_with_the_exact_variance():
    d = np.random.default_rng(4).integers(-2, 3, 2_000).astype(float)
    d[:60] += 1.0  # a small shift, so p is neither 0 nor 1
    out = sign_flip_test(d)
    assert out["method"] == "normal"
    assert out["p"] == pytest.approx(2 * stats.norm.sf(abs(d.sum()) / np.sqrt((d**2).sum())))
    monte_carlo = sign_flip_test(d[:1_999])  # one prompt fewer: 10,000 random sign patterns
    assert monte_carlo["method"] == "monte_carlo"
    assert monte_carlo["p"] == pytest.approx(out["p"], abs=0.02)
