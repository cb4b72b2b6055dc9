"""Relevance: prompt means, the improvement with its bootstrap CI, Wilcoxon; win rate; score counts."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats

from reports.statistics.common import finite

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 20240601


def prompt_means(
    prompt_codes: np.ndarray, scores: np.ndarray, n_prompts: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean score per prompt code (0..n_prompts-1) and the number of ratings behind each mean."""
    counts = np.bincount(prompt_codes, minlength=n_prompts)
    sums = np.bincount(prompt_codes, weights=scores.astype(np.float64), minlength=n_prompts)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return means, counts


def bootstrap_improvement_ci(
    pretrained: np.ndarray,
    finetuned: np.ndarray,
    *,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    chunk_elements: int = 1_000_000,
) -> tuple[float, float]:
    """Percentile bootstrap (2.5%, 97.5%) of (mean(ft) − mean(pt)) / mean(pt), resampling prompts.

    Vectorised in chunks of resamples so memory stays bounded (10,000 × 10,000 prompts would be
    800 MB as one index matrix). Both means of one resample use the same indices: the pair is
    packed into one complex array so a single gather serves both.
    """
    n = len(pretrained)
    packed = pretrained.astype(np.float64) + 1j * finetuned.astype(np.float64)
    rng = np.random.default_rng(seed)
    per_chunk = max(1, chunk_elements // max(n, 1))
    estimates = np.empty(n_resamples, dtype=np.float64)
    index_dtype = np.int32 if n < 2**31 else np.int64
    done = 0
    while done < n_resamples:
        size = min(per_chunk, n_resamples - done)
        idx = rng.integers(0, n, size=(size, n), dtype=index_dtype)
        sums = np.take(packed, idx).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            estimates[done : done + size] = (sums.imag - sums.real) / sums.real
        done += size
    lo, hi = np.nanpercentile(estimates, [2.5, 97.5])
    return float(lo), float(hi)


def relevance(
    prompt_codes: np.ndarray,
    pretrained_scores: np.ndarray,
    finetuned_scores: np.ndarray,
    n_prompts: int,
    *,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """Relevance improvement of the fine-tuned model (SPEC "Report" definitions).

    One entry per rating: ``prompt_codes[i]`` in 0..n_prompts-1 and both scores of that rating.
    """
    out: dict[str, Any] = {
        "pretrained_mean": None,
        "finetuned_mean": None,
        "improvement": None,
        "ci95": None,
        "wilcoxon_p": None,
        "n_prompts": 0,
        "n_ratings": len(prompt_codes),
        "method": (
            "prompt mean = mean score over the prompt's ratings; role mean = mean of prompt means over "
            "prompts rated for both roles; improvement = (finetuned − pretrained) / pretrained; ci95 = "
            f"percentile bootstrap over prompts ({n_resamples:,} resamples, seed {seed}); wilcoxon_p = "
            "two-sided Wilcoxon signed-rank test on per-prompt differences (scipy defaults)"
        ),
    }
    pt_means, pt_counts = prompt_means(prompt_codes, pretrained_scores, n_prompts)
    ft_means, ft_counts = prompt_means(prompt_codes, finetuned_scores, n_prompts)
    both = (pt_counts > 0) & (ft_counts > 0)
    pt = pt_means[both]
    ft = ft_means[both]
    n = int(both.sum())
    out["n_prompts"] = n
    if n == 0:
        reason = "no prompt has ratings yet"
        for key in ("pretrained_mean", "finetuned_mean", "improvement", "ci95", "wilcoxon_p"):
            out[f"{key}_reason"] = reason
        return out
    pt_mean = float(pt.mean())
    ft_mean = float(ft.mean())
    out["pretrained_mean"] = pt_mean
    out["finetuned_mean"] = ft_mean
    out["difference"] = ft_mean - pt_mean
    if pt_mean == 0:
        out["improvement_reason"] = out["ci95_reason"] = (
            "pre-trained mean is zero: a relative change is undefined"
        )
    else:
        out["improvement"] = (ft_mean - pt_mean) / pt_mean
        if n < 2:
            out["ci95_reason"] = "a bootstrap needs at least 2 prompts"
        else:
            out["ci95"] = list(bootstrap_improvement_ci(pt, ft, n_resamples=n_resamples, seed=seed))
    differences = ft - pt
    if n < 2:
        out["wilcoxon_p_reason"] = "the signed-rank test needs at least 2 prompts"
    elif not np.any(differences != 0):
        out["wilcoxon_p_reason"] = "every per-prompt difference is zero: nothing to test"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = finite(stats.wilcoxon(differences).pvalue)
        out["wilcoxon_p"] = p
        if p is None:
            out["wilcoxon_p_reason"] = "scipy could not compute a p-value for these differences"
    return out


def win_rate(pretrained_scores: np.ndarray, finetuned_scores: np.ndarray) -> dict[str, Any]:
    """Over ratings (both scores of each): shares where the fine-tuned answer scored higher, lower, equal."""
    n = len(pretrained_scores)
    out: dict[str, Any] = {
        "finetuned": None,
        "pretrained": None,
        "tie": None,
        "n": n,
        "method": "share of ratings where the fine-tuned answer scored higher / lower / equal",
    }
    if n == 0:
        out["reason"] = "no ratings yet"
        return out
    out["finetuned"] = float(np.mean(finetuned_scores > pretrained_scores))
    out["pretrained"] = float(np.mean(finetuned_scores < pretrained_scores))
    out["tie"] = float(np.mean(finetuned_scores == pretrained_scores))
    return out


def score_distribution(scores: np.ndarray) -> list[int]:
    """Counts of scores 1..5."""
    return [int(c) for c in np.bincount(scores.astype(np.int64), minlength=6)[1:6]]
