"""Two views of many systems beside the ranking: the win matrix (each ordered pair of systems, from
their direct comparisons) and each system against a chosen baseline as a mean score difference.

Both keep the two-system report's unit: the prompt. A prompt's judgments of one pair count as one
decision (won, lost or tied by the sign of its raters' preferences); a system's score on a prompt is
the mean over the ratings that showed it there, and the difference to the baseline is taken over
prompts where both were rated, with the headline's interval (`mean_interval`) and paired sign-flip
test, Holm-adjusted across the systems compared with the baseline.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reports.statistics.claims import ALPHA, MIN_PROMPTS_FOR_CLAIM
from reports.statistics.common import SCORE_SCALE, small_sample
from reports.statistics.intervals import (
    equal_values_reason,
    holm,
    mean_interval,
    sign_flip_test,
    wilson_interval,
)
from reports.statistics.systems_table import A_PREFERRED, B_PREFERRED, BOTH_BAD, TIE, JudgmentTable

WIN_MATRIX_METHOD = (
    "per ordered pair (row system, column system), from the judgments that showed both: ratings won, "
    "lost, tied (tie or both_bad; both_bad also counted apart) and in all; per prompt, the pair's "
    "judgments of that prompt are one decision, won or lost by the sign of (row preferred − column "
    "preferred) over its raters, tied at 0; share = prompts won / prompts decided (ties left out), with "
    "its Wilson 95% interval; share(row, column) = 1 − share(column, row)"
)
BASELINE_METHOD = (
    "per prompt, each system's score = mean over the ratings that showed its answer; difference = "
    "mean over prompts where both the system and the baseline were rated of (system − baseline), on "
    f"{SCORE_SCALE}; ci95: the two-system headline's interval (t, widened to Hall's skewness "
    "correction) over those prompts; p: paired sign-flip permutation test; p_holm: Holm-adjusted over "
    f"the systems compared with the baseline; a claim needs at least {MIN_PROMPTS_FOR_CLAIM} prompts, "
    f"an interval that excludes 0 and p_holm < {ALPHA}"
)


def _pair_cell(table: JudgmentTable, row: int, col: int) -> dict[str, Any]:
    """The win-matrix cell of `row` against `col` (the judgments showing both)."""
    mask = ((table.system_a == row) & (table.system_b == col)) | (
        (table.system_a == col) & (table.system_b == row)
    )
    outcome, row_is_a = table.outcome[mask], table.system_a[mask] == row
    won = ((outcome == A_PREFERRED) & row_is_a) | ((outcome == B_PREFERRED) & ~row_is_a)
    lost = ((outcome == B_PREFERRED) & row_is_a) | ((outcome == A_PREFERRED) & ~row_is_a)
    sign = won.astype(np.int64) - lost
    prompts, codes = np.unique(table.prompt[mask], return_inverse=True)
    per_prompt = np.bincount(codes, weights=sign, minlength=len(prompts))
    n_prompts, wins, losses = len(prompts), int((per_prompt > 0).sum()), int((per_prompt < 0).sum())
    cell: dict[str, Any] = {
        "wins": int(won.sum()),
        "losses": int(lost.sum()),
        "ties": int((outcome >= TIE).sum()),
        "both_bad": int((outcome == BOTH_BAD).sum()),
        "n_ratings": int(mask.sum()),
        "n_prompts": n_prompts,
        "prompts_won": wins,
        "prompts_lost": losses,
        "prompts_tied": n_prompts - wins - losses,
        "share": None,
        "share_ci95": None,
        **small_sample(n_prompts),
    }
    if n_prompts == 0:
        cell["reason"] = "never compared directly"
    elif wins + losses == 0:
        cell["reason"] = "every prompt of this pair is tied"
    else:
        cell["share"] = wins / (wins + losses)
        cell["share_ci95"] = list(wilson_interval(wins, wins + losses))  # type: ignore[arg-type]
    return cell


def win_matrix(table: JudgmentTable) -> dict[str, Any]:
    """{row system: {column system: cell}} for every ordered pair of distinct systems."""
    names = table.systems
    return {
        "method": WIN_MATRIX_METHOD,
        "cells": {
            names[r]: {names[c]: _pair_cell(table, r, c) for c in range(len(names)) if c != r}
            for r in range(len(names))
        },
    }


def prompt_scores(table: JudgmentTable) -> np.ndarray:
    """(prompts, systems) mean score of each system's answer on each prompt; NaN where not rated."""
    k, n = len(table.systems), table.n_prompts
    cells = np.concatenate([table.prompt * k + table.system_a, table.prompt * k + table.system_b])
    scores = np.concatenate([table.score_a, table.score_b]).astype(np.float64)
    counts = np.bincount(cells, minlength=n * k)
    sums = np.bincount(cells, weights=scores, minlength=n * k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).reshape(n, k)


