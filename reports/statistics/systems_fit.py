"""The Bradley–Terry fit behind the many-system ranking, with ties by Davidson's (1970) extension, and
its bootstrap over prompts.

Model: system i has a strength θ_i on the natural-log scale, and ν > 0 sets how often equal systems
tie. For one judgment of i against j,

    P(i preferred) = π_i / Z,  P(j preferred) = π_j / Z,  P(tie) = ν √(π_i π_j) / Z,
    π = exp(θ),  Z = π_i + π_j + ν √(π_i π_j),

so among judgments that are not ties P(i preferred) = 1 / (1 + exp(θ_j − θ_i)), plain Bradley–Terry:
ties neither shrink nor stretch the strength scale (counting a tie as half a win each would pull
strengths towards each other the more often raters tie). The log-likelihood is concave in
(θ, log ν): every outcome's log-probability is a linear form minus the log-sum-exp of the three.

The fit maximises it plus a small ridge, RIDGE × (Σ θ_i² + (log ν)²). The likelihood does not change
when every θ moves by the same amount, so the ridge's optimum has Σ θ_i = 0 (the identification
constraint, centred strengths) and keeps every figure finite under perfect separation (a system that
won every judgment would otherwise have θ = +∞). At RIDGE = 0.01 against weights of one per
prompt-pair unit its pull on the strengths is negligible wherever the data say anything.

Input to the fit is a table of weighted counts per pair of systems: (wins of the lower-index system,
wins of the higher-index one, ties). The point estimate uses scipy.optimize.minimize (trust-exact,
with the exact gradient and Hessian); the bootstrap refits every resample with the same objective by
a batched Newton iteration with step halving, started from the point estimate, which reaches the
same optimum (the objective is strictly convex) for thousands of resamples at once.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from scipy import optimize

RIDGE = 0.01
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240601
# resamples are drawn in chunks of at most this many (resample × prompt) entries
_CHUNK_ENTRIES = 2_000_000
_NEWTON_STEPS = 60
_HALVINGS = 30


@functools.lru_cache(maxsize=32)
def pairs_of(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The K(K-1)/2 pairs of system indices (lower, higher), in a fixed order."""
    lo, hi = np.triu_indices(k, 1)
    return lo, hi


@functools.lru_cache(maxsize=32)
def _forms(k: int) -> np.ndarray:
    """Per pair, the three linear forms of the parameters (θ_0..θ_{k-1}, log ν) whose log-sum-exp
    normalises the outcome: lower wins (θ_lo), higher wins (θ_hi), tie (log ν + (θ_lo + θ_hi) / 2)."""
    lo, hi = pairs_of(k)
    forms = np.zeros((len(lo), 3, k + 1))
    q = np.arange(len(lo))
    forms[q, 0, lo] = 1.0
    forms[q, 1, hi] = 1.0
    forms[q, 2, lo] = forms[q, 2, hi] = 0.5
    forms[q, 2, k] = 1.0
    return forms


