"""Biases a rater may bring: position (left/right), side preference per rater, and answer length."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from reports.statistics.common import MIN_FOR_CORRELATION, ROLES, finite

LENGTH_BINS = 6


def position_bias(left_scores: np.ndarray, right_scores: np.ndarray) -> dict[str, Any]:
    """Over ratings with unequal scores: how often the left answer won, and whether that differs from
    chance (the left/right order was drawn at random, so a fair rater sits near 0.5)."""
    untied = left_scores != right_scores
    n = int(untied.sum())
    left_wins = int((left_scores > right_scores).sum())
    out: dict[str, Any] = {
        "left_win_rate": None,
        "p": None,
        "n": n,
        "left_wins": left_wins,
        "method": "share of non-tied ratings where the left answer scored higher; p = two-sided exact "
        "binomial test against 0.5",
    }
    if n == 0:
        out["left_win_rate_reason"] = out["p_reason"] = "no rating with unequal scores yet"
        return out
    out["left_win_rate"] = left_wins / n
    out["p"] = finite(stats.binomtest(left_wins, n, 0.5, alternative="two-sided").pvalue)
    return out


def side_preference(preferences: Sequence[str]) -> dict[str, Any]:
    """Share of left among a rater's left/right preferences (ties and both-bad left out), exact binomial p."""
    left = sum(1 for p in preferences if p == "left")
    right = sum(1 for p in preferences if p == "right")
    n = left + right
    out: dict[str, Any] = {"left_share": None, "p": None, "n": n, "left": left}
    if n == 0:
        out["left_share_reason"] = out["p_reason"] = "no left/right preference given (only ties or both bad)"
        return out
    out["left_share"] = left / n
    out["p"] = finite(stats.binomtest(left, n, 0.5, alternative="two-sided").pvalue)
    return out


def _spearman_block(scores: np.ndarray, chars: np.ndarray) -> dict[str, Any]:
    n = len(scores)
    out: dict[str, Any] = {"spearman": None, "p": None, "n": n}
    if n < MIN_FOR_CORRELATION:
        out["spearman_reason"] = out["p_reason"] = f"needs at least {MIN_FOR_CORRELATION} rows (n={n})"
        return out
    if np.all(scores == scores[0]) or np.all(chars == chars[0]):
        out["spearman_reason"] = out["p_reason"] = (
            "every score is the same" if np.all(scores == scores[0]) else "every answer has the same length"
        )
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = stats.spearmanr(scores, chars)
    out["spearman"] = finite(rho.statistic)
    out["p"] = finite(rho.pvalue)
    if out["spearman"] is None:
        out["spearman_reason"] = out["p_reason"] = "scipy could not compute a correlation"
    return out


def length_bins(
    chars_by_role: dict[str, np.ndarray], scores_by_role: dict[str, np.ndarray], n_bins: int = LENGTH_BINS
) -> dict[str, Any]:
    """Mean score per answer-length bin, shared quantile edges over both roles (rating × answer rows)."""
    all_chars = np.concatenate([chars_by_role[r] for r in ROLES]).astype(np.float64)
    if len(all_chars) == 0:
        return {"edges": [], **{r: [] for r in ROLES}}
    edges = np.unique(np.quantile(all_chars, np.linspace(0, 1, n_bins + 1)))
    if len(edges) == 1:
        edges = np.array([edges[0], edges[0]])
    out: dict[str, Any] = {"edges": [float(e) for e in edges]}
    n = len(edges) - 1
    for role in ROLES:
        chars = chars_by_role[role].astype(np.float64)
        codes = np.clip(np.searchsorted(edges, chars, side="right") - 1, 0, n - 1)
        counts = np.bincount(codes, minlength=n)
        sums = np.bincount(codes, weights=scores_by_role[role].astype(np.float64), minlength=n)
        out[role] = [
            {"mean_score": (float(s / c) if c else None), "n": int(c)} for s, c in zip(sums, counts)
        ]
    return out


def length_bias(
    pretrained_scores: np.ndarray,
    finetuned_scores: np.ndarray,
    pretrained_chars: np.ndarray,
    finetuned_chars: np.ndarray,
) -> dict[str, Any]:
    """One entry per rating: both scores and the lengths (characters) of the two answers it judged."""
    scores = {"pretrained": pretrained_scores, "finetuned": finetuned_scores}
    chars = {"pretrained": pretrained_chars, "finetuned": finetuned_chars}
    out: dict[str, Any] = {
        "overall": _spearman_block(
            np.concatenate([pretrained_scores, finetuned_scores]),
            np.concatenate([pretrained_chars, finetuned_chars]),
        ),
    }
    for role in ROLES:
        out[role] = _spearman_block(scores[role], chars[role])
    decided = (pretrained_scores != finetuned_scores) & (pretrained_chars != finetuned_chars)
    n = int(decided.sum())
    ft_longer = finetuned_chars > pretrained_chars
    ft_higher = finetuned_scores > pretrained_scores
    longer_wins = int((decided & (ft_longer == ft_higher)).sum())
    longer: dict[str, Any] = {"share": None, "p": None, "n": n, "longer_wins": longer_wins}
    if n == 0:
        longer["share_reason"] = longer["p_reason"] = (
            "no rating with unequal scores on answers of unequal length"
        )
    else:
        longer["share"] = longer_wins / n
        longer["p"] = finite(stats.binomtest(longer_wins, n, 0.5, alternative="two-sided").pvalue)
    out["longer_wins"] = longer
    out["bins"] = length_bins(chars, scores)
    out["method"] = (
        "answer length = characters of the answer text (the export's answer_chars); spearman = Spearman "
        "rank correlation (scipy.stats.spearmanr) of score and length over rating × answer rows, per role "
        "and overall; its p treats rows as independent, which answers rated several times are not, so it "
        "is optimistic; longer_wins = share of ratings with unequal scores and unequal lengths where the "
        "longer answer scored higher, p = two-sided exact binomial test against 0.5; bins = mean score per "
        "length bin (quantile edges over both roles)"
    )
    return out
