"""`campaign_report` on a small hand-computed campaign: every figure against an independent computation."""

from __future__ import annotations

import json
from io import StringIO

import krippendorff
import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from scipy import stats

from annotations.models import Campaign
from generation.models import Dataset, FinetuneRun, GenerationJob
from reports.building import REPORT_KEYS, campaign_report
from tests.support.report_data import RATINGS, TRAINING_METRICS, build_hand_campaign

pytestmark = pytest.mark.django_db

NAN = np.nan
# prompt means by hand (see the table in test_report_fixtures)
PT_MEANS = [7 / 3, 7 / 2, 2, 4]
FT_MEANS = [4, 4, 10 / 3, 2]


@pytest.fixture
def hand(settings):
    settings.GPU_HOUR_PRICE_USD = 3.0
    return build_hand_campaign()


@pytest.fixture
def report(hand):
    return campaign_report(hand.campaign)


def test_report_has_every_spec_key(report, hand):
    assert list(report)[: len(REPORT_KEYS)] == list(REPORT_KEYS)
    assert report["campaign"] == hand.campaign.pk
    assert report["n_prompts"] == 4 and report["n_ratings"] == 9
    assert set(report["relevance"]) >= {
        "pretrained_mean",
        "finetuned_mean",
        "improvement",
        "ci95",
        "wilcoxon_p",
        "n_prompts",
    }
    assert set(report["win_rate"]) >= {"finetuned", "pretrained", "tie", "n"}
    assert set(report["agreement"]) >= {"score_alpha", "correct_alpha", "n_units"}
    assert set(report["position_bias"]) >= {"left_win_rate", "p"}
    assert set(report["reliability"]) >= {
        "load_attempts",
        "load_success_rate",
        "fallback_rate",
        "generation_success_rate",
    }
    assert set(report["cost"]) >= {"gpu_seconds", "per_request_usd", "gpu_hour_price_usd"}
    json.dumps(report)  # plain JSON, no numpy scalars


def test_relevance_matches_hand_computation(report):
    rel = report["relevance"]
    pt, ft = np.mean(PT_MEANS), np.mean(FT_MEANS)
    assert rel["pretrained_mean"] == pytest.approx(pt)
    assert rel["finetuned_mean"] == pytest.approx(ft)
    assert rel["improvement"] == pytest.approx((ft - pt) / pt)
    assert rel["improvement"] == pytest.approx(1.5 / (7 / 3 + 7 / 2 + 2 + 4))
    assert rel["wilcoxon_p"] == pytest.approx(stats.wilcoxon(np.subtract(FT_MEANS, PT_MEANS)).pvalue)
    assert rel["n_prompts"] == 4
    lo, hi = rel["ci95"]
    assert lo <= rel["improvement"] <= hi


def test_intervals_and_tests_are_the_same_on_every_run(hand, report):
    again = campaign_report(hand.campaign)["relevance"]
    for key in ("ci95", "difference_ci95", "permutation_p", "wilcoxon_p"):
        assert again[key] == report["relevance"][key]


def test_win_rate_counts_ratings(report):
    win = report["win_rate"]
    assert (win["finetuned"], win["pretrained"], win["tie"], win["n"]) == pytest.approx(
        (6 / 9, 1 / 9, 2 / 9, 9)
    )


def test_human_accuracy_uses_majority_verdicts_and_wilson(report):
    sentiment = report["accuracy"]["sentiment"]
    # p1: pre-trained F,F,- -> wrong; p2: T,T -> right. Fine-tuned p1 T,T,T -> right; p2 T,F -> no majority
    assert sentiment["pretrained"]["accuracy"] == 0.5 and sentiment["pretrained"]["n"] == 2
    assert sentiment["finetuned"]["accuracy"] == 1.0 and sentiment["finetuned"]["n"] == 1
    z = 1.959963984540054
    p, n = 0.5, 2
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert sentiment["pretrained"]["ci95"] == pytest.approx([centre - half, centre + half])
    # McNemar on p1 only (p2 has no fine-tuned majority): one discordant prompt favouring fine-tuned
    assert sentiment["mcnemar_p"] == pytest.approx(stats.binomtest(1, 1, 0.5).pvalue)
    rec = report["accuracy"]["recommendation"]
    assert rec["pretrained"]["accuracy"] == 0.5 and rec["pretrained"]["n"] == 2
    assert rec["finetuned"]["accuracy"] == 0.0 and rec["finetuned"]["n"] == 1
    assert rec["mcnemar_p"] == pytest.approx(stats.binomtest(0, 1, 0.5).pvalue)