def _terms(x: np.ndarray, counts: np.ndarray, forms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Objective, gradient and Hessian for a batch: x (B, k+1), counts (B, Q, 3)."""
    lin = np.einsum("qod,bd->bqo", forms, x)
    top = lin.max(axis=2, keepdims=True)
    shifted = np.exp(lin - top)
    total = shifted.sum(axis=2, keepdims=True)
    prob = shifted / total
    log_norm = (top + np.log(total))[..., 0]
    weight = counts.sum(axis=2)
    nll = -(np.einsum("bqo,bqo->b", counts, lin) - np.einsum("bq,bq->b", weight, log_norm))
    value = nll + RIDGE * np.einsum("bd,bd->b", x, x)
    residual = counts - weight[..., None] * prob
    grad = -np.einsum("qod,bqo->bd", forms, residual) + 2 * RIDGE * x
    # Σ_q W_q U_qᵀ (diag p_q − p_q p_qᵀ) U_q, U_q = the pair's forms
    weighted = weight[..., None] * prob
    mean_form = np.einsum("qod,bqo->bqd", forms, prob)
    hess = np.einsum("qod,bqo,qoe->bde", forms, weighted, forms, optimize=True)
    hess -= np.einsum("bq,bqd,bqe->bde", weight, mean_form, mean_form, optimize=True)
    hess += 2 * RIDGE * np.eye(x.shape[1])
    return value, grad, hess


def fit_point(counts: np.ndarray, k: int) -> np.ndarray:
    """The penalised maximum-likelihood (θ_0..θ_{k-1}, log ν) for one table of counts (Q, 3), by
    scipy.optimize.minimize; the θ are centred (they sum to zero at the optimum already)."""
    forms = _forms(k)
    batch = counts[None]

    def value(x: np.ndarray) -> float:
        return float(_terms(x[None], batch, forms)[0][0])

    def grad(x: np.ndarray) -> np.ndarray:
        return _terms(x[None], batch, forms)[1][0]

    def hess(x: np.ndarray) -> np.ndarray:
        return _terms(x[None], batch, forms)[2][0]

    result = optimize.minimize(
        value, np.zeros(k + 1), jac=grad, hess=hess, method="trust-exact", options={"gtol": 1e-10}
    )
    x = np.asarray(result.x, dtype=np.float64)
    x[:k] -= x[:k].mean()
    return x


def fit_batch(counts: np.ndarray, k: int, start: np.ndarray) -> np.ndarray:
    """The same optimum for many tables at once (counts (B, Q, 3)), by Newton steps halved until the
    objective does not rise, from `start` (k+1,); θ centred."""
    forms = _forms(k)
    x = np.repeat(start[None, :], len(counts), axis=0)
    value, grad, hess = _terms(x, counts, forms)
    for _ in range(_NEWTON_STEPS):
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        if np.max(np.abs(step)) < 1e-10:
            break
        scale = np.ones(len(x))
        trial = x - step
        new_value, new_grad, new_hess = _terms(trial, counts, forms)
        for _ in range(_HALVINGS):
            worse = new_value > value + 1e-12 * (1 + np.abs(value))
            if not worse.any():
                break
            scale[worse] /= 2
            trial[worse] = x[worse] - scale[worse, None] * step[worse]
            part = _terms(trial[worse], counts[worse], forms)
            new_value[worse], new_grad[worse], new_hess[worse] = part
        x, value, grad, hess = trial, new_value, new_grad, new_hess
    x[:, :k] -= x[:, :k].mean(axis=1, keepdims=True)
    return x


def bootstrap(per_prompt: np.ndarray, k: int, start: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Refits on `n_resamples` resamples of the prompts, drawn with replacement, each prompt with all
    of its judgments (per_prompt: (P, Q, 3) counts); returns (n_resamples, k+1) parameters."""
    n_prompts = len(per_prompt)
    flat = per_prompt.reshape(n_prompts, -1)
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_ENTRIES // max(1, n_prompts))
    out = []
    done = 0
    while done < n_resamples:
        rows = min(per_chunk, n_resamples - done)
        picks = rng.integers(0, n_prompts, size=(rows, n_prompts)) + n_prompts * np.arange(rows)[:, None]
        drawn = np.bincount(picks.ravel(), minlength=rows * n_prompts).reshape(rows, n_prompts)
        tables = (drawn @ flat).reshape(rows, *per_prompt.shape[1:])
        out.append(fit_batch(tables, k, start))
        done += rows
    return np.concatenate(out) if out else np.zeros((0, k + 1))


def ranks_of(strengths: np.ndarray) -> np.ndarray:
    """Rank of each system (1 = strongest) along the last axis; equal strengths share the better rank."""
    order = -strengths
    return (order[..., None, :] < order[..., :, None]).sum(axis=-1) + 1


def basic_interval(estimate: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """The basic (reverse-percentile) bootstrap 95% interval, (2 × estimate − 97.5th percentile,
    2 × estimate − 2.5th percentile) per column: it reads the resamples' spread around the estimate as
    the estimate's spread around the truth, so the small-sample bias of the Bradley–Terry estimate
    (strengths spread too far apart) is taken back instead of doubled, as the percentile interval does;
    bench/ranking.py measured both (docs/ranking.md)."""
    lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
    return np.stack([2 * estimate - hi, 2 * estimate - lo], axis=-1)


def basic_p(estimate: float, draws: np.ndarray) -> float:
    """Two-sided bootstrap p for 'no difference' that agrees with `basic_interval`: twice the smaller
    share of resamples at or beyond 2 × estimate on either side (plus one), capped at 1. Resamples
    within rounding of that point count on both sides."""
    point = 2 * estimate
    tolerance = 1e-9 * max(1.0, abs(point))
    below, above = int((draws <= point + tolerance).sum()), int((draws >= point - tolerance).sum())
    return min(1.0, 2 * (1 + min(below, above)) / (1 + len(draws)))


def bootstrap_summary(theta: np.ndarray, draws: np.ndarray) -> dict[str, Any]:
    """From the resampled fits: each centred strength's basic 95% interval (and, for comparison, its
    percentile interval), and each rank's percentile interval (the 2.5th percentile rounded towards
    rank 1, the 97.5th away from it)."""
    ranks = ranks_of(draws)
    return {
        "ci95": basic_interval(theta, draws),
        "ci95_percentile": np.quantile(draws, [0.025, 0.975], axis=0).T,
        "rank": ranks_of(theta),
        "rank_ci95": np.stack(
            [
                np.quantile(ranks, 0.025, axis=0, method="lower"),
                np.quantile(ranks, 0.975, axis=0, method="higher"),
            ],
            axis=1,
        ),
    }
