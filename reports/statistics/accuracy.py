"""Accuracy: majority verdicts, Wilson interval, exact McNemar on paired prompts with the share of
discordant prompts each model wins, Holm across tasks, and the automated label matchers."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from reports.statistics.common import NO_VERDICT, small_sample
from reports.statistics.intervals import clopper_pearson, exact_binomial_p, holm, wilson_interval

MULTIPLICITY_METHOD = (
    "mcnemar_p_holm = the exact McNemar p adjusted by Holm's step-down method across the tasks that "
    "have a McNemar test (family-wise error 5%); accuracy claims use the adjusted p"
)


def majority_verdicts(unit_codes: np.ndarray, verdicts: np.ndarray, n_units: int) -> np.ndarray:
    """Per unit: 1 when more than half of the raters asked said correct, 0 when more than half said
    incorrect, -1 otherwise. Every rating of the unit counts as one rater asked; "not sure" (an empty
    verdict) counts for neither side, so one "correct" and two "not sure" is no verdict, and a tie
    gives none either."""
    asked = np.bincount(unit_codes, minlength=n_units)
    yes = np.bincount(unit_codes[verdicts == 1], minlength=n_units)
    no = np.bincount(unit_codes[verdicts == 0], minlength=n_units)
    out = np.full(n_units, NO_VERDICT, dtype=np.int8)
    out[2 * yes > asked] = 1
    out[2 * no > asked] = 0
    return out


def mcnemar_exact(pretrained: np.ndarray, finetuned: np.ndarray) -> dict[str, Any]:
    """Exact McNemar test on paired verdicts (both arrays 0/1, same prompts), with the share of the
    discordant prompts where the fine-tuned answer was the correct one and its Clopper-Pearson interval
    (it excludes 1/2 exactly when p < 0.05: both come from the same binomial)."""
    only_ft = int(((finetuned == 1) & (pretrained == 0)).sum())
    only_pt = int(((pretrained == 1) & (finetuned == 0)).sum())
    discordant = only_ft + only_pt
    out: dict[str, Any] = {
        "p": None,
        "n_pairs": len(pretrained),
        "only_finetuned": only_ft,
        "only_pretrained": only_pt,
        "discordant": discordant,
        "finetuned_share_of_discordant": None,
        "discordant_ci95": None,
        "favours": None,
    }
    if len(pretrained) == 0:
        out["reason"] = "no prompt has a majority verdict for both answers"
    elif discordant == 0:
        out["reason"] = "no discordant pairs: both answers judged the same on every prompt"
    else:
        out["p"] = exact_binomial_p(only_ft, discordant)
        out["finetuned_share_of_discordant"] = only_ft / discordant
        out["discordant_ci95"] = list(clopper_pearson(only_ft, discordant))  # type: ignore[arg-type]
        if only_ft != only_pt:
            out["favours"] = "finetuned" if only_ft > only_pt else "pretrained"
    return out


def role_accuracy(verdicts: np.ndarray) -> dict[str, Any]:
    """Accuracy over majority verdicts (0/1; -1 entries are left out)."""
    judged = verdicts[verdicts != NO_VERDICT]
    n = len(judged)
    correct = int(judged.sum())
    out: dict[str, Any] = {"accuracy": None, "ci95": None, "n": n, "correct": correct, **small_sample(n)}
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
    """Accuracy of both roles over the pairs given (one entry per rating), plus McNemar.

    ``pretrained`` and ``finetuned`` are each over every verdict of that role (the SPEC figures);
    ``paired`` restricts both to the prompts with a verdict for both answers, the prompts McNemar
    compares, so a claim's two accuracies and its test describe the same prompts."""
    pt_major = majority_verdicts(pair_codes, pretrained_verdicts, n_pairs)
    ft_major = majority_verdicts(pair_codes, finetuned_verdicts, n_pairs)
    both = (pt_major != NO_VERDICT) & (ft_major != NO_VERDICT)
    mc = mcnemar_exact(pt_major[both], ft_major[both])
    out: dict[str, Any] = {
        "pretrained": role_accuracy(pt_major),
        "finetuned": role_accuracy(ft_major),
        "mcnemar_p": mc["p"],
        "mcnemar": mc,
        "paired": {
            "n": int(both.sum()),
            "pretrained": role_accuracy(pt_major[both]),
            "finetuned": role_accuracy(ft_major[both]),
            **small_sample(int(both.sum())),
        },
    }
    if mc["p"] is None:
        out["mcnemar_p_reason"] = mc["reason"]
    return out


def adjust_across_tasks(accuracy: dict[str, dict[str, Any]]) -> None:
    """Holm-adjust the tasks' McNemar p-values as one family: adds ``mcnemar_p_holm`` (null with a
    reason where a task has no test) and ``n_tests`` to each task's block, in place."""
    tasks = list(accuracy)
    adjusted = holm([accuracy[t]["mcnemar_p"] for t in tasks])
    n_tests = sum(p is not None for p in adjusted)
    for task, p in zip(tasks, adjusted, strict=True):
        block = accuracy[task]
        block["mcnemar_p_holm"] = p
        block["n_tests"] = n_tests
        block["multiplicity_method"] = MULTIPLICITY_METHOD
        if p is None:
            block["mcnemar_p_holm_reason"] = block.get("mcnemar_p_reason", "no McNemar test")