def test_automated_accuracy_matches_labels_by_task(report):
    sentiment = report["accuracy"]["sentiment"]["automated"]
    assert (sentiment["pretrained"], sentiment["finetuned"], sentiment["n"]) == (0.0, 1.0, 2)
    rec = report["accuracy"]["recommendation"]["automated"]
    assert (rec["pretrained"], rec["finetuned"], rec["n"]) == (0.0, 0.5, 2)


def test_agreement_matches_krippendorff_on_the_reliability_matrix(report):
    # raters x units (p1 pt, p1 ft, p2 pt, p2 ft, p3 pt, p3 ft, p4 pt, p4 ft)
    scores = np.array(
        [
            [2, 4, 3, 3, 1, 4, NAN, NAN],
            [3, 5, 4, 5, 2, 2, NAN, NAN],
            [2, 3, NAN, NAN, 3, 4, 4, 2],
        ]
    )
    correct = np.array(
        [
            [0, 1, 1, 1, 0, 1, NAN, NAN],
            [0, 1, 1, 0, 0, NAN, NAN, NAN],
            [NAN, 1, NAN, NAN, 1, 0, 1, 0],
        ]
    )
    agreement = report["agreement"]
    assert agreement["score_alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=scores, level_of_measurement="interval")
    )
    assert agreement["correct_alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=correct, level_of_measurement="nominal")
    )
    assert agreement["n_units"] == 6


def test_position_bias_against_binomtest(report):
    bias = report["position_bias"]
    assert bias["n"] == 7
    assert bias["left_win_rate"] == pytest.approx(4 / 7)
    assert bias["p"] == pytest.approx(stats.binomtest(4, 7, 0.5).pvalue)


def test_reliability_latency_cost(report):
    reli = report["reliability"]
    assert reli["load_attempts"] == 3 and reli["load_success_rate"] == pytest.approx(2 / 3)
    assert reli["fallback_rate"] == pytest.approx(1 / 5)  # one fallback of five fine-tuned answers requested
    assert reli["generation_success_rate"] == pytest.approx(8 / 10)
    pt, ft = report["latency"]["pretrained"], report["latency"]["finetuned"]
    assert (pt["p50_ms"], pt["p95_ms"], pt["n"]) == pytest.approx(
        (250, np.percentile([100, 200, 300, 400], 95), 4)
    )
    assert pt["tokens_per_s"] == pytest.approx(100 / 1.0)
    assert (ft["p50_ms"], ft["n"]) == (2000, 3)
    assert ft["tokens_per_s"] == pytest.approx(180 / 6.0)
    cost = report["cost"]
    assert cost["gpu_seconds"] == pytest.approx(7.0)
    assert cost["gpu_hour_price_usd"] == 3.0
    assert cost["per_request_usd"] == pytest.approx(7.0 / 7 * 3.0 / 3600)


def test_training_block_carries_the_linked_runs_metrics(report):
    training = report["training"]
    assert training["n_runs"] == 1
    for key in (
        "trainable_params",
        "total_params",
        "trainable_pct",
        "peak_memory_bytes",
        "wall_seconds",
        "epochs_run",
        "best_epoch",
        "early_stopped",
        "train_loss",
        "val_loss",
    ):
        assert training[key] == TRAINING_METRICS[key]
        assert training["runs"][0][key] == TRAINING_METRICS[key]


def test_per_annotator_table_uses_pseudonyms(hand, report):
    first = hand.annotators[0]
    row = next(r for r in report["per_annotator"] if r["annotator"] == first.pseudonym)
    assert row["ratings"] == 3
    assert row["mean_score"] == pytest.approx(np.mean([2, 4, 3, 3, 1, 4]))
    assert row["median_duration_ms"] == 4000
    assert first.username not in json.dumps(report)


def test_claims_refuse_with_reasons_when_the_sample_is_small(report):
    relevance = next(c for c in report["claims"] if c["metric"] == "relevance.difference")
    assert relevance["refused"] and "only 4 prompts" in relevance["reason"]


