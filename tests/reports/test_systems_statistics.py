"""The many-system ranking (`reports.statistics.systems`): simulated raters of four systems with known
Bradley–Terry strengths, ties, systems never compared, perfect separation, the two-system case against
the existing headline, bad input, and the checkpoint-versus-validation-loss statements."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from reports.statistics.claims import MIN_PROMPTS_FOR_CLAIM
from reports.statistics.relevance import relevance
from reports.statistics.systems import checkpoint_vs_loss, rank_systems
from reports.statistics.systems_fit import fit_batch, fit_point
from reports.statistics.systems_table import judgment_table, per_prompt_counts

NAMES = ("e10", "e25", "e35", "outside")
PAIRS = [(i, j) for i in range(4) for j in range(i + 1, 4)]


def davidson_campaign(strengths, n_prompts, *, seed, raters=3, nu=0.6, tasks=("qa", "summary")):
    """Judgments from simulated raters: each prompt shows one pair (every pair equally often within
    each task), each rater draws an outcome from Davidson's model with the given strengths."""
    rng = np.random.default_rng(seed)
    theta = np.asarray(strengths, dtype=float)
    names = NAMES[: len(theta)]
    pairs = [(i, j) for i in range(len(theta)) for j in range(i + 1, len(theta))]
    judgments = []
    for prompt in range(n_prompts):
        i, j = pairs[(prompt // len(tasks)) % len(pairs)]
        for _ in range(raters):
            a, b = (i, j) if rng.random() < 0.5 else (j, i)
            w = np.array([np.exp(theta[a]), np.exp(theta[b]), nu * np.exp((theta[a] + theta[b]) / 2)])
            outcome = rng.choice(3, p=w / w.sum())
            judgments.append(
                {
                    "prompt": prompt,
                    "task": tasks[prompt % len(tasks)],
                    "system_a": names[a],
                    "system_b": names[b],
                    "score_a": 3 + int(outcome == 0),
                    "score_b": 3 + int(outcome == 1),
                    "preference": ("a", "b", "tie")[outcome],
                }
            )
    return judgments


def judgment(prompt, a, b, preference, task="qa", score_a=3, score_b=3):
    return {
        "prompt": prompt,
        "task": task,
        "system_a": a,
        "system_b": b,
        "score_a": score_a,
        "score_b": score_b,
        "preference": preference,
    }


def test_four_systems_of_known_strength_come_out_in_order_with_intervals_covering_the_truth():
    truth = np.array([1.2, 0.4, -0.4, -1.2])
    out = rank_systems(davidson_campaign(truth, 480, seed=5), baseline="outside")
    board = out["leaderboard"]["rows"]
    assert [row["system"] for row in board] == list(NAMES)
    assert [row["rank"] for row in board] == [1, 2, 3, 4]
    for name, true in zip(NAMES, truth - truth.mean()):
        lo, hi = out["strengths"][name]["ci95"]
        assert lo < true < hi, (name, true, lo, hi)
        assert out["strengths"][name]["n_prompts"] == 240 and out["strengths"][name]["n_ratings"] == 720
    assert [row["rank_ci95"] for row in board] == [[1, 1], [2, 2], [3, 3], [4, 4]]
    statement = out["leaderboard"]["statement"]
    assert not statement["refused"]
    assert statement["text"].startswith("The data tell every pair apart: e10 > e25 > e35 > outside")
    assert sum(out["strengths"][n]["strength"] for n in NAMES) == pytest.approx(0, abs=1e-9)
    json.dumps(out, allow_nan=False)  # the report stores it as JSON


def test_close_systems_are_not_told_apart_and_the_statement_says_which():
    out = rank_systems(davidson_campaign([1.0, 0.95, -1.0], 240, seed=2))
    pairs = {(p["higher"], p["lower"]): p for p in out["pairwise"]}
    close = pairs.get(("e10", "e25")) or pairs[("e25", "e10")]
    assert not close["told_apart"] and close["p_holm"] >= 0.05
    assert all(p["p_holm"] >= p["p"] for p in out["pairwise"])
    for pair in out["pairwise"]:  # each pair's interval and test decide together
        lo, hi = pair["ci95"]
        assert (pair["p"] < 0.05) == (lo > 0 or hi < 0)
    text = out["leaderboard"]["statement"]["text"]
    assert (
        "above e35" in text
        and "They cannot tell apart:" in text
        and "e10 and e25" in text.replace("e25 and e10", "e10 and e25")
    )
    rank_lo, rank_hi = out["strengths"]["e10"]["rank_ci95"]
    assert (rank_lo, rank_hi) == (1, 2)


def test_ties_do_not_shrink_the_strengths_and_both_bad_counts_as_a_tie():
    decided = [judgment(p, "x", "y", "a") for p in range(30)] + [
        judgment(30 + p, "x", "y", "b") for p in range(10)
    ]
    tied = [judgment(40 + p, "x", "y", "tie") for p in range(40)]
    without = rank_systems(decided, n_resamples=200)
    with_ties = rank_systems(decided + tied, n_resamples=200)
    gap = [o["strengths"]["x"]["strength"] - o["strengths"]["y"]["strength"] for o in (without, with_ties)]
    # Davidson: among decided judgments P(x preferred) = 30/40 whatever the ties, so gap = log(3)
    assert gap == pytest.approx([np.log(3), np.log(3)], abs=0.01)
    assert with_ties["tie_parameter"]["nu"] > without["tie_parameter"]["nu"]
    both_bad = rank_systems(decided + [{**t, "preference": "both_bad"} for t in tied], n_resamples=200)
    assert both_bad["strengths"]["x"]["strength"] == pytest.approx(with_ties["strengths"]["x"]["strength"])
    cell = both_bad["win_matrix"]["cells"]["x"]["y"]
    assert (cell["wins"], cell["losses"], cell["ties"], cell["both_bad"], cell["n_ratings"]) == (
        30,
        10,
        40,
        40,
        80,
    )
    assert cell["share"] == pytest.approx(0.75) and cell["share_ci95"][0] < 0.75 < cell["share_ci95"][1]
    mirror = both_bad["win_matrix"]["cells"]["y"]["x"]
    assert mirror["share"] == pytest.approx(0.25) and mirror["wins"] == 10


def test_all_ties_give_equal_strengths_and_no_claim_of_a_difference():
    out = rank_systems([judgment(p, "x", "y", "tie") for p in range(40)], n_resamples=200)
    assert out["strengths"]["x"]["strength"] == pytest.approx(0, abs=1e-9)
    assert out["leaderboard"]["statement"]["text"].startswith(
        "The data cannot tell any of the 2 systems apart"
    )
    assert out["win_matrix"]["cells"]["x"]["y"]["reason"] == "every prompt of this pair is tied"


def test_a_system_never_compared_or_compared_only_apart_gets_a_reason_not_a_rank():
    judgments = [judgment(p, "a", "b", "a" if p % 3 else "b") for p in range(40)]
    judgments += [judgment(100 + p, "c", "d", "a") for p in range(5)]
    out = rank_systems(judgments, systems=["a", "b", "c", "d", "never"], baseline="never")
    never, c = out["strengths"]["never"], out["strengths"]["c"]
    assert never["strength"] is None and never["reason"] == "never compared: no judgment shows this system"
    assert (
        c["strength"] is None and "not compared, directly or through other systems, with a, b" in c["reason"]
    )
    assert [r["system"] for r in out["leaderboard"]["rows"]][:2] == ["a", "b"]
    assert out["win_matrix"]["cells"]["a"]["never"]["reason"] == "never compared directly"
    assert (
        out["baseline"]["comparisons"]["a"]["claim"]["reason"]
        == "never rated on the same prompt as the baseline"
    )
    assert out["n_prompts"] == 40  # the unranked systems' prompts are not part of the ranking


def test_perfect_separation_stays_finite():
    judgments = [judgment(p, "top", "mid", "a") for p in range(30)]
    judgments += [judgment(30 + p, "mid", "low", "a") for p in range(30)]
    judgments += [judgment(60 + p, "low", "top", "b") for p in range(30)]
    out = rank_systems(judgments)
    strengths = [out["strengths"][n]["strength"] for n in ("top", "mid", "low")]
    assert strengths[0] > strengths[1] > strengths[2] and all(np.isfinite(strengths))
    assert all(np.isfinite(out["strengths"][n]["ci95"]).all() for n in ("top", "mid", "low"))
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize("finetuned_better", [True, False])
def test_two_systems_agree_with_the_existing_headline(finetuned_better):
    rng = np.random.default_rng(4 if finetuned_better else 9)
    n, shift = 40, (0.6 if finetuned_better else -0.6)
    codes = np.repeat(np.arange(n), 3)
    quality = rng.normal(3, 0.8, n)[codes]
    pt = np.clip(np.rint(quality + rng.normal(0, 0.8, 3 * n)), 1, 5).astype(int)
    ft = np.clip(np.rint(quality + shift + rng.normal(0, 0.8, 3 * n)), 1, 5).astype(int)
    judgments = []
    for k, (code, p, f) in enumerate(zip(codes, pt, ft)):
        preference = "tie" if p == f else ("a" if f > p else "b")
        judgments.append(
            judgment(int(code), "finetuned", "pretrained", preference, score_a=int(f), score_b=int(p))
        )
    headline = relevance(codes, pt, ft, n)
    out = rank_systems(judgments, baseline="pretrained")
    versus = out["baseline"]["comparisons"]["finetuned"]
    assert versus["difference"] == pytest.approx(headline["difference"])
    assert versus["ci95"] == pytest.approx(headline["difference_ci95"])
    gap = out["strengths"]["finetuned"]["strength"] - out["strengths"]["pretrained"]["strength"]
    assert (gap > 0) == (headline["difference"] > 0) == finetuned_better
    assert (
        versus["claim"]["refused"] is False
        and ("higher" if finetuned_better else "lower") in versus["claim"]["text"]
    )


def test_each_raters_pair_on_a_prompt_is_one_unit():
    base = davidson_campaign([0.5, 0.0, -0.5], 60, seed=3)
    crowded = base + [dict(j) for j in base if j["prompt"] == 0] * 5  # prompt 0 rated six times over
    one, other = rank_systems(base, n_resamples=100), rank_systems(crowded, n_resamples=100)
    for name in ("e10", "e25", "e35"):
        assert other["strengths"][name]["strength"] == pytest.approx(one["strengths"][name]["strength"])


def test_few_prompts_show_the_figures_and_refuse_the_claims():
    out = rank_systems(davidson_campaign([2.0, 0.0, -2.0], 18, seed=1), baseline="e35")
    statement = out["leaderboard"]["statement"]
    assert statement["refused"] and f"at least {MIN_PROMPTS_FOR_CLAIM}" in statement["reason"]
    assert statement["would_read"].startswith("The data")
    assert out["strengths"]["e10"]["ci95"] is not None
    claim = out["baseline"]["comparisons"]["e10"]["claim"]
    assert claim["refused"] and "only 6 prompts rated both e10 and e35" in claim["reason"]


def test_per_task_rankings_follow_each_tasks_judgments():
    qa = [judgment(p, "x", "y", "a" if p % 4 else "b", task="qa") for p in range(40)]
    summary = [judgment(100 + p, "x", "y", "b" if p % 4 else "a", task="summary") for p in range(40)]
    out = rank_systems(qa + summary, n_resamples=300)
    assert [r["system"] for r in out["by_task"]["qa"]["leaderboard"]["rows"]] == ["x", "y"]
    assert [r["system"] for r in out["by_task"]["summary"]["leaderboard"]["rows"]] == ["y", "x"]
    assert out["by_task"]["qa"]["n_prompts"] == 40
    assert out["by_task"]["summary"]["leaderboard"]["statement"]["metric"] == "systems.leaderboard.summary"
    assert out["strengths"]["x"]["strength"] == pytest.approx(0, abs=1e-9)  # overall they are even


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"preference": "left"}, "preference must be one of a, b, tie, both_bad"),
        ({"system_b": "x"}, "is judged against itself"),
        ({"score_a": 0}, "a score must be a whole number from 1 to 5"),
        ({"score_b": 4.5}, "a score must be a whole number from 1 to 5"),
        ({"task": "other"}, "is in task 'other' here but 'qa' before"),
        ({"system_a": "stranger"}, "is not one of the systems given"),
    ],
)
def test_bad_judgments_raise_a_clear_error(bad, message):
    judgments = [judgment(0, "x", "y", "a"), {**judgment(0, "x", "y", "a"), **bad}]
    with pytest.raises(ValueError, match=message):
        rank_systems(judgments, systems=["x", "y"])


