"""Intervals and tests the report's claims rest on: Wilson, Clopper-Pearson, the interval for a mean
over prompts (t, widened to Hall's skewness correction), its Fieller-style inversion for a ratio of
paired means, the paired sign-flip permutation test, and Holm's step-down correction.

Each decision a claim makes pairs an interval with a test on the same observations, chosen so the two
agree: the difference interval and the ratio interval (the same interval inverted) exclude the null
together; Clopper-Pearson excludes 1/2 exactly when the doubled exact binomial tail is below 5%. The
permutation test is the distribution-free check a claim also has to pass. `bench/coverage.py`
measures how often these intervals miss the truth on simulated campaigns.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import special, stats

Z95 = 1.959963984540054
# the sign-flip test enumerates every sign pattern up to this many prompts (2**15 = 32,768 patterns)
EXACT_SIGN_FLIP_MAX_N = 15
SIGN_FLIP_RESAMPLES = 10_000
# from this many prompts the sign-flip distribution is taken as normal (its variance is exactly the
# sum of squared differences): 10,000 patterns of 10,000 prompts cost a second, the normal p nothing
NORMAL_SIGN_FLIP_MIN_N = 2_000
SIGN_FLIP_SEED = 20240601
# sign matrices up to this many entries are kept between calls (same n, same seed: same matrix)
_CACHED_SIGN_ENTRIES = 4_000_000
_CHUNK_ENTRIES = 2_000_000


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% by default); None for an empty sample."""
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson(successes: int, n: int, level: float = 0.95) -> tuple[float, float] | None:
    """The exact (Clopper-Pearson) interval of a proportion; None for an empty sample."""
    if n == 0:
        return None
    alpha = 1 - level
    # the beta quantiles (scipy.stats.beta.ppf), called through the special function for speed
    lo = 0.0 if successes == 0 else float(special.betaincinv(successes, n - successes + 1, alpha / 2))
    hi = 1.0 if successes == n else float(special.betaincinv(successes + 1, n - successes, 1 - alpha / 2))
    return lo, hi


def exact_binomial_p(successes: int, n: int) -> float | None:
    """Two-sided exact binomial test against 1/2: the doubled smaller tail, capped at 1. At 1/2 the
    binomial is symmetric, so this equals scipy.stats.binomtest's p (which it avoids for speed)."""
    if n == 0:
        return None
    k = min(successes, n - successes)
    return min(1.0, 2.0 * float(stats.binom.cdf(k, n, 0.5)))


def t_quantile(level: float, df: int) -> float:
    """The two-sided `level` quantile of Student's t (scipy.stats.t.ppf, via the special function)."""
    return float(special.stdtrit(df, 0.5 + level / 2))


