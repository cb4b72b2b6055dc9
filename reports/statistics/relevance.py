"""The score difference (the headline), the relative improvement, their intervals and tests; win rate
over ratings and over prompts; score counts.

The unit of every interval and test here is the prompt: the ratings of one prompt share its two
answers, so they are not independent observations, while prompts are. Each prompt contributes one
difference, the mean over its ratings of (fine-tuned score − pre-trained score).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats

from reports.statistics.common import finite, small_sample
from reports.statistics.intervals import (
    EXACT_SIGN_FLIP_MAX_N,
    NORMAL_SIGN_FLIP_MIN_N,
    SIGN_FLIP_RESAMPLES,
    SIGN_FLIP_SEED,
    clopper_pearson,
    equal_values_reason,
    exact_binomial_p,
    mean_interval,
    ratio_interval,
    sign_flip_test,
    wilson_interval,
)

CI_METHOD = (
    "difference_ci95: the t-interval on the per-prompt differences (n − 1 degrees of freedom), widened "
    "at either end to Hall's (1992) skewness-corrected t-interval where that reaches further; ci95 (of "
    "the improvement): the ratios r for which that interval, on fine-tuned − r × pre-trained prompt "
    "means, contains 0 (Fieller's construction), so the two exclude 'no change' together. Why: prompts "
    "are the independent units (the ratings of one prompt share its answers); the t-interval is exact "
    "for normal differences but undercovers when a few prompts are much worse (skewed differences), and "
    "Hall's correction alone when a small tied sample looks skewed by chance; in bench/coverage.py's "
    "simulated campaigns (rater leniency, 1–5 raters per prompt, ceiling and tied scores, coarse "
    "ordinal scores, fine-tuning that breaks some prompts) their hull missed the truth at most 6% of "
    "the time from 30 prompts, where claims start. No interval is shown when every prompt has the same "
    "difference (it would have zero width)."
)


def prompt_means(
    prompt_codes: np.ndarray, scores: np.ndarray, n_prompts: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean score per prompt code (0..n_prompts-1) and the number of ratings behind each mean."""
    counts = np.bincount(prompt_codes, minlength=n_prompts)
    sums = np.bincount(prompt_codes, weights=scores.astype(np.float64), minlength=n_prompts)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return means, counts