def test_a_baseline_that_is_not_a_system_is_refused():
    with pytest.raises(ValueError, match="baseline 'z' is not one of the systems"):
        rank_systems([judgment(0, "x", "y", "a")], baseline="z")
    missing = {k: v for k, v in judgment(0, "x", "y", "a").items() if k != "task"}
    with pytest.raises(ValueError, match="judgment 1: missing task"):
        rank_systems([missing])


def test_the_bootstrap_refit_reaches_the_scipy_optimum():
    table = judgment_table(davidson_campaign([0.8, 0.1, -0.2, -0.7], 120, seed=8))
    counts = per_prompt_counts(table, [0, 1, 2, 3]).sum(axis=0)
    point = fit_point(counts, 4)
    refit = fit_batch(counts[None], 4, np.zeros(5))[0]
    assert refit == pytest.approx(point, abs=1e-7)


def _figures(**strengths):
    return {name: {"strength": s, "ci95": [s - half, s + half]} for name, (s, half) in strengths.items()}


LOSSES = {10: ("e10", 1.10), 25: ("e25", 0.92), 35: ("e35", 0.97)}


def test_checkpoint_kept_by_early_stopping_is_the_one_humans_prefer():
    out = checkpoint_vs_loss(_figures(e10=(-0.8, 0.2), e25=(0.6, 0.2), e35=(0.1, 0.2)), LOSSES)
    assert out["kept_epoch"] == 25 and out["preferred_epoch"] == 25
    assert [(r["epoch"], r["kept"]) for r in out["rows"]] == [(10, False), (25, True), (35, False)]
    assert out["statement"]["verdict"] == "agree"
    assert out["statement"]["text"].startswith("The raters prefer epoch 25 (e25, validation loss 0.92")