def _figures(differences: np.ndarray) -> dict[str, Any]:
    n = len(differences)
    block: dict[str, Any] = {"n_prompts": n, "difference": None, "ci95": None, "p": None, **small_sample(n)}
    if n == 0:
        block["reason"] = "never rated on the same prompt as the baseline"
        return block
    block["difference"] = float(differences.mean())
    no_interval = equal_values_reason(differences)
    if no_interval:
        block["ci95_reason"] = no_interval
    else:
        block["ci95"] = list(mean_interval(differences))
    if n < 2 or not np.any(differences != 0):
        block["p_reason"] = "a paired test needs at least 2 prompts and a difference that is not zero"
    else:
        block["p"] = sign_flip_test(differences)["p"]
    return block


def _claim(system: str, baseline: str, block: dict[str, Any], n_tests: int) -> dict[str, Any]:
    metric = f"systems.baseline.{system}"
    n, d = block["n_prompts"], block["difference"]
    if d is None:
        return {"metric": metric, "text": None, "refused": True, "reason": block["reason"]}
    if n < MIN_PROMPTS_FOR_CLAIM:
        reason = (
            f"only {n} prompts rated both {system} and {baseline}; a claim needs at least "
            f"{MIN_PROMPTS_FOR_CLAIM}: the figures are shown without a claim"
        )
        return {"metric": metric, "text": None, "refused": True, "reason": reason}
    if block["ci95"] is None or block["p"] is None:
        reason = block.get("ci95_reason") or block.get("p_reason")
        return {"metric": metric, "text": None, "refused": True, "reason": reason}
    lo, hi = block["ci95"]
    p, p_holm = block["p"], block["p_holm"]
    p_text = f"paired sign-flip p = {p:.2g}, Holm-adjusted over {n_tests} system(s) p = {p_holm:.2g}"
    text = (
        f"{system} scored {abs(d):.2f} points {'higher' if d >= 0 else 'lower'} than {baseline} on "
        f"{SCORE_SCALE} (95% CI {lo:+.2f} to {hi:+.2f} points, {p_text}; {n} prompts where both were rated)."
    )
    excludes, significant = lo > 0 or hi < 0, p_holm < ALPHA
    if excludes and significant:
        return {"metric": metric, "text": text, "refused": False, "reason": None}
    if not excludes and not significant:
        reason = f"no detectable difference: the 95% CI ({lo:+.2f} to {hi:+.2f}) includes 0 and {p_text}"
    else:
        reason = (
            f"the interval and the test disagree: the 95% CI ({lo:+.2f} to {hi:+.2f}) "
            f"{'excludes' if excludes else 'includes'} 0 but {p_text}; a claim needs both"
        )
    return {"metric": metric, "text": None, "refused": True, "reason": reason, "would_read": text}


def baseline_comparisons(table: JudgmentTable, baseline: str | None) -> dict[str, Any]:
    """Each other system against `baseline`: mean score difference over shared prompts, its interval,
    the sign-flip p and its Holm adjustment, and the claim (made or refused with the reason)."""
    out: dict[str, Any] = {"system": baseline, "method": BASELINE_METHOD, "comparisons": {}}
    if baseline is None:
        out["reason"] = "no baseline chosen"
        return out
    scores = prompt_scores(table)
    base = table.systems.index(baseline)
    blocks = {}
    for s, name in enumerate(table.systems):
        if s == base:
            continue
        both = ~np.isnan(scores[:, s]) & ~np.isnan(scores[:, base])
        blocks[name] = _figures(scores[both, s] - scores[both, base])
    adjusted = holm([b["p"] for b in blocks.values()])
    n_tests = sum(p is not None for p in adjusted)
    for (name, block), p_holm in zip(blocks.items(), adjusted):
        block["p_holm"] = p_holm
        block["claim"] = _claim(name, baseline, block, n_tests)
    out["comparisons"] = blocks
    return out