def test_empty_campaign_still_reports_with_reasons(db):
    job = GenerationJob.objects.create(dataset=Dataset.objects.create(name="empty"))
    campaign = Campaign.objects.create(name="empty", job=job)
    report = campaign_report(campaign)
    assert list(report)[: len(REPORT_KEYS)] == list(REPORT_KEYS)
    assert report["n_prompts"] == 0 and report["n_ratings"] == 0
    assert report["relevance"]["improvement"] is None and report["relevance"]["improvement_reason"]
    assert report["win_rate"]["finetuned"] is None and report["win_rate"]["reason"]
    assert report["agreement"]["score_alpha"] is None and report["agreement"]["score_alpha_reason"]
    assert report["position_bias"]["p"] is None and report["position_bias"]["p_reason"]
    assert report["reliability"]["generation_success_rate"] is None
    assert report["reliability"]["generation_success_rate_reason"]
    assert report["latency"]["pretrained"]["p50_ms"] is None and report["latency"]["pretrained"]["reason"]
    assert report["cost"]["gpu_seconds"] is None and report["cost"]["gpu_seconds_reason"]
    assert report["training"]["reason"]
    assert all(c["refused"] for c in report["claims"])


def test_single_rater_campaign_has_no_alpha(db):
    single = [r for r in RATINGS if r[1] == 0]  # rater u1 only
    report = campaign_report(build_hand_campaign(ratings=single, name="single").campaign)
    assert report["agreement"]["score_alpha"] is None
    assert "fewer than 2 raters" in report["agreement"]["score_alpha_reason"]
    assert report["agreement"]["n_units"] == 0


def test_all_equal_scores_have_no_wilcoxon_and_no_alpha(db):
    flat = [(p, r, side, 3, 3, None, None, "tie") for p, r, side, *_ in RATINGS]
    report = campaign_report(build_hand_campaign(ratings=flat, name="flat").campaign)
    rel = report["relevance"]
    assert rel["improvement"] == 0 and rel["wilcoxon_p"] is None and rel["wilcoxon_p_reason"]
    assert (
        report["agreement"]["score_alpha"] is None
        and "variation" in report["agreement"]["score_alpha_reason"]
    )
    assert report["win_rate"]["tie"] == 1.0
    # no verdicts at all: accuracy left out, with reasons
    sentiment = report["accuracy"]["sentiment"]
    assert sentiment["pretrained"]["accuracy"] is None and sentiment["pretrained"]["reason"]
    assert sentiment["mcnemar_p"] is None and sentiment["mcnemar_p_reason"]
    assert report["agreement"]["correct_alpha"] is None


def test_report_command_prints_the_same_dict(hand, report):
    out = StringIO()
    call_command("report", "--campaign", str(hand.campaign.pk), stdout=out)
    assert json.loads(out.getvalue()) == json.loads(json.dumps(report))


def test_report_command_text_format_shows_n_and_ci(hand):
    out = StringIO()
    call_command("report", "--campaign", str(hand.campaign.pk), "--format", "text", stdout=out)
    text = out.getvalue()
    assert "improvement" in text and "95% CI" in text and "n=4 prompts" in text
    assert "refused" in text


def test_report_command_names_an_unknown_campaign(db):
    with pytest.raises(CommandError, match="--campaign: no campaign with id 999"):
        call_command("report", "--campaign", "999")


def test_training_claim_states_the_trainable_share_as_measured(report):
    claim = next(c for c in report["claims"] if c["metric"] == "training.trainable_pct")
    assert claim["text"] == (
        "LoRA fine-tuning trained 4,505,600 of 1,104,553,984 parameters (0.41%), ran 14 epochs and kept "
        "epoch 4 (early stopping)."
    )


def test_training_compares_lora_with_a_full_run_of_the_same_model_and_dataset(hand):
    lora = hand.job.finetune_run
    FinetuneRun.objects.create(
        dataset=lora.dataset,
        base_model=lora.base_model,
        output_dir="/tmp/full",
        mode="full",
        status="succeeded",
        metrics={
            **TRAINING_METRICS,
            "mode": "full",
            "trainable_params": 1_104_553_984,
            "peak_memory_bytes": 12e9,
        },
    )
    training = campaign_report(hand.campaign)["training"]
    assert training["comparison"]["mode"] == "full"
    assert training["ratio_to_comparison"]["peak_memory_bytes"] == pytest.approx(3e9 / 12e9)
    assert training["ratio_to_comparison"]["trainable_params"] == pytest.approx(4_505_600 / 1_104_553_984)
