"""Would another panel of raters agree? The score difference with an interval over prompts and raters.

The headline interval (`relevance.difference_ci95`) treats prompts as the random units: it says what
this campaign's raters would give on new prompts. Raters differ in taste too, and with few of them a
panel's shared taste moves the whole figure; no number of prompts averages it away. This interval
treats both prompts and raters as random: the two-way cluster-robust variance of the mean difference
(Cameron, Gelbach and Miller 2011), with a t quantile on min(prompts, raters) − 1 degrees of freedom,
so a panel of a few raters gets a wide interval, as it should.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from reports.statistics.intervals import t_quantile

MIN_RATERS = 2
METHOD = (
    "the same score difference (fine-tuned − pre-trained, mean over prompts of each prompt's mean "
    "difference), with prompts AND raters as random: variance = prompt-clustered + rater-clustered − "
    "rating-level (Cameron, Gelbach and Miller's two-way cluster-robust variance, each part with its "
    "G/(G − 1) correction; never below the prompt-clustered part); 95% interval and two-sided p from a "
    "t distribution on min(prompts, raters) − 1 degrees of freedom. It says whether a new panel of "
    "raters, drawn like this one, would see a difference; with few raters it is wide. bench/coverage.py "
    "measures how often it misses the difference over new raters."
)


def _clustered(contributions: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """Σ_g (Σ_{i in g} c_i)² × G/(G − 1) over the groups present, and G."""
    _, codes = np.unique(groups, return_inverse=True)
    sums = np.bincount(codes, weights=contributions)
    g = len(sums)
    if g < 2:
        return float("nan"), g
    return float(np.sum(sums**2) * g / (g - 1)), g


def across_raters(
    prompt_codes: np.ndarray,
    rater_codes: np.ndarray,
    pretrained_scores: np.ndarray,
    finetuned_scores: np.ndarray,
    n_prompts: int,
) -> dict[str, Any]:
    """The mean score difference with its interval over new prompts and new raters (see the module).

    One entry per rating: its prompt code (0..n_prompts-1), its rater, both scores.
    """
    out: dict[str, Any] = {
        "difference": None,
        "ci95": None,
        "p": None,
        "df": None,
        "n_prompts": 0,
        "n_annotators": int(len(np.unique(rater_codes))),
        "method": METHOD,
    }
    if len(prompt_codes) == 0:
        out["reason"] = "no prompt has ratings yet"
        return out
    d = (finetuned_scores.astype(np.float64) - pretrained_scores).astype(np.float64)
    counts = np.bincount(prompt_codes, minlength=n_prompts)
    sums = np.bincount(prompt_codes, weights=d, minlength=n_prompts)
    rated = counts > 0
    n = int(rated.sum())
    prompt_diffs = sums[rated] / counts[rated]
    mean = float(prompt_diffs.mean())
    out.update(difference=mean, n_prompts=n)
    if out["n_annotators"] < MIN_RATERS:
        out["reason"] = (
            "one annotator: whether other raters would agree cannot be measured (it needs at least "
            f"{MIN_RATERS})"
        )
        return out
    if n < 2:
        out["reason"] = "one prompt: no interval"
        return out
    # each rating's share of the mean, times its residual: the mean's influence function per rating
    contributions = (d - mean) / (n * counts[prompt_codes])
    v_prompt, g_prompt = _clustered(contributions, prompt_codes)
    v_rater, g_rater = _clustered(contributions, rater_codes)
    m = len(d)
    v_cell = float(np.sum(contributions**2) * m / (m - 1)) if m > 1 else 0.0
    variance = max(v_prompt + v_rater - v_cell, v_prompt)
    df = min(g_prompt, g_rater) - 1
    out["df"] = df
    if not variance > 0:
        out["reason"] = "every rating gives the same difference: the interval would have zero width"
        return out
    se = float(np.sqrt(variance))
    half = t_quantile(0.95, df) * se
    out["ci95"] = [mean - half, mean + half]
    out["p"] = float(2 * stats.t.sf(abs(mean) / se, df))
    return out
