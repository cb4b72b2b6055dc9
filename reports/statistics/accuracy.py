"""Accuracy: majority verdicts, Wilson interval, exact McNemar, and the automated label matchers."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from reports.statistics.common import NO_VERDICT, finite


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% by default); None for an empty sample."""
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
        out["p"] = finite(stats.binomtest(only_ft, only_ft + only_pt, 0.5, alternative="two-sided").pvalue)
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
    "sentiment": (
        "the first of positive/negative/neutral in the answer (whole word, any case) equals the label"
    ),
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