def prompt_differences(
    prompt_codes: np.ndarray, pretrained_scores: np.ndarray, finetuned_scores: np.ndarray, n_prompts: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per rated prompt (ascending code): pre-trained mean, fine-tuned mean, and their difference.

    The difference's sign comes from an integer sum, so a prompt whose ratings cancel is exactly 0.
    """
    pt_means, counts = prompt_means(prompt_codes, pretrained_scores, n_prompts)
    ft_means, _ = prompt_means(prompt_codes, finetuned_scores, n_prompts)
    diff_sums = np.bincount(
        prompt_codes, weights=(finetuned_scores.astype(np.int64) - pretrained_scores), minlength=n_prompts
    )
    rated = counts > 0
    return pt_means[rated], ft_means[rated], diff_sums[rated] / counts[rated]


def _method(n_resamples: int, seed: int) -> str:
    return (
        "prompt mean = mean score over the prompt's ratings; role mean = mean of prompt means over "
        "prompts rated for both roles; difference = fine-tuned − pre-trained role mean, on the raters' "
        "1–5 score (the headline); improvement = (fine-tuned − pre-trained) / pre-trained, "
        "scale-dependent: the same ratings coded 0–4 or 6–10 give another percentage; permutation_p = "
        "two-sided paired sign-flip permutation test of the mean per-prompt difference (zero differences "
        f"kept: they count in n and add nothing; exact up to {EXACT_SIGN_FLIP_MAX_N} prompts, then "
        f"{n_resamples:,} random sign patterns (seed {seed}), and from {NORMAL_SIGN_FLIP_MIN_N:,} prompts "
        "the normal distribution with the sign flips' exact variance); wilcoxon_p = two-sided Wilcoxon "
        "signed-rank test on per-prompt differences (scipy defaults, which drop zero differences), shown for "
        "reference; claims use difference_ci95 and permutation_p, which must agree; the intervals "
        "generalise over prompts as this campaign's raters score them: another panel may score "
        "differently (each annotator's mean difference is in the annotator table; across_raters gives "
        "the interval that counts raters as a sample too)"
    )


def relevance(
    prompt_codes: np.ndarray,
    pretrained_scores: np.ndarray,
    finetuned_scores: np.ndarray,
    n_prompts: int,
    *,
    n_resamples: int = SIGN_FLIP_RESAMPLES,
    seed: int = SIGN_FLIP_SEED,
    wilcoxon: bool = True,
) -> dict[str, Any]:
    """The score difference and relative improvement of the fine-tuned model (SPEC "Report").

    One entry per rating: ``prompt_codes[i]`` in 0..n_prompts-1 and both scores of that rating.
    ``wilcoxon=False`` leaves out `wilcoxon_p` (no claim uses it; bench/coverage.py skips it because
    scipy's default runs a 2**n permutation for up to 13 prompts with ties, about a second each).
    """
    out: dict[str, Any] = {
        "pretrained_mean": None,
        "finetuned_mean": None,
        "improvement": None,
        "ci95": None,
        "wilcoxon_p": None,
        "n_prompts": 0,
        "n_ratings": len(prompt_codes),
        "difference": None,
        "difference_ci95": None,
        "permutation_p": None,
        "ci_method": CI_METHOD,
        "method": _method(n_resamples, seed),
    }
    pt, ft, differences = prompt_differences(prompt_codes, pretrained_scores, finetuned_scores, n_prompts)
    n = len(differences)
    out["n_prompts"] = n
    out.update(small_sample(n))
    if n == 0:
        reason = "no prompt has ratings yet"
        for key in ("pretrained_mean", "finetuned_mean", "improvement", "ci95", "wilcoxon_p", "difference"):
            out[f"{key}_reason"] = reason
        out["difference_ci95_reason"] = out["permutation_p_reason"] = reason
        return out
    pt_mean, ft_mean = float(pt.mean()), float(ft.mean())
    out.update(pretrained_mean=pt_mean, finetuned_mean=ft_mean, difference=ft_mean - pt_mean)
    no_interval = equal_values_reason(differences)
    if no_interval:
        out["difference_ci95_reason"] = no_interval
    else:
        out["difference_ci95"] = list(mean_interval(differences))
    _improvement(out, pt, ft, no_interval)
    _tests(out, differences, n_resamples, seed, wilcoxon)
    return out


def _improvement(out: dict[str, Any], pt: np.ndarray, ft: np.ndarray, no_interval: str | None) -> None:
    pt_mean, ft_mean = out["pretrained_mean"], out["finetuned_mean"]
    if pt_mean == 0:
        out["improvement_reason"] = out["ci95_reason"] = (
            "pre-trained mean is zero: a relative change is undefined"
        )
        return
    out["improvement"] = (ft_mean - pt_mean) / pt_mean
    if no_interval:
        out["ci95_reason"] = no_interval
        return
    ratio = ratio_interval(pt, ft)
    if ratio is None:
        out["ci95_reason"] = (
            "no single bounded interval for the ratio from so few prompts (the pre-trained mean is too "
            "uncertain, or the ratios kept are split)"
        )
        return
    out["ci95"] = [ratio[0] - 1, ratio[1] - 1]


def _tests(out: dict[str, Any], differences: np.ndarray, n_resamples: int, seed: int, wilcoxon: bool) -> None:
    n = len(differences)
    reason = None
    if n < 2:
        reason = "a paired test needs at least 2 prompts"
    elif not np.any(differences != 0):
        reason = "every per-prompt difference is zero: nothing to test"
    if reason:
        out["wilcoxon_p_reason"] = out["permutation_p_reason"] = reason
        return
    perm = sign_flip_test(differences, n_resamples=n_resamples, seed=seed)
    out["permutation_p"] = perm["p"]
    out["permutation_exact"] = perm["exact"]
    out["permutation_method"] = perm["method"]
    if not wilcoxon:
        out["wilcoxon_p_reason"] = "not computed (wilcoxon=False)"
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = finite(stats.wilcoxon(differences).pvalue)
    out["wilcoxon_p"] = p
    if p is None:
        out["wilcoxon_p_reason"] = "scipy could not compute a p-value for these differences"


def win_rate(
    pretrained_scores: np.ndarray,
    finetuned_scores: np.ndarray,
    prompt_codes: np.ndarray | None = None,
    n_prompts: int = 0,
) -> dict[str, Any]:
    """Over ratings (both scores of each): shares where the fine-tuned answer scored higher, lower,
    equal; with ``prompt_codes``, also ``by_prompt``: the same over prompt means, with intervals."""
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
    else:
        out["finetuned"] = float(np.mean(finetuned_scores > pretrained_scores))
        out["pretrained"] = float(np.mean(finetuned_scores < pretrained_scores))
        out["tie"] = float(np.mean(finetuned_scores == pretrained_scores))
    if prompt_codes is not None:
        _, _, differences = prompt_differences(prompt_codes, pretrained_scores, finetuned_scores, n_prompts)
        out["by_prompt"] = win_rate_by_prompt(differences)
    return out


def win_rate_by_prompt(differences: np.ndarray) -> dict[str, Any]:
    """Over prompts: shares whose fine-tuned mean score is higher / lower / equal, each with a Wilson
    interval (``ci95`` is the fine-tuned share's); and the sign test on the prompts that are not tied,
    with the Clopper-Pearson interval of the fine-tuned share among them (the two agree exactly)."""
    n = len(differences)
    wins, losses = int((differences > 0).sum()), int((differences < 0).sum())
    ties = n - wins - losses
    out: dict[str, Any] = {
        "finetuned": None,
        "pretrained": None,
        "tie": None,
        "n": n,
        "ci95": None,
        "pretrained_ci95": None,
        "tie_ci95": None,
        "finetuned_wins": wins,
        "pretrained_wins": losses,
        "ties": ties,
        "decided": {"n": wins + losses, "finetuned_share": None, "ci95": None, "sign_test_p": None},
        **small_sample(n),
        "method": "per prompt, the fine-tuned mean score is higher / lower / equal; shares over prompts "
        "with Wilson 95% intervals; decided = prompts not tied: fine-tuned share with its Clopper-Pearson "
        "95% interval and the two-sided exact sign test (binomial against 1/2)",
    }
    if n == 0:
        out["reason"] = "no prompt has ratings yet"
        return out
    for key, count in (("finetuned", wins), ("pretrained", losses), ("tie", ties)):
        out[key] = count / n
        ci_key = "ci95" if key == "finetuned" else f"{key}_ci95"
        out[ci_key] = list(wilson_interval(count, n))  # type: ignore[arg-type]
    decided = out["decided"]
    if wins + losses == 0:
        decided["reason"] = "every prompt is tied"
    else:
        decided["finetuned_share"] = wins / (wins + losses)
        decided["ci95"] = list(clopper_pearson(wins, wins + losses))  # type: ignore[arg-type]
        decided["sign_test_p"] = exact_binomial_p(wins, wins + losses)
    return out


def score_distribution(scores: np.ndarray) -> list[int]:
    """Counts of scores 1..5."""
    return [int(c) for c in np.bincount(scores.astype(np.int64), minlength=6)[1:6]]


def difference_by_task(
    prompt_codes: np.ndarray,
    pretrained_scores: np.ndarray,
    finetuned_scores: np.ndarray,
    pair_tasks: np.ndarray,
) -> dict[str, Any]:
    """Per task: the mean score difference over its rated prompts with the same t-interval as the
    headline, flagged when small. Descriptive: no per-task claim is made from these."""
    out: dict[str, Any] = {}
    rating_tasks = pair_tasks[prompt_codes] if len(prompt_codes) else np.array([], dtype=object)
    for task in sorted(set(pair_tasks.tolist())):
        mask = rating_tasks == task
        _, _, differences = prompt_differences(
            prompt_codes[mask], pretrained_scores[mask], finetuned_scores[mask], len(pair_tasks)
        )
        n = len(differences)
        block: dict[str, Any] = {"n_prompts": n, "difference": None, "difference_ci95": None}
        block.update(small_sample(n))
        if n == 0:
            block["difference_reason"] = block["difference_ci95_reason"] = "no prompt of this task rated"
        else:
            block["difference"] = float(differences.mean())
            reason = equal_values_reason(differences)
            if reason:
                block["difference_ci95_reason"] = reason
            else:
                block["difference_ci95"] = list(mean_interval(differences))
        out[task] = block
    return out
