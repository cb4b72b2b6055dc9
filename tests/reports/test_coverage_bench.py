"""bench/coverage.py runs the report's own statistics (not a copy); a small deterministic run of it
keeps the coverage target where claims are made, makes no claim below the threshold, and its summary
flags a cell clearly above the target."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from reports.statistics import campaign_coverage, claims, relevance

BENCH = Path(__file__).resolve().parents[2] / "bench" / "coverage.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("coverage_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["coverage_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_the_bench_calls_the_reports_own_functions(bench):
    assert bench.relevance is relevance.relevance and bench.win_rate is relevance.win_rate
    assert bench.relevance_claim is claims.relevance_claim and bench.win_rate_claim is claims.win_rate_claim
    assert bench.campaign_coverage is campaign_coverage.campaign_coverage
    assert bench.MIN_PROMPTS_FOR_CLAIM == claims.MIN_PROMPTS_FOR_CLAIM


def test_a_small_run_keeps_coverage_and_makes_no_claim_below_the_threshold(bench):
    leniency = next(p for p in bench.PROCESSES if p.name == "leniency")
    null = bench.run_cell((leniency, 30, False, 300, 50, 11))
    alternative = bench.run_cell((leniency, 30, True, 300, 50, 12))
    assert null["claim_rate"] <= 0.08 and null["miss_difference"] <= 0.08
    assert alternative["miss_difference"] <= 0.08 and alternative["miss_improvement"] <= 0.08
    assert alternative["claim_rate"] > 0.5  # the effect of 0.4 points is found most of the time
    small = bench.run_cell((leniency, 20, True, 50, 10, 13))
    assert small["claim_rate"] == 0 and not small["claims_allowed"]


def test_the_summary_flags_a_cell_clearly_above_the_target(bench):
    row = {
        "process": "x", "n": 30, "hypothesis": "null", "reps": 1000, "claims_allowed": True,
        "panel_null": True, "claim_rate": 0.09, "win_claim_rate": 0.05, "miss_difference": 0.05,
        "miss_improvement": 0.05, "miss_win_share": 0.05, "wrong_direction_claims": 0.0,
        "new_raters_claim_rate": 0.04, "miss_across_raters": 0.05,
    }  # fmt: skip
    summary = bench._targets([row])
    assert (
        not summary["meets_target"] and summary["worst_where_claims_made"]["null_claim_rate"]["rate"] == 0.09
    )
    assert bench._targets([{**row, "claim_rate": 0.05}])["meets_target"]
    # the claim that a new panel of raters would agree is held to the same target
    assert not bench._targets([{**row, "claim_rate": 0.05, "new_raters_claim_rate": 0.09}])["meets_target"]
