"""The statistics behind the campaign report: pure functions on numpy arrays, no Django.

Every function returns a plain dict ready for JSON. A figure that cannot be computed honestly is
``None`` with a ``<key>_reason`` string next to it, so a reader never mistakes "no data" for "zero".
Inputs are in role terms (pre-trained / fine-tuned); the left/right translation happens before this.

Correctness verdicts are coded as int8: 1 = correct, 0 = incorrect, -1 = no verdict (null).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 20240601
# the smallest sample a plain-language claim is made from; below this the claim is refused
MIN_PROMPTS_FOR_CLAIM = 10
NO_VERDICT = -1

ROLES = ("pretrained", "finetuned")


def _f(value: float | np.floating | None) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# Relevance: prompt means, improvement, bootstrap CI, Wilcoxon
# --------------------------------------------------------------------------------------------


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
            p = _f(stats.wilcoxon(differences).pvalue)
        out["wilcoxon_p"] = p
        if p is None:
            out["wilcoxon_p_reason"] = "scipy could not compute a p-value for these differences"
    return out


# --------------------------------------------------------------------------------------------
# Win rate and position bias
# --------------------------------------------------------------------------------------------


def win_rate(pretrained_scores: np.ndarray, finetuned_scores: np.ndarray) -> dict[str, Any]:
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


def position_bias(left_scores: np.ndarray, right_scores: np.ndarray) -> dict[str, Any]:
    untied = left_scores != right_scores
    n = int(untied.sum())
    left_wins = int((left_scores > right_scores).sum())
    out: dict[str, Any] = {
        "left_win_rate": None,
        "p": None,
        "n": n,
        "left_wins": left_wins,
        "method": "share of non-tied ratings where the left answer scored higher; p = two-sided exact binomial "
        "test against 0.5",
    }
    if n == 0:
        out["left_win_rate_reason"] = out["p_reason"] = "no rating with unequal scores yet"
        return out
    out["left_win_rate"] = left_wins / n
    out["p"] = _f(stats.binomtest(left_wins, n, 0.5, alternative="two-sided").pvalue)
    return out


# --------------------------------------------------------------------------------------------
# Accuracy: majority verdicts, Wilson interval, exact McNemar, automated matchers
# --------------------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float] | None:
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def majority_verdicts(unit_codes: np.ndarray, verdicts: np.ndarray, n_units: int) -> np.ndarray:
    """Per unit: 1 when more raters said correct than incorrect, 0 when the reverse, -1 otherwise
    (a split, or nobody gave a verdict). Raters who left the verdict empty do not vote."""
    yes = np.bincount(unit_codes[verdicts == 1], minlength=n_units)
    no = np.bincount(unit_codes[verdicts == 0], minlength=n_units)
    out = np.full(n_units, NO_VERDICT, dtype=np.int8)
    out[yes > no] = 1
    out[no > yes] = 0
    return out


def mcnemar_exact(pretrained: np.ndarray, finetuned: np.ndarray) -> dict[str, Any]:
    """Exact McNemar test on paired verdicts (both arrays 0/1, same prompts)."""
    only_ft = int(((finetuned == 1) & (pretrained == 0)).sum())
    only_pt = int(((pretrained == 1) & (finetuned == 0)).sum())
    out: dict[str, Any] = {
        "p": None,
        "n_pairs": len(pretrained),
        "only_finetuned": only_ft,
        "only_pretrained": only_pt,
    }
    if len(pretrained) == 0:
        out["reason"] = "no prompt has a majority verdict for both answers"
    elif only_ft + only_pt == 0:
        out["reason"] = "no discordant pairs: both answers judged the same on every prompt"
    else:
        out["p"] = _f(stats.binomtest(only_ft, only_ft + only_pt, 0.5, alternative="two-sided").pvalue)
    return out


def role_accuracy(verdicts: np.ndarray) -> dict[str, Any]:
    """Accuracy over majority verdicts (0/1; -1 entries are left out)."""
    judged = verdicts[verdicts != NO_VERDICT]
    n = len(judged)
    correct = int(judged.sum())
    out: dict[str, Any] = {"accuracy": None, "ci95": None, "n": n, "correct": correct}
    if n == 0:
        out["reason"] = "no answer has a majority verdict"
        return out
    out["accuracy"] = correct / n
    out["ci95"] = list(wilson_interval(correct, n))  # type: ignore[arg-type]
    return out


_SENTIMENT_WORDS = re.compile(r"\b(positive|negative|neutral)\b", re.IGNORECASE)
_YES_NO_WORDS = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def _first_word_matcher(pattern: re.Pattern[str]) -> Callable[[str, str], bool]:
    def match(answer: str, label: str) -> bool:
        found = pattern.search(answer)
        return found is not None and found.group(1).lower() == label.strip().lower()

    return match


def _phrase_matcher(answer: str, label: str) -> bool:
    label = label.strip().lower()
    return bool(label) and label in answer.lower()


MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "sentiment": _first_word_matcher(_SENTIMENT_WORDS),
    "recommendation": _first_word_matcher(_YES_NO_WORDS),
}
MATCHER_METHODS = {
    "sentiment": "the first of positive/negative/neutral in the answer (whole word, any case) equals the label",
    "recommendation": "the first yes/no in the answer (whole word, any case) equals the label",
}
PHRASE_METHOD = "the label phrase appears in the answer (any case)"


def matcher_for(task: str) -> Callable[[str, str], bool]:
    return MATCHERS.get(task, _phrase_matcher)


def answer_matches(task: str, answer: str, label: str) -> bool:
    return matcher_for(task)(answer, label)


def automated_accuracy(task: str, labelled: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
    """``labelled``: (label, pretrained text, finetuned text) for each prompt of the task with a label."""
    match = matcher_for(task)
    n = len(labelled)
    out: dict[str, Any] = {
        "pretrained": None,
        "finetuned": None,
        "n": n,
        "method": MATCHER_METHODS.get(task, PHRASE_METHOD),
    }
    if n == 0:
        out["reason"] = "no prompt of this task has a label"
        return out
    pt_hits = sum(match(pt, label) for label, pt, _ in labelled)
    ft_hits = sum(match(ft, label) for label, _, ft in labelled)
    out["pretrained"] = pt_hits / n
    out["finetuned"] = ft_hits / n
    out["pretrained_ci95"] = list(wilson_interval(pt_hits, n))  # type: ignore[arg-type]
    out["finetuned_ci95"] = list(wilson_interval(ft_hits, n))  # type: ignore[arg-type]
    return out


def human_accuracy(
    pair_codes: np.ndarray,
    pretrained_verdicts: np.ndarray,
    finetuned_verdicts: np.ndarray,
    n_pairs: int,
) -> dict[str, Any]:
    """Accuracy of both roles over the pairs given (one entry per rating), plus McNemar."""
    pt_major = majority_verdicts(pair_codes, pretrained_verdicts, n_pairs)
    ft_major = majority_verdicts(pair_codes, finetuned_verdicts, n_pairs)
    both = (pt_major != NO_VERDICT) & (ft_major != NO_VERDICT)
    mc = mcnemar_exact(pt_major[both], ft_major[both])
    out: dict[str, Any] = {
        "pretrained": role_accuracy(pt_major),
        "finetuned": role_accuracy(ft_major),
        "mcnemar_p": mc["p"],
        "mcnemar": mc,
    }
    if mc["p"] is None:
        out["mcnemar_p_reason"] = mc["reason"]
    return out


# --------------------------------------------------------------------------------------------
# Agreement: Krippendorff's alpha
# --------------------------------------------------------------------------------------------


def krippendorff_alpha(
    unit_codes: np.ndarray, value_codes: np.ndarray, n_units: int, n_values: int, level: str
) -> dict[str, Any]:
    """Alpha from one (unit, value) entry per rating of a unit; values coded 0..n_values-1.

    Built as a units × values count matrix, so the cost does not depend on the number of raters.
    Units with fewer than 2 values carry no pairable information and are dropped, as alpha does.
    """
    import krippendorff

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
    out["alpha"] = _f(alpha)
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


# --------------------------------------------------------------------------------------------
# Latency, cost, score distribution
# --------------------------------------------------------------------------------------------


def latency(latency_ms: np.ndarray, output_tokens: np.ndarray) -> dict[str, Any]:
    """``latency_ms`` and ``output_tokens`` are float arrays with NaN where unknown."""
    known = ~np.isnan(latency_ms)
    n = int(known.sum())
    out: dict[str, Any] = {"p50_ms": None, "p95_ms": None, "tokens_per_s": None, "n": n}
    if n == 0:
        out["reason"] = "no answer has a recorded latency"
        return out
    out["p50_ms"] = float(np.percentile(latency_ms[known], 50))
    out["p95_ms"] = float(np.percentile(latency_ms[known], 95))
    both = known & ~np.isnan(output_tokens)
    seconds = float(latency_ms[both].sum()) / 1000.0
    if seconds > 0:
        out["tokens_per_s"] = float(output_tokens[both].sum()) / seconds
    else:
        out["tokens_per_s_reason"] = "no answer has both a latency and an output token count"
    return out


def cost(latency_ms: np.ndarray, gpu_hour_price_usd: float) -> dict[str, Any]:
    known = ~np.isnan(latency_ms)
    n = int(known.sum())
    out: dict[str, Any] = {
        "gpu_seconds": None,
        "per_request_usd": None,
        "gpu_hour_price_usd": gpu_hour_price_usd,
        "n": n,
        "method": "gpu_seconds = sum of answer latencies; per request = gpu_seconds per answer × price / 3600",
    }
    if n == 0:
        out["gpu_seconds_reason"] = out["per_request_usd_reason"] = "no answer has a recorded latency"
        return out
    gpu_seconds = float(latency_ms[known].sum()) / 1000.0
    out["gpu_seconds"] = gpu_seconds
    out["per_request_usd"] = gpu_seconds / n * gpu_hour_price_usd / 3600.0
    return out


def score_distribution(scores: np.ndarray) -> list[int]:
    """Counts of scores 1..5."""
    return [int(c) for c in np.bincount(scores.astype(np.int64), minlength=6)[1:6]]


# --------------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def ratings_each(counts: np.ndarray) -> str:
    counts = counts[counts > 0]
    if len(counts) == 0:
        return "no ratings"
    if counts.min() == counts.max():
        k = int(counts[0])
        return f"{k} rating{'s' if k != 1 else ''} each"
    return f"{counts.mean():.1f} ratings each on average"


def relevance_claim(rel: dict[str, Any], ratings_per_prompt: str) -> dict[str, Any]:
    n = rel["n_prompts"]
    claim: dict[str, Any] = {"metric": "relevance.improvement", "text": None, "refused": True, "reason": None}
    if rel["improvement"] is None:
        claim["reason"] = rel.get("improvement_reason", "improvement could not be computed")
        return claim
    if n < MIN_PROMPTS_FOR_CLAIM:
        claim["reason"] = f"only {n} prompts rated; at least {MIN_PROMPTS_FOR_CLAIM} are needed for a claim"
        return claim
    if rel["ci95"] is None:
        claim["reason"] = rel.get("ci95_reason", "no confidence interval")
        return claim
    lo, hi = rel["ci95"]
    imp = rel["improvement"]
    direction = "more" if imp >= 0 else "less"
    text = (
        f"Fine-tuned answers were rated {_pct(abs(imp))} {direction} relevant than pre-trained answers "
        f"(95% CI {lo * 100:.0f}–{hi * 100:.0f}%, {n} prompts, {ratings_per_prompt})."
    )
    if lo <= 0 <= hi:
        claim["reason"] = f"the 95% CI ({lo * 100:.0f}% to {hi * 100:.0f}%) includes 0: no detectable change"
        claim["would_read"] = text
        return claim
    claim.update(text=text, refused=False)
    return claim


def win_rate_claim(win: dict[str, Any]) -> dict[str, Any]:
    claim: dict[str, Any] = {"metric": "win_rate", "text": None, "refused": True, "reason": None}
    if win["n"] < MIN_PROMPTS_FOR_CLAIM:
        claim["reason"] = f"only {win['n']} ratings; at least {MIN_PROMPTS_FOR_CLAIM} are needed for a claim"
        return claim
    claim.update(
        refused=False,
        text=(
            f"In {win['n']} ratings the fine-tuned answer scored higher {_pct(win['finetuned'])} of the time, "
            f"lower {_pct(win['pretrained'])}, equal {_pct(win['tie'])}."
        ),
    )
    return claim


def accuracy_claim(task: str, block: dict[str, Any]) -> dict[str, Any]:
    claim: dict[str, Any] = {"metric": f"accuracy.{task}", "text": None, "refused": True, "reason": None}
    pt, ft = block["pretrained"], block["finetuned"]
    if pt["accuracy"] is None or ft["accuracy"] is None:
        claim["reason"] = "no majority verdicts for one of the roles"
        return claim
    n = min(pt["n"], ft["n"])
    if n < MIN_PROMPTS_FOR_CLAIM:
        claim["reason"] = f"only {n} judged answers; at least {MIN_PROMPTS_FOR_CLAIM} are needed for a claim"
        return claim
    p = block.get("mcnemar_p")
    p_text = (
        f"exact McNemar p = {p:.3g}" if p is not None else block.get("mcnemar_p_reason", "no McNemar test")
    )
    text = (
        f"On {task}, human-judged accuracy was {_pct(ft['accuracy'])} for fine-tuned answers "
        f"(95% CI {_pct(ft['ci95'][0])}–{_pct(ft['ci95'][1])}, n={ft['n']}) vs {_pct(pt['accuracy'])} "
        f"for pre-trained (95% CI {_pct(pt['ci95'][0])}–{_pct(pt['ci95'][1])}, n={pt['n']}); {p_text}."
    )
    if p is None or p >= 0.05:
        claim["reason"] = "the difference is not significant at 5% (exact McNemar test)"
        claim["would_read"] = text
        return claim
    claim.update(refused=False, text=text)
    return claim


# --------------------------------------------------------------------------------------------
# Per annotator: agreement with the others, side preference
# --------------------------------------------------------------------------------------------

MIN_FOR_CORRELATION = 3
GOLD_REASON = "no gold pairs in this campaign"


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
        out[f"{prefix}pearson"] = _f(stats.pearsonr(x, y).statistic)
        rho = stats.spearmanr(x, y)
    out[f"{prefix}spearman"] = _f(rho.statistic)
    out[f"{prefix}spearman_p"] = _f(rho.pvalue)
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
    out["p"] = _f(stats.binomtest(left, n, 0.5, alternative="two-sided").pvalue)
    return out


# --------------------------------------------------------------------------------------------
# Length bias: score against answer length
# --------------------------------------------------------------------------------------------

LENGTH_BINS = 6


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
    out["spearman"] = _f(rho.statistic)
    out["p"] = _f(rho.pvalue)
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
        longer["p"] = _f(stats.binomtest(longer_wins, n, 0.5, alternative="two-sided").pvalue)
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


# --------------------------------------------------------------------------------------------
# Identity leaks: answers that name a model, a vendor or their training
# --------------------------------------------------------------------------------------------

# (name, regex, literals) — regexes matched case-insensitively, whole words. A hit is a flag for a
# researcher to read, not a verdict: "Google" in an answer about search engines is a false positive
# by design, since a blinded rater who reads "I am ChatGPT" is no longer blind. `literals` are
# lower-case strings of which every match of the regex contains at least one; they let most answers
# be cleared with plain substring tests (the regex alone costs ~0.2 ms per answer).
IDENTITY_PATTERNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "as_an_ai",
        r"\bas an? (?:ai|artificial intelligence)\b(?: (?:language )?(?:model|assistant))?",
        ("as an ai", "as a ai", "as an artificial", "as a artificial"),
    ),
    ("language_model", r"\b(?:large )?language models?\b|\bLLMs?\b", ("language model", "llm")),
    ("ai_assistant", r"\bAI (?:assistant|model|chatbot)\b", ("ai assistant", "ai model", "ai chatbot")),
    (
        "developed_by",
        r"\b(?:developed|trained|created|built) by\b",
        ("developed by", "trained by", "created by", "built by"),
    ),
    ("fine_tuned", r"\bfine[- ]?tun(?:ed|ing)\b", ("fine-tun", "fine tun", "finetun")),
    ("openai", r"\bOpen ?AI\b", ("openai", "open ai")),
    ("chatgpt", r"\bChat ?GPT\b|\bGPT-?\d(?:\.\d)?\b", ("gpt",)),
    ("smollm", r"\bSmolLM\d*\b", ("smollm",)),
    ("hugging_face", r"\bHugging ?Face\b", ("huggingface", "hugging face")),
    ("llama", r"\b(?:Tiny)?Llama\b", ("llama",)),
    ("anthropic", r"\bAnthropic\b|\bClaude\b", ("anthropic", "claude")),
    ("google", r"\bGoogle\b|\bGemini\b|\bBard\b|\bDeepMind\b", ("google", "gemini", "bard", "deepmind")),
    ("other_vendor", r"\bMistral\b|\bQwen\b|\bMeta AI\b", ("mistral", "qwen", "meta ai")),
)
IDENTITY_REGEX = re.compile(
    "|".join(f"(?P<{name}>{pattern})" for name, pattern, _ in IDENTITY_PATTERNS), re.IGNORECASE
)
IDENTITY_LITERALS = tuple(sorted({lit for _, _, lits in IDENTITY_PATTERNS for lit in lits}))


def find_identity_leak(text: str) -> re.Match[str] | None:
    """The first identity phrase in ``text`` (text order), or None."""
    low = text.lower()
    if not any(lit in low for lit in IDENTITY_LITERALS):
        return None
    return IDENTITY_REGEX.search(text)


MAX_LISTED_LEAKS = 500


def identity_leaks(answers: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
    """``answers``: (prompt external_id, role, text). Flags each answer whose text matches
    IDENTITY_REGEX; the first match (in text order) is reported as the phrase."""
    counts = {role: 0 for role in ROLES}
    checked = {role: 0 for role in ROLES}
    flagged: list[dict[str, str]] = []
    for external_id, role, text in answers:
        checked[role] = checked.get(role, 0) + 1
        found = find_identity_leak(text or "")
        if found is None:
            continue
        counts[role] = counts.get(role, 0) + 1
        flagged.append(
            {"prompt": external_id, "role": role, "phrase": found.group(0), "pattern": found.lastgroup or ""}
        )
    flagged.sort(key=lambda f: (f["prompt"], f["role"]))
    return {
        "count": counts,
        "n_checked": checked,
        "n_flagged": len(flagged),
        "flagged": flagged[:MAX_LISTED_LEAKS],
        "truncated": len(flagged) > MAX_LISTED_LEAKS,
        "patterns": [{"name": name, "regex": pattern} for name, pattern, _ in IDENTITY_PATTERNS],
        "method": "each answer of the campaign's pairs is searched (any case, whole words) for the patterns "
        "listed; the first match is shown; a flag is for a researcher to read, not a verdict",
    }
