"""Issue 14, items 1 (coverage) and 3-10: for each, a campaign whose report used to mislead, and what
the report says now. Campaigns are built in the database and read through `campaign_report`, the
text report and the page, so every test covers the whole path a researcher reads."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from scipy import stats

from annotations.assignment import assignment_next
from annotations.campaigns import campaign_create
from annotations.models import User
from annotations.rating import rating_submit
from generation.importing import import_answers
from reports.building import campaign_report
from reports.statistics.intervals import mean_interval
from tests.support.report_data import build_hand_campaign, generated_prompts, one_rater_rows

pytestmark = pytest.mark.django_db

DEMO_PROMPTS = Path(__file__).resolve().parents[2] / "demo" / "data" / "eval.jsonl"
FOUR_TASKS = {"sentiment": 25, "features": 25, "recommendation": 25, "relevance": 25}


def _claim(report, metric):
    return next(c for c in report["claims"] if c["metric"] == metric)


def _text(campaign):
    out = StringIO()
    call_command("report", "--campaign", str(campaign.pk), "--format", "text", stdout=out)
    return out.getvalue()


def _varied_rows(prompt_ids):
    """One rating per prompt; the fine-tuned answer 1 or 2 points better (differences vary)."""
    return [
        (pid, 0, ("left", "right")[i % 2], 2 + i % 2, 3 + i % 2 + (i % 3 == 0), None, None, "finetuned")
        for i, pid in enumerate(prompt_ids)
    ]


# 1. coverage ------------------------------------------------------------------------------------


def test_twenty_rated_sentiment_prompts_do_not_stand_for_a_four_task_campaign(client, researcher):
    rows = _varied_rows([f"sentiment-{i}" for i in range(20)])
    hc = build_hand_campaign(prompts=generated_prompts(FOUR_TASKS), ratings=rows, name="file-order")
    report = campaign_report(hc.campaign)
    coverage = report["coverage"]
    assert coverage["by_task"]["sentiment"]["n_rated"] == 20
    assert coverage["by_task"]["features"]["n_rated"] == 0 and coverage["even"] is False
    assert "features, recommendation and relevance have no rated prompt yet" in coverage["even_reason"]
    claim = _claim(report, "relevance.difference")
    assert claim["refused"] and claim["reason"].startswith("only 20 prompts rated")
    assert "also, coverage is too uneven to stand for the campaign" in claim["reason"]
    assert "20 of 100 prompts rated (20%)" in claim["reason"]
    assert "coverage is too uneven" in _claim(report, "win_rate.by_prompt")["reason"]
    assert "Coverage: 20 of 100 prompts rated (20%)" in _text(hc.campaign)
    client.force_login(researcher)
    html = client.get(f"/campaigns/{hc.campaign.pk}/report/").content.decode()
    assert "Uneven" in html and "sentiment 20 of 25" in html


def test_forty_of_a_hundred_rated_prompts_from_one_task_are_refused_for_coverage_alone():
    prompts = generated_prompts({"sentiment": 50, "features": 50})
    hc = build_hand_campaign(
        prompts=prompts, ratings=_varied_rows([f"sentiment-{i}" for i in range(40)]), name="one-task"
    )
    claim = _claim(campaign_report(hc.campaign), "relevance.difference")
    assert claim["refused"] and claim["reason"].startswith(
        "coverage is too uneven to stand for the campaign: features has no rated prompt yet"
    )
    assert "40 of 100 prompts rated (40%)" in claim["would_read"]


def test_a_balanced_partial_campaign_makes_its_claim_and_names_its_coverage():
    ids = [f"{task}-{i}" for task in FOUR_TASKS for i in range(8)]
    hc = build_hand_campaign(prompts=generated_prompts(FOUR_TASKS), ratings=_varied_rows(ids), name="bal")
    report = campaign_report(hc.campaign)
    assert report["coverage"]["even"] is True and report["coverage"]["task_mix_gap"] == pytest.approx(0)
    claim = _claim(report, "relevance.difference")
    assert not claim["refused"], claim["reason"]
    assert "32 of 100 prompts rated (32%)" in claim["text"] and "every task covered" in claim["text"]
    assert "1 annotator" in claim["text"] and "for each task's question" in claim["text"]


# 3. the headline is a difference on the raters' scale, named after their question ---------------


def test_headline_is_the_score_difference_named_after_the_question_asked():
    prompts = generated_prompts({"relevance": 30})
    rows = _varied_rows([p[0] for p in prompts])
    hc = build_hand_campaign(
        prompts=prompts, ratings=rows, name="scale", task_questions={"relevance": "Is it on topic?"}
    )
    report = campaign_report(hc.campaign)
    rel = report["relevance"]
    diffs = np.array([r[4] - r[3] for r in rows], dtype=float)
    assert rel["difference"] == pytest.approx(diffs.mean())
    assert rel["difference_ci95"] == pytest.approx(list(mean_interval(diffs)))
    text = _claim(report, "relevance.difference")["text"]
    assert text.startswith(f"Fine-tuned answers scored {diffs.mean():.2f} points higher")
    assert "1–5 quality score (1 = poor … 5 = excellent) for the question “Is it on topic?”" in text
    assert "relevant" not in text and "scale-dependent" in text


# 4. intervals: none of zero width, none from a handful of prompts -------------------------------


def test_equal_differences_show_no_zero_width_interval_and_no_claim(client, researcher):
    prompts = generated_prompts({"sentiment": 30})
    hc = build_hand_campaign(
        prompts=prompts, ratings=one_rater_rows([p[0] for p in prompts], 3, 4), name="eq"
    )
    report = campaign_report(hc.campaign)
    rel = report["relevance"]
    assert rel["improvement"] == pytest.approx(1 / 3)
    assert rel["ci95"] is None and rel["difference_ci95"] is None and "zero width" in rel["ci95_reason"]
    claim = _claim(report, "relevance.difference")
    assert claim["refused"] and "zero width" in claim["reason"]
    text = _text(hc.campaign)
    assert "33.3–33.3" not in text and "no CI: every one of the 30 prompts has the same difference" in text
    client.force_login(researcher)
    assert "33.3% – 33.3%" not in client.get(f"/campaigns/{hc.campaign.pk}/report/").content.decode()


def test_two_prompts_give_a_t_interval_far_wider_than_their_range_and_no_claim():
    rows = [
        ("sentiment-0", 0, "left", 2, 3, None, None, "tie"),
        ("sentiment-1", 0, "right", 2, 4, None, None, "tie"),
    ]
    hc = build_hand_campaign(prompts=generated_prompts({"sentiment": 2}), ratings=rows, name="two")
    report = campaign_report(hc.campaign)
    lo, hi = report["relevance"]["difference_ci95"]
    assert lo < 1 - 5 and hi > 2 + 5  # t(1) = 12.7 standard errors, not the range 1 to 2
    assert "only 2 prompts" in _claim(report, "relevance.difference")["reason"]


# 5. the claim's interval and test must agree ----------------------------------------------------


# found by searching samples of 30 integer differences (exact figures are asserted below)
INTERVAL_EXCLUDES_TEST_DOES_NOT = [
    -2, -1, 0, -2, 3, 2, -1, -1, 2, 3, 3, 1, 3, 2, -2, 0, 3, 1, 1, 1, -1, 2, 3, -2, 3, -2, 1, 0, 0, 1,
]  # fmt: skip
TEST_REJECTS_INTERVAL_DOES_NOT = [
    1, 3, 2, 3, -1, 2, 2, 3, 1, 0, 1, -2, 3, 2, 0, 3, 2, 0, 3, 0, 0, -3, 2, -2, -3, 1, 3, -3, 2, -1,
]  # fmt: skip


@pytest.mark.parametrize("diffs", [INTERVAL_EXCLUDES_TEST_DOES_NOT, TEST_REJECTS_INTERVAL_DOES_NOT])
def test_claim_is_refused_with_both_numbers_when_interval_and_test_disagree(diffs):
    prompts = generated_prompts({"sentiment": len(diffs)})
    # pre-trained 1 under a gain, 5 under a loss: every difference fits the 1-5 scale
    rows = [
        (p[0], 0, "left", 1 if d >= 0 else 5, (1 if d >= 0 else 5) + d, None, None, "tie")
        for p, d in zip(prompts, diffs, strict=True)
    ]
    report = campaign_report(build_hand_campaign(prompts=prompts, ratings=rows, name="disagree").campaign)
    rel = report["relevance"]
    lo, hi = rel["difference_ci95"]
    assert (lo > 0) != (rel["permutation_p"] < 0.05)
    claim = _claim(report, "relevance.difference")
    assert claim["refused"] and "the interval and the test disagree" in claim["reason"]
    assert f"{lo:+.2f} to {hi:+.2f}" in claim["reason"]
    assert f"paired permutation p = {rel['permutation_p']:.2g}" in claim["reason"]
    # the SPEC's Wilcoxon keeps its meaning (scipy defaults) beside it
    assert rel["wilcoxon_p"] == pytest.approx(stats.wilcoxon(np.array(diffs, dtype=float)).pvalue)


# 6. accuracy: both accuracies and McNemar on the same prompts, the favoured model named -----------


def _verdict_rows(spec):
    """spec: [(count, pt_ok, ft_ok)] -> one rating per prompt, ids sentiment-0.. in order."""
    rows, i = [], 0
    for count, pt_ok, ft_ok in spec:
        for _ in range(count):
            rows.append((f"sentiment-{i}", 0, ("left", "right")[i % 2], 3, 3, pt_ok, ft_ok, "tie"))
            i += 1
    return rows


def test_accuracy_claim_compares_the_same_prompts_and_names_the_model_the_discordance_favours():
    spec = [(12, False, True), (2, True, False), (30, True, None), (40, None, False)]
    rows = _verdict_rows(spec)
    hc = build_hand_campaign(prompts=generated_prompts({"sentiment": len(rows)}), ratings=rows, name="acc")
    block = campaign_report(hc.campaign)["accuracy"]["sentiment"]
    # the SPEC figures: each role over all its own verdicts (these read "22% vs 73%")
    assert block["pretrained"]["accuracy"] == pytest.approx(32 / 44)
    assert block["finetuned"]["accuracy"] == pytest.approx(12 / 54)
    paired = block["paired"]
    assert paired["n"] == 14 and paired["small_sample"] is True
    assert paired["finetuned"]["accuracy"] == pytest.approx(12 / 14)
    assert paired["pretrained"]["accuracy"] == pytest.approx(2 / 14)
    assert block["mcnemar"]["favours"] == "finetuned"
    assert block["mcnemar_p"] == pytest.approx(stats.binomtest(12, 14).pvalue)
    claim = _claim(campaign_report(hc.campaign), "accuracy.sentiment")
    assert not claim["refused"], claim["reason"]
    assert "over the 14 prompts with a majority verdict on both answers" in claim["text"]
    assert "fine-tuned answers were judged correct on 86%" in claim["text"]
    assert "pre-trained on 14%" in claim["text"] and "small sample" in claim["text"]
    assert "the fine-tuned answer was the correct one on 12 of them" in claim["text"]


# 7. a majority is of the raters asked -----------------------------------------------------------


def test_one_correct_and_two_not_sure_is_no_verdict():
    prompts = generated_prompts({"sentiment": 12})
    rows = [
        (p[0], rater, ("left", "right")[rater % 2], 3, 3, False, True if rater == 0 else None, "tie")
        for p in prompts
        for rater in range(3)
    ]
    report = campaign_report(build_hand_campaign(prompts=prompts, ratings=rows, name="notsure").campaign)
    block = report["accuracy"]["sentiment"]
    assert block["finetuned"]["accuracy"] is None and block["finetuned"]["n"] == 0
    assert block["pretrained"]["accuracy"] == 0.0 and block["pretrained"]["n"] == 12
    claim = _claim(report, "accuracy.sentiment")
    assert claim["refused"] and "no prompt has a majority verdict for both answers" in claim["reason"]


# 8. position bias names the side raters favoured ------------------------------------------------


def test_left_winning_a_quarter_of_pairs_means_raters_favoured_the_right_answer():
    prompts = generated_prompts({"sentiment": 25})
    rows = []
    for i, p in enumerate(prompts):
        side = ("left", "right")[i % 2]  # the fine-tuned answer's side
        right_wins = i >= 6
        ft = 4 if (side == "right") == right_wins else 2
        rows.append((p[0], 0, side, 6 - ft, ft, None, None, "tie"))
    report = campaign_report(build_hand_campaign(prompts=prompts, ratings=rows, name="pos").campaign)
    per_pair = report["position_bias"]["per_pair"]
    assert per_pair["left_win_rate"] == pytest.approx(6 / 25) and per_pair["favoured"] == "right"
    assert per_pair["p"] == pytest.approx(stats.binomtest(6, 25).pvalue)
    text = _claim(report, "position_bias")["text"]
    assert text.startswith("Caution: raters favoured the right answer: it won 76% of the 25 pairs")


# 9. bias tests count one observation per pair ---------------------------------------------------


def test_three_ratings_of_a_pair_count_once_in_the_length_bias_test():
    prompts = generated_prompts({"sentiment": 9}, pt_text="short", ft_text="a much longer answer")
    rows = []
    for i, p in enumerate(prompts):
        longer_better = i < 7
        sides = ("left", "right", "left") if i % 2 else ("right", "left", "right")
        for rater in range(3):
            pt, ft = (2, 4) if longer_better else (4, 2)
            rows.append((p[0], rater, sides[rater], pt, ft, None, None, "tie"))
    report = campaign_report(build_hand_campaign(prompts=prompts, ratings=rows, name="len").campaign)
    lb = report["length_bias"]
    # over ratings: 21 of 27, p = 0.006 (what the report used to claim on)
    assert (lb["longer_wins"]["longer_wins"], lb["longer_wins"]["n"]) == (21, 27)
    assert lb["longer_wins"]["p"] == pytest.approx(stats.binomtest(21, 27).pvalue)
    assert (lb["per_pair"]["longer_wins"], lb["per_pair"]["n"]) == (7, 9)
    assert lb["per_pair"]["p"] == pytest.approx(stats.binomtest(7, 9).pvalue)
    assert not any(c["metric"] == "length_bias" for c in report["claims"])


# 10. small per-task samples are flagged; per-task tests are Holm-adjusted -------------------------


def test_per_task_tests_are_holm_adjusted_and_small_samples_flagged(client, researcher):
    prompts = generated_prompts({"sentiment": 10, "features": 2, "recommendation": 2, "relevance": 2})
    verdicts = {
        "sentiment": [(False, True)] * 9 + [(True, False)],
        "features": [(False, True), (True, False)],
        "recommendation": [(False, True), (True, False)],
        "relevance": [(False, True), (False, True)],
    }
    rows = [
        (f"{task}-{i}", 0, ("left", "right")[i % 2], 3, 3, pt_ok, ft_ok, "tie")
        for task, pairs in verdicts.items()
        for i, (pt_ok, ft_ok) in enumerate(pairs)
    ]
    hc = build_hand_campaign(prompts=prompts, ratings=rows, name="holm")
    report = campaign_report(hc.campaign)
    sentiment = report["accuracy"]["sentiment"]
    raw = stats.binomtest(9, 10).pvalue
    assert sentiment["mcnemar_p"] == pytest.approx(raw) and raw < 0.05
    assert sentiment["mcnemar_p_holm"] == pytest.approx(4 * raw) and sentiment["n_tests"] == 4
    claim = _claim(report, "accuracy.sentiment")
    assert claim["refused"] and "the interval and the test disagree" in claim["reason"]
    assert f"Holm-adjusted over 4 task(s) p = {4 * raw:.2g}" in claim["reason"]
    relevance = report["accuracy"]["relevance"]["finetuned"]
    assert relevance["accuracy"] == 1.0 and relevance["small_sample"] is True
    assert "relevance        fine-tuned  100.0%  (95% CI 34.2–100.0%, n=2, small sample)" in _text(
        hc.campaign
    )
    client.force_login(researcher)
    assert "small sample" in client.get(f"/campaigns/{hc.campaign.pk}/report/").content.decode()


# win rate over prompts, with its interval -------------------------------------------------------


def test_win_rate_claim_is_over_prompts_and_carries_its_interval():
    ids = [f"{task}-{i}" for task in FOUR_TASKS for i in range(8)]
    hc = build_hand_campaign(prompts=generated_prompts(FOUR_TASKS), ratings=_varied_rows(ids), name="win")
    report = campaign_report(hc.campaign)
    by_prompt = report["win_rate"]["by_prompt"]
    assert (by_prompt["finetuned"], by_prompt["n"]) == (1.0, 32)
    wilson = stats.binomtest(32, 32).proportion_ci(method="wilson")
    assert by_prompt["ci95"] == pytest.approx([wilson.low, wilson.high])
    claim = _claim(report, "win_rate.by_prompt")
    assert not claim["refused"], claim["reason"]
    assert f"had the higher mean score on 100% (95% CI {wilson.low:.0%}–100%)" in claim["text"]
    assert f"exact sign test p = {stats.binomtest(32, 32).pvalue:.2g}" in claim["text"]


# the "done when": the demo's campaign rated partly, 20 pairs by one annotator ---------------


def test_demo_campaign_rated_partly_by_one_annotator_claims_nothing_beyond_its_data(tmp_path):
    rows = [json.loads(line) for line in DEMO_PROMPTS.read_text().splitlines() if line.strip()]
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        "".join(
            json.dumps({**row, "pretrained": "It depends on many things.", "finetuned": row["reference"]})
            + "\n"
            for row in rows
        )
    )
    campaign = campaign_create(job=import_answers(answers, job_name="demo-answers"), name="demo")
    annotator = User.objects.create(username="ann", role="annotator")
    for _ in range(20):
        assignment = assignment_next(campaign=campaign, annotator=annotator)
        ft_left = assignment.finetuned_side == "left"
        rating_submit(
            assignment=assignment,
            annotator=annotator,
            score_left=4 if ft_left else 2,
            score_right=2 if ft_left else 4,
            correct_left=ft_left,
            correct_right=not ft_left,
            preference="left" if ft_left else "right",
        )
    report = campaign_report(campaign)
    coverage = report["coverage"]
    assert coverage["n_rated"] == 20 and coverage["n_prompts"] == 100
    assert all(t["n_rated"] >= 1 for t in coverage["by_task"].values())  # served stratified by task
    headline = _claim(report, "relevance.difference")
    assert headline["refused"] and headline["reason"].startswith("only 20 prompts rated (20 of 100 prompts")
    assert report["relevance"]["difference"] == pytest.approx(2.0)  # the figure is still shown
    assert all(_claim(report, f"accuracy.{task}")["refused"] for task in coverage["by_task"])
    # every fine-tuned answer (the reference) is longer and scored higher: the caution names the longer side
    assert _claim(report, "length_bias")["text"].startswith("Caution: the longer answer had the higher mean")
    assert "Coverage: 20 of 100 prompts rated (20%)" in _text(campaign)


def test_a_campaign_with_prompts_and_no_ratings_reads_in_every_format(client, researcher):
    hc = build_hand_campaign(
        prompts=generated_prompts({"sentiment": 3, "features": 2}), ratings=[], name="new"
    )
    report = campaign_report(hc.campaign)
    assert (
        report["coverage"]["even"] is None and report["coverage"]["even_reason"] == "no prompt is rated yet"
    )
    text = _text(hc.campaign)
    assert "Coverage: 0 of 5 prompts rated (0%): features 0 of 2, sentiment 0 of 3" in text
    assert "coverage n/a (no prompt is rated yet)" in text
    client.force_login(researcher)
    page = client.get(f"/campaigns/{hc.campaign.pk}/report/")
    assert page.status_code == 200 and "0 of 5 prompts rated" in page.content.decode()
