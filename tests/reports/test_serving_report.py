"""Serving latency in the report (issue 14, item 12): what one request waits when answered alone (time to
first token, to the full answer) beside the batch-share figure, cost per 1,000 requests both ways, and
which figure is which."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from generation.models import Prompt, ServingMeasurement
from reports.building import campaign_report
from reports.statistics.serving import quantile_ci
from reports.text import report_as_text
from tests.support.report_data import build_hand_campaign

# requests answered alone: (first token ms, full answer ms, output tokens)
PRETRAINED_ALONE = [(40.0 + i, 500.0 + 200 * i, 20 + i) for i in range(8)]
FINETUNED_ALONE = [(60.0 + 2 * i, 900.0 + 100 * i, 30) for i in range(8)]


def measure(hand, rows, role):
    for i, (first, total, tokens) in enumerate(rows):
        prompt, _ = Prompt.objects.get_or_create(
            dataset=hand.job.dataset, external_id=f"served{i}", defaults={"text": "q"}
        )
        ServingMeasurement.objects.create(
            job=hand.job, prompt=prompt, role=role, first_token_ms=first, total_ms=total,
            output_tokens=tokens, worker="w:1", device="cuda:0",
        )  # fmt: skip


@pytest.fixture
def hand(settings, db):
    settings.GPU_HOUR_PRICE_USD = 3.0
    hand = build_hand_campaign()
    measure(hand, PRETRAINED_ALONE, "pretrained")
    measure(hand, FINETUNED_ALONE, "finetuned")
    return hand


def test_serving_latency_sits_beside_the_batch_share_and_says_which_is_which(hand):
    report = campaign_report(hand.campaign)
    latency = report["latency"]
    assert latency["pretrained"]["p50_ms"] == 250  # the batch-share figure keeps its meaning
    serving = latency["serving"]
    pt = serving["pretrained"]
    totals = [r[1] for r in PRETRAINED_ALONE]
    firsts = [r[0] for r in PRETRAINED_ALONE]
    assert pt["n"] == 8
    assert pt["total_p50_ms"] == pytest.approx(np.percentile(totals, 50))
    assert pt["total_p95_ms"] == pytest.approx(np.percentile(totals, 95))
    assert pt["first_token_p50_ms"] == pytest.approx(np.percentile(firsts, 50))
    # 8 values: the median's narrowest 95% interval is [x(1), x(7)] (coverage 1 - 10/256 = 96.1%; [x(2),
    # x(7)] has 93%); a p95 from 8 has none
    assert pt["total_p50_ci95"] == [500.0, 1700.0]
    assert pt["total_p95_ci95"] is None and "too few" in pt["total_p95_ci95_reason"]
    assert pt["tokens_per_s"] == pytest.approx(sum(r[2] for r in PRETRAINED_ALONE) / (sum(totals) / 1000))
    assert serving["finetuned"]["n"] == 8 and serving["devices"] == ["cuda:0"]
    assert "answered alone" in serving["which_is_which"] and "share of its batch" in serving["which_is_which"]
    assert "batch of 1" in serving["method"]


def test_cost_per_1000_requests_both_ways(hand):
    per_1000 = campaign_report(hand.campaign)["cost"]["per_1000_requests"]
    # batched: 7 answers with a latency, 7.0 s of compute in all; alone: the mean full-answer time
    assert per_1000["batched_usd"] == pytest.approx(7.0 / 7 * 3.0 / 3600 * 1000)
    alone_ms = np.mean([r[1] for r in PRETRAINED_ALONE + FINETUNED_ALONE])
    assert per_1000["alone_usd"] == pytest.approx(alone_ms / 1000 * 3.0 / 3600 * 1000)
    assert per_1000["alone_to_batched"] == pytest.approx(per_1000["alone_usd"] / per_1000["batched_usd"])
    assert (per_1000["batched_n"], per_1000["alone_n"]) == (7, 16)


def test_the_text_report_and_the_page_name_both_figures(hand, client, researcher):
    report = campaign_report(hand.campaign)
    text = report_as_text(report)
    assert "answered alone (batch of 1)" in text and "share of its batch" in text
    assert "per 1,000 requests" in text
    client.force_login(researcher)
    page = client.get(f"/campaigns/{hand.campaign.pk}/report/").content.decode()
    assert 'id="serving-latency"' in page and "Answered alone" in page
    # the roles' batch-share rows are still there, and the serving block is not shown as a role
    assert "<td>serving</td>" not in page


def test_an_imported_job_says_why_it_has_no_serving_figure(db, settings):
    hand = build_hand_campaign(name="imported")
    hand.job.imported = True
    hand.job.save(update_fields=["imported"])
    report = campaign_report(hand.campaign)
    serving = report["latency"]["serving"]
    assert serving["pretrained"]["n"] == 0 and serving["pretrained"]["total_p50_ms"] is None
    assert "imported" in serving["reason"] and "imported" in serving["pretrained"]["reason"]
    assert report["cost"]["per_1000_requests"]["alone_usd"] is None
    assert "imported" in report_as_text(report)


@pytest.mark.parametrize("n, q", [(8, 0.5), (20, 0.5), (60, 0.95)])
def test_the_quantile_interval_covers_the_true_quantile_at_least_95_percent_of_the_time(n, q):
    # skewed latencies (lognormal), 4,000 samples: the exact order-statistic interval covers >= 95%
    rng = np.random.default_rng(n)
    truth = float(np.exp(stats.norm.ppf(q)))
    covered = 0
    for _ in range(4000):
        ci = quantile_ci(np.exp(rng.standard_normal(n)), q)
        covered += ci[0] <= truth <= ci[1]
    assert covered / 4000 >= 0.94  # 0.95 less three Monte Carlo standard errors


def test_a_p95_needs_59_measurements_for_an_interval():
    assert quantile_ci(np.arange(58.0), 0.95) is None
    assert quantile_ci(np.arange(59.0), 0.95) is not None
