"""The style classifier's intervals keep their word (issue 14: "prove by simulation"), through the
report's own functions: campaigns whose answers are written alike (truth: AUC 0.5, pair share 0.5) or
with a subtle style difference (truth: the fitted classifier on 600 fresh prompts).

The tests run a small grid; the full grid is a script that prints one JSON object per line:

    .venv/bin/python -m tests.reports.test_style_coverage [campaigns per cell, default 400]
"""

from __future__ import annotations

import json
import random
import sys
import time

import numpy as np
import pytest

from reports.statistics import style
from tests.reports.style_texts import plain_answer, verdict_answer

FRESH = 600


def simulate(kind: str, n: int, campaigns: int, seed: int = 0) -> dict[str, float | int | str]:
    """Coverage of `ci95` and `pair_accuracy_ci95`, and how often the report flags a style difference,
    over `campaigns` simulated campaigns of `n` prompts ("null": both roles write alike)."""
    finetuned_style = plain_answer if kind == "null" else verdict_answer
    counts = {"auc_covered": 0, "auc_intervals": 0, "pair_covered": 0, "flagged": 0, "warned": 0}
    started = time.perf_counter()
    for r in range(campaigns):
        rng = random.Random(seed * 1_000_003 + r)
        pretrained = [plain_answer(rng) for _ in range(n)]
        finetuned = [finetuned_style(rng) for _ in range(n)]
        result = style.style_identifiability(pretrained, finetuned)
        auc_truth = pair_truth = 0.5
        if kind != "null":
            auc_truth, pair_truth = _fresh_truth(pretrained, finetuned, rng)
        if result["ci95"] is not None:
            counts["auc_intervals"] += 1
            counts["auc_covered"] += result["ci95"][0] <= auc_truth <= result["ci95"][1]
        pair_ci = result["pair_accuracy_ci95"]
        counts["pair_covered"] += pair_ci[0] <= pair_truth <= pair_ci[1]
        counts["flagged"] += result["level"] != "not_detected"
        counts["warned"] += result["level"] == "high"
    return {
        "kind": kind,
        "prompts": n,
        "campaigns": campaigns,
        "auc_coverage": round(counts["auc_covered"] / max(1, counts["auc_intervals"]), 4),
        "auc_intervals": counts["auc_intervals"],
        "pair_coverage": round(counts["pair_covered"] / campaigns, 4),
        "flagged": round(counts["flagged"] / campaigns, 4),
        "warned": round(counts["warned"] / campaigns, 4),
        "seconds_per_campaign": round((time.perf_counter() - started) / campaigns, 3),
    }


def _fresh_truth(pretrained: list[str], finetuned: list[str], rng: random.Random) -> tuple[float, float]:
    """The AUC and pair share of the classifier the report fitted, on FRESH new prompts (the same
    sample, split and features as `style_identifiability` uses below MAX_PROMPTS prompts)."""
    model, _, _, _ = style.fit_on_half(pretrained, finetuned, np.random.default_rng(style.SEED))
    union = style.style_feature_union().fit([*pretrained, *finetuned])
    texts = [plain_answer(rng) for _ in range(FRESH)] + [verdict_answer(rng) for _ in range(FRESH)]
    fresh = model.decision_function(union.transform(texts))
    pt, ft = fresh[:FRESH], fresh[FRESH:]
    return float(style.weighted_auc(pt, ft, np.ones((1, FRESH)))[0]), float((ft > pt).mean())


@pytest.mark.slow
def test_answers_written_alike_are_flagged_at_most_at_the_stated_rate():
    figures = simulate("null", style.MIN_PROMPTS, 300)
    # nominal: intervals cover 95%, a difference is flagged 2.5% of the time; 300 campaigns: ±1.3 points
    assert figures["auc_coverage"] >= 0.92 and figures["pair_coverage"] >= 0.92, figures
    assert figures["flagged"] <= 0.05, figures  # the warnings are among the flagged


@pytest.mark.slow
def test_the_intervals_cover_the_classifiers_figures_on_fresh_answers():
    figures = simulate("subtle", 60, 150, seed=1)
    # nominal 95%; 150 campaigns: ±1.8 points
    assert figures["auc_coverage"] >= 0.90 and figures["pair_coverage"] >= 0.90, figures


if __name__ == "__main__":
    per_cell = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    for kind in ("null", "subtle"):
        for prompts in (style.MIN_PROMPTS, 100, style.MAX_PROMPTS):
            print(json.dumps(simulate(kind, prompts, per_cell, seed=7)), flush=True)