def test_checkpoint_humans_prefer_another_epoch():
    out = checkpoint_vs_loss(_figures(e10=(-0.8, 0.2), e25=(-0.1, 0.2), e35=(0.9, 0.2)), LOSSES)
    assert out["kept_epoch"] == 25 and out["preferred_epoch"] == 35
    assert out["statement"]["verdict"] == "disagree"
    assert out["statement"]["text"].startswith("The raters prefer epoch 35 (e35, validation loss 0.97")
    assert "validation loss and human preference disagree" in out["statement"]["text"]


def test_checkpoint_the_data_cannot_tell():
    out = checkpoint_vs_loss(_figures(e10=(-0.8, 0.2), e25=(0.3, 0.3), e35=(0.4, 0.3)), LOSSES)
    text = out["statement"]["text"]
    assert out["statement"]["verdict"] == "cannot_tell" and out["preferred_epoch"] == 35
    assert text.startswith("The data cannot tell whether the raters prefer epoch 25")
    assert "told apart from epoch 35 (e35)" in text and "It is preferred to epoch 10 (e10)." in text


def test_checkpoint_from_a_full_ranking_uses_its_pairwise_rule_and_its_refusals():
    ranked = rank_systems(davidson_campaign([-1.0, 1.0, 0.0], 240, seed=6))
    out = checkpoint_vs_loss(ranked, LOSSES)
    assert (
        out["statement"]["verdict"] == "agree"
        and out["rows"][1]["ci95"] == ranked["strengths"]["e25"]["ci95"]
    )
    few = rank_systems(davidson_campaign([-1.0, 1.0, 0.0], 12, seed=6))
    refused = checkpoint_vs_loss(few, LOSSES)["statement"]
    assert (
        refused["refused"] and "a ranking claim needs at least" in refused["reason"] and refused["would_read"]
    )
    unrated = checkpoint_vs_loss(ranked, {**LOSSES, 30: ("e30", 0.5)})
    assert unrated["kept_epoch"] == 30 and unrated["statement"]["refused"]
    assert "not in the ranking" in unrated["statement"]["reason"]
    with pytest.raises(ValueError, match="no epoch"):
        checkpoint_vs_loss(ranked, {})


def test_the_ranking_bench_runs_the_reports_own_function_and_recovers_a_clear_order():
    path = Path(__file__).resolve().parents[2] / "bench" / "ranking.py"
    spec = importlib.util.spec_from_file_location("ranking_bench", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules["ranking_bench"] = bench
    spec.loader.exec_module(bench)
    assert bench.rank_systems is rank_systems
    task, pair, _ = bench.design(np.random.default_rng(0), 48)
    for t in range(len(bench.TASKS)):  # balanced: every pair equally often within each task
        assert np.bincount(pair[task == t], minlength=6).tolist() == [4] * 6
    row = bench.run_cell((bench.PROCESSES[0], 240, 12, 300, 3))
    assert row["order_recovered"] >= 0.75 and row["rank_cover_all"] >= 0.75 and row["reps"] == 12
