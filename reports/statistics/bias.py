"""Biases a rater may bring: position (left/right), side preference per rater, and answer length."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from reports.statistics.common import MIN_FOR_CORRELATION, ROLES, finite
from reports.statistics.intervals import exact_binomial_p, holm

LENGTH_BINS = 6


BIAS_FAMILY_METHOD = (
    "p_holm = the per-pair p adjusted by Holm's step-down method across the per-pair bias tests "
    "(position and length; family-wise error 5%); cautions use the adjusted p"
)


def favoured_side(wins: int, losses: int, first: str, second: str) -> str | None:
    """The side that won more often (``first`` when wins > losses), None when even."""
    if wins == losses:
        return None
    return first if wins > losses else second


def _binomial_block(wins: int, losses: int, first: str, second: str) -> dict[str, Any]:
    """Share of ``first`` wins among decided observations, exact binomial p, the favoured side."""
    n = wins + losses
    out: dict[str, Any] = {
        "n": n,
        "share": None,
        "p": finite(exact_binomial_p(wins, n)) if n else None,
        "wins": wins,
        "favoured": favoured_side(wins, losses, first, second),
    }
    if n:
        out["share"] = wins / n
    return out


def per_pair_signs(pair_codes: np.ndarray, margins: np.ndarray, n_pairs: int) -> tuple[int, int]:
    """One observation per pair: the mean of its ratings' margins; returns (pairs above 0, below 0).
    The mean's sign is the integer sum's, so ratings that cancel make a tie."""
    counts = np.bincount(pair_codes, minlength=n_pairs)
    sums = np.bincount(pair_codes, weights=margins.astype(np.float64), minlength=n_pairs)
    rated = counts > 0
    return int((sums[rated] > 0).sum()), int((sums[rated] < 0).sum())


def position_bias(
    left_scores: np.ndarray,
    right_scores: np.ndarray,
    pair_codes: np.ndarray | None = None,
    n_pairs: int = 0,
) -> dict[str, Any]:
    """Over ratings with unequal scores: how often the left answer won, and whether that differs from
    chance (the left/right order was drawn at random, so a fair rater sits near 0.5). With
    ``pair_codes``, ``per_pair`` is the same on one observation per pair (its raters' mean of left −
    right), the figure claims use: ratings of one pair share its answers and are not independent."""
    untied = left_scores != right_scores
    n = int(untied.sum())
    left_wins = int((left_scores > right_scores).sum())
    out: dict[str, Any] = {
        "left_win_rate": None,
        "p": None,
        "n": n,
        "left_wins": left_wins,
        "favoured": favoured_side(left_wins, n - left_wins, "left", "right"),
        "method": "share of non-tied ratings where the left answer scored higher; p = two-sided exact "
        "binomial test against 0.5; per_pair: the same over pairs, each pair one observation (the mean "
        "of its ratings' left − right scores; a mean of 0 is a tie); favoured = the side that won more "
        "often (a left win rate under 0.5 favours the right answer)",
    }
    if n == 0:
        out["left_win_rate_reason"] = out["p_reason"] = "no rating with unequal scores yet"
    else:
        out["left_win_rate"] = left_wins / n
        out["p"] = finite(exact_binomial_p(left_wins, n))
    if pair_codes is not None:
        wins, losses = per_pair_signs(pair_codes, left_scores - right_scores, n_pairs)
        block = _binomial_block(wins, losses, "left", "right")
        per_pair = {
            "left_win_rate": block["share"],
            "p": block["p"],
            "n": block["n"],
            "left_wins": wins,
            "favoured": block["favoured"],
        }
        if not block["n"]:
            per_pair["left_win_rate_reason"] = per_pair["p_reason"] = "no pair with unequal mean scores yet"
        out["per_pair"] = per_pair
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
    out["p"] = finite(exact_binomial_p(left, n))
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
        out[role] = [{"mean_score": (float(s / c) if c else None), "n": int(c)} for s, c in zip(sums, counts)]
    return out


def length_bias(
    pretrained_scores: np.ndarray,
    finetuned_scores: np.ndarray,
    pretrained_chars: np.ndarray,
    finetuned_chars: np.ndarray,
    pair_codes: np.ndarray | None = None,
    n_pairs: int = 0,
) -> dict[str, Any]:
    """One entry per rating: both scores and the lengths (characters) of the two answers it judged.
    With ``pair_codes``, ``per_pair`` and ``per_answer`` count each pair (each answer) once."""
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
    # +1 where the fine-tuned answer is the longer one, -1 where shorter, 0 for equal lengths
    ft_longer = np.sign(finetuned_chars.astype(np.int64) - pretrained_chars)
    margins = ft_longer * (finetuned_scores.astype(np.int64) - pretrained_scores)
    decided = margins != 0
    n = int(decided.sum())
    longer_wins = int((margins > 0).sum())
    longer: dict[str, Any] = {"share": None, "p": None, "n": n, "longer_wins": longer_wins}
    if n == 0:
        longer["share_reason"] = longer["p_reason"] = (
            "no rating with unequal scores on answers of unequal length"
        )
    else:
        longer["share"] = longer_wins / n
        longer["p"] = finite(exact_binomial_p(longer_wins, n))
    out["longer_wins"] = longer
    if pair_codes is not None:
        out["per_pair"] = _longer_wins_per_pair(pair_codes, margins, n_pairs)
        out["per_answer"] = _per_answer(pair_codes, scores, chars, n_pairs)
    out["bins"] = length_bins(chars, scores)
    out["method"] = LENGTH_METHOD
    return out


LENGTH_METHOD = (
    "answer length = characters of the answer text (the export's answer_chars); spearman = Spearman "
    "rank correlation (scipy.stats.spearmanr) of score and length over rating × answer rows, per role "
    "and overall; its p treats rows as independent, which answers rated several times are not, so it "
    "is optimistic; per_answer: the same with one row per answer (its mean score); longer_wins = share "
    "of ratings with unequal scores and unequal lengths where the longer answer scored higher, p = "
    "two-sided exact binomial test against 0.5; per_pair: the same with one observation per pair of "
    "unequal lengths (its raters' mean of longer − shorter score; a mean of 0 is a tie), the figure "
    "cautions use; length goes with content, so a longer answer that wins may simply be better; bins = "
    "mean score per length bin (quantile edges over both roles)"
)


def _longer_wins_per_pair(pair_codes: np.ndarray, margins: np.ndarray, n_pairs: int) -> dict[str, Any]:
    wins, losses = per_pair_signs(pair_codes, margins, n_pairs)
    block = _binomial_block(wins, losses, "longer", "shorter")
    out = {"share": block["share"], "p": block["p"], "n": block["n"], "longer_wins": wins}
    out["favoured"] = block["favoured"]
    if not block["n"]:
        out["share_reason"] = out["p_reason"] = "no pair of unequal lengths with unequal mean scores"
    return out


def _per_answer(
    pair_codes: np.ndarray, scores: dict[str, np.ndarray], chars: dict[str, np.ndarray], n_pairs: int
) -> dict[str, Any]:
    """Spearman of each answer's mean score and its length, one row per rated answer."""
    counts = np.bincount(pair_codes, minlength=n_pairs)
    rated = counts > 0
    means, lengths = {}, {}
    for role in ROLES:
        sums = np.bincount(pair_codes, weights=scores[role].astype(np.float64), minlength=n_pairs)
        means[role] = sums[rated] / counts[rated]
        first = np.zeros(n_pairs, dtype=np.int64)
        first[pair_codes] = chars[role]  # every rating of a pair carries the same answer lengths
        lengths[role] = first[rated]
    out: dict[str, Any] = {
        "overall": _spearman_block(
            np.concatenate([means[r] for r in ROLES]), np.concatenate([lengths[r] for r in ROLES])
        )
    }
    for role in ROLES:
        out[role] = _spearman_block(means[role], lengths[role])
    return out


def adjust_bias_family(position: dict[str, Any], length: dict[str, Any]) -> None:
    """Holm across the per-pair bias tests (position, length), in place: adds ``p_holm`` to each."""
    blocks = [position.get("per_pair"), length.get("per_pair")]
    present = [b for b in blocks if b is not None]
    for block, p in zip(present, holm([b["p"] for b in present]), strict=True):
        block["p_holm"] = p
        block["multiplicity_method"] = BIAS_FAMILY_METHOD
        if p is None:
            block["p_holm_reason"] = block.get("p_reason", "no test")