def equal_values_reason(values: np.ndarray) -> str | None:
    """Why no interval is shown for these values (too few, or all equal: a zero-width interval is not
    an uncertainty), or None."""
    if len(values) < 2:
        return f"an interval needs at least 2 prompts (n={len(values)})"
    if np.all(values == values[0]):
        return (
            f"every one of the {len(values)} prompts has the same difference ({float(values[0]):+.2f}): "
            "an interval from them would have zero width, which says nothing about the uncertainty"
        )
    return None


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Mean ± t(n-1) × standard error."""
    n = len(values)
    se = float(np.std(values, ddof=1)) / math.sqrt(n)
    half = t_quantile(level, n - 1) * se
    mean = float(np.mean(values))
    return mean - half, mean + half


def _hull_bounds(mean: Any, m2: Any, m3: Any, n: int, z: float) -> tuple[Any, Any]:
    """The lower of the t-interval's and Hall's (1992) skewness-corrected t-interval's lower ends, and
    the higher of their upper ends, from a sample's mean and central moments m2, m3 (divided by n);
    numpy arrays give one interval per element. Hall maps the studentized mean T by the monotone
    g(T) = T + a T² + a² T³ / 3 + b, a = γ / (3√n), b = γ / (6√n), γ = m3 / m2^1.5, which removes the
    skewness term of T's Edgeworth expansion; his interval holds the means whose g(T) lies in ± z."""
    mean, m2, m3 = np.asarray(mean, float), np.asarray(m2, float), np.asarray(m3, float)
    se = np.sqrt(m2 * n / (n - 1)) / math.sqrt(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        gamma = np.where(m2 > 0, m3 / np.maximum(m2, 1e-300) ** 1.5, 0.0)
    a = gamma / (3 * math.sqrt(n))
    b = gamma / (6 * math.sqrt(n))
    safe_a = np.where(np.abs(a) < 1e-12, 1.0, a)

    def g_inverse(y: float) -> Any:  # T with g(T) = y; T = y - b when a = 0
        return np.where(np.abs(a) < 1e-12, y - b, (np.cbrt(1 + 3 * a * (y - b)) - 1) / safe_a)

    lo = np.minimum(mean - z * se, mean - se * g_inverse(z))
    hi = np.maximum(mean + z * se, mean - se * g_inverse(-z))
    return lo, hi


def mean_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The report's interval for a mean over prompts: the t-interval, widened at either end to Hall's
    skewness-corrected t-interval where that reaches further. The t-interval alone undercovers when
    differences are skewed (a few prompts much worse); Hall's alone when a small sample of tied
    differences looks skewed by chance; their hull held its coverage in both (bench/coverage.py).
    Call only when `equal_values_reason` is None."""
    n = len(values)
    mean = float(np.mean(values))
    centred = values - mean
    m2, m3 = float(np.mean(centred**2)), float(np.mean(centred**3))
    lo, hi = _hull_bounds(mean, m2, m3, n, t_quantile(level, n - 1))
    return float(lo), float(hi)


class _RatioTest:
    """Which ratios r are kept: `mean_interval(other − r × base)` contains 0. The mean and central
    moments of other − r × base are polynomials in r of the pair's moments, so many r cost little."""

    def __init__(self, base: np.ndarray, other: np.ndarray, level: float) -> None:
        self.n = len(base)
        self.z = t_quantile(level, self.n - 1)
        self.mx, self.my = float(np.mean(base)), float(np.mean(other))
        cx, cy = base - self.mx, other - self.my
        self.xx, self.xy, self.yy = (float(np.mean(u * v)) for u, v in ((cx, cx), (cx, cy), (cy, cy)))
        self.xxx, self.xxy, self.xyy, self.yyy = (
            float(np.mean(u * v * w)) for u, v, w in ((cx, cx, cx), (cx, cx, cy), (cx, cy, cy), (cy, cy, cy))
        )

    def kept(self, r: np.ndarray) -> np.ndarray:
        m2 = self.yy - 2 * r * self.xy + r * r * self.xx
        m3 = self.yyy - 3 * r * self.xyy + 3 * r * r * self.xxy - r**3 * self.xxx
        mean = self.my - r * self.mx
        degenerate = m2 <= 1e-15 * max(1.0, self.yy)
        lo, hi = _hull_bounds(mean, np.where(degenerate, 1.0, m2), m3, self.n, self.z)
        return np.where(degenerate, np.abs(mean) <= 1e-12, (lo <= 0) & (hi >= 0))


RATIO_GRID = 1001


def _edge(test: _RatioTest, inside: float, outside: float) -> float:
    """The last kept ratio going from a kept one towards one not kept, on two finer grids."""
    for _ in range(2):
        grid = np.linspace(inside, outside, RATIO_GRID)
        kept = test.kept(grid)
        step = int(np.argmin(kept))  # the first ratio not kept (the last grid point is not)
        inside, outside = float(grid[step - 1]), float(grid[step])
    return inside


def ratio_interval(base: np.ndarray, other: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """Interval for mean(other) / mean(base) from paired observations, by Fieller's construction with
    the report's mean interval: the ratios r for which `mean_interval(other − r × base)` contains 0,
    found on a grid around the estimate and refined at both ends. None when the base mean is not
    positive, when that set reaches the grid's ends (unbounded), or when it is not one interval
    around 1 (r = 1 refused but ratios on both sides kept: it could not agree with the difference)."""
    test = _RatioTest(base, other, level)
    if test.mx <= 0:
        return None
    estimate = test.my / test.mx
    half = 40 * test.z * math.sqrt(max(test.yy, 1e-12)) / math.sqrt(test.n) / test.mx + 1e-3
    grid = np.linspace(estimate - half, estimate + half, RATIO_GRID)
    kept = test.kept(grid)
    first, last = int(np.argmax(kept)), RATIO_GRID - 1 - int(np.argmax(kept[::-1]))
    if not kept.any() or first == 0 or last == RATIO_GRID - 1:
        return None
    lo = _edge(test, float(grid[first]), float(grid[first - 1]))
    hi = _edge(test, float(grid[last]), float(grid[last + 1]))
    if lo < 1 < hi and not test.kept(np.array([1.0]))[0]:
        return None
    return lo, hi


@functools.lru_cache(maxsize=8)
def _cached_signs(n: int, n_resamples: int, seed: int) -> np.ndarray:
    return _sign_rows(n, n_resamples, np.random.default_rng(seed))


def _sign_rows(n: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2, size=(rows, n), dtype=np.int8).astype(np.float64) * 2 - 1


@functools.lru_cache(maxsize=EXACT_SIGN_FLIP_MAX_N + 1)
def _all_signs(n: int) -> np.ndarray:
    """Every one of the 2**n sign patterns, one per row (the bits of 0 .. 2**n - 1)."""
    bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    return 1.0 - 2.0 * bits


def sign_flip_test(
    differences: np.ndarray, *, n_resamples: int = SIGN_FLIP_RESAMPLES, seed: int = SIGN_FLIP_SEED
) -> dict[str, Any]:
    """Two-sided paired permutation test of mean difference = 0: each prompt's difference keeps or flips
    its sign at random. Zero differences stay in the sample (they count in n and add nothing whatever
    their sign). With n <= EXACT_SIGN_FLIP_MAX_N every sign pattern is enumerated (exact p); above, a
    fixed-seed Monte Carlo sample gives p = (1 + hits) / (1 + resamples). The mean and the t statistic
    order sign patterns the same way (|t| grows with |mean| when the sum of squares is fixed), so this
    is also the studentized permutation test. From NORMAL_SIGN_FLIP_MIN_N prompts on, the p of the
    normal distribution with the sign flips' exact variance (sum of squared differences) is used."""
    d = np.asarray(differences, dtype=np.float64)
    n = len(d)
    observed = abs(float(d.sum()))
    tolerance = 1e-9 * max(1.0, observed)
    if n <= EXACT_SIGN_FLIP_MAX_N:
        flipped = np.abs(_all_signs(n) @ d)
        p = float(np.mean(flipped >= observed - tolerance))
        return {"p": p, "exact": True, "method": "exact", "n_resamples": 2**n}
    if n >= NORMAL_SIGN_FLIP_MIN_N:
        z = observed / math.sqrt(max(float(np.dot(d, d)), 1e-300))
        return {
            "p": float(special.erfc(z / math.sqrt(2))),
            "exact": False,
            "method": "normal",
            "n_resamples": 0,
        }
    if n * n_resamples <= _CACHED_SIGN_ENTRIES:
        hits = int(np.count_nonzero(np.abs(_cached_signs(n, n_resamples, seed) @ d) >= observed - tolerance))
    else:
        rng = np.random.default_rng(seed)
        per_chunk = max(1, _CHUNK_ENTRIES // n)
        hits = done = 0
        while done < n_resamples:
            rows = min(per_chunk, n_resamples - done)
            hits += int(np.count_nonzero(np.abs(_sign_rows(n, rows, rng) @ d) >= observed - tolerance))
            done += rows
    p = (1 + hits) / (1 + n_resamples)
    return {"p": p, "exact": False, "method": "monte_carlo", "n_resamples": n_resamples}


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values over the tests that have a p (None stays None)."""
    present = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    present.sort()
    m = len(present)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
