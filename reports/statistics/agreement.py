"""Agreement: Krippendorff's alpha over (pair, role) units, and each rater against the others."""

from __future__ import annotations

import warnings
from typing import Any

import krippendorff
import numpy as np
from scipy import stats

from reports.statistics.common import MIN_FOR_CORRELATION, NO_VERDICT, finite


def krippendorff_alpha(
    unit_codes: np.ndarray, value_codes: np.ndarray, n_units: int, n_values: int, level: str
) -> dict[str, Any]:
    """Alpha from one (unit, value) entry per rating of a unit; values coded 0..n_values-1.

    Built as a units × values count matrix, so the cost does not depend on the number of raters.
    Units with fewer than 2 values carry no pairable information and are dropped, as alpha does.
    """
    counts = np.zeros((n_units, n_values), dtype=np.int64)
    np.add.at(counts, (unit_codes, value_codes), 1)
    pairable = counts.sum(axis=1) >= 2
    counts = counts[pairable]
    n_pairable = int(pairable.sum())
    out: dict[str, Any] = {"alpha": None, "n_units": n_pairable, "level": level}
    if n_pairable == 0:
        out["reason"] = "no unit has 2 or more ratings (fewer than 2 raters on every unit)"
        return out
    if np.count_nonzero(counts.sum(axis=0)) < 2:
        out["reason"] = "too little variation: every rating gave the same value"
        return out
    try:
        alpha = krippendorff.alpha(value_counts=counts, level_of_measurement=level)
    except ValueError as exc:
        out["reason"] = f"alpha undefined: {exc}"
        return out
    out["alpha"] = finite(alpha)
    if out["alpha"] is None:
        out["reason"] = "alpha undefined for these ratings"
    return out


def agreement(
    pair_codes: np.ndarray,
    pretrained_scores: np.ndarray,
    finetuned_scores: np.ndarray,
    pretrained_verdicts: np.ndarray,
    finetuned_verdicts: np.ndarray,
    n_pairs: int,
) -> dict[str, Any]:
    """Units are (pair, role): unit code = 2 × pair + (0 pretrained, 1 finetuned)."""
    units = np.concatenate([2 * pair_codes, 2 * pair_codes + 1])
    scores = np.concatenate([pretrained_scores, finetuned_scores]).astype(np.int64)
    score = krippendorff_alpha(units, scores - 1, 2 * n_pairs, 5, "interval")
    verdicts = np.concatenate([pretrained_verdicts, finetuned_verdicts])
    given = verdicts != NO_VERDICT
    correct = krippendorff_alpha(units[given], verdicts[given].astype(np.int64), 2 * n_pairs, 2, "nominal")
    out: dict[str, Any] = {
        "score_alpha": score["alpha"],
        "correct_alpha": correct["alpha"],
        "n_units": score["n_units"],
        "correct_n_units": correct["n_units"],
        "method": "Krippendorff's alpha; units = (pair, role); interval metric on scores 1–5, nominal on "
        "correctness (empty verdicts left out); units with fewer than 2 ratings are dropped",
    }
    if score["alpha"] is None:
        out["score_alpha_reason"] = score["reason"]
    if correct["alpha"] is None:
        out["correct_alpha_reason"] = correct["reason"]
    return out


def _correlations(x: np.ndarray, y: np.ndarray, prefix: str = "") -> dict[str, Any]:
    """Pearson and Spearman of x and y (scipy), null with a reason when undefined."""
    out: dict[str, Any] = {f"{prefix}pearson": None, f"{prefix}spearman": None, f"{prefix}spearman_p": None}
    n = len(x)
    reason = None
    if n < MIN_FOR_CORRELATION:
        reason = f"a correlation needs at least {MIN_FOR_CORRELATION} paired values (n={n})"
    elif np.all(x == x[0]) or np.all(y == y[0]):
        reason = "one side is constant: a correlation is undefined"
    if reason:
        for key in ("pearson", "spearman", "spearman_p"):
            out[f"{prefix}{key}_reason"] = reason
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out[f"{prefix}pearson"] = finite(stats.pearsonr(x, y).statistic)
        rho = stats.spearmanr(x, y)
    out[f"{prefix}spearman"] = finite(rho.statistic)
    out[f"{prefix}spearman_p"] = finite(rho.pvalue)
    return out


def agreement_with_others(
    unit_codes: np.ndarray, annotator_codes: np.ndarray, scores: np.ndarray, n_annotators: int
) -> list[dict[str, Any]]:
    """For each annotator (code 0..n-1): their score on each unit against the mean of the other raters
    on the same unit. One entry per (rating, role): units are (pair, role).

    An annotator's score on a unit is the mean of their entries there (normally one). Units nobody
    else rated are left out. Returns per annotator: n_units, mean_abs_diff, pearson, spearman,
    spearman_p (each null with a ``<key>_reason`` when undefined).
    """
    scores = scores.astype(np.float64)
    n_units = int(unit_codes.max()) + 1 if len(unit_codes) else 0
    out: list[dict[str, Any]] = []
    if n_units == 0:
        for _ in range(n_annotators):
            out.append(_empty_agreement("no ratings"))
        return out
    unit_sum = np.bincount(unit_codes, weights=scores, minlength=n_units)
    unit_cnt = np.bincount(unit_codes, minlength=n_units)
    keys = annotator_codes.astype(np.int64) * n_units + unit_codes
    uniq, inverse = np.unique(keys, return_inverse=True)
    own_sum = np.bincount(inverse, weights=scores)
    own_cnt = np.bincount(inverse)
    key_annotator = uniq // n_units
    key_unit = uniq % n_units
    others_cnt = unit_cnt[key_unit] - own_cnt
    with np.errstate(invalid="ignore", divide="ignore"):
        others_mean = (unit_sum[key_unit] - own_sum) / others_cnt
    own_mean = own_sum / own_cnt
    shared = others_cnt > 0
    for code in range(n_annotators):
        mine = shared & (key_annotator == code)
        n = int(mine.sum())
        if n == 0:
            out.append(_empty_agreement("no overlap: nobody else rated the same (pair, role) units"))
            continue
        x, y = own_mean[mine], others_mean[mine]
        entry: dict[str, Any] = {"n_units": n, "mean_abs_diff": float(np.abs(x - y).mean())}
        entry.update(_correlations(x, y))
        out.append(entry)
    return out


def _empty_agreement(reason: str) -> dict[str, Any]:
    out: dict[str, Any] = {"n_units": 0}
    for key in ("mean_abs_diff", "pearson", "spearman", "spearman_p"):
        out[key] = None
        out[f"{key}_reason"] = reason
    return out
