"""The report's per-annotator extras, length bias, identity leaks and plots, on the hand campaign,
each against an independent computation from the fixture tables (not from the code under test)."""

from __future__ import annotations

import csv
import io
import json
import re
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from scipy import stats

from annotations.models import Campaign
from generation.models import Dataset, GenerationJob
from reports.building import REPORT_KEYS, campaign_report
from tests.support.report_data import PROMPTS, RATINGS, build_hand_campaign, role_to_side_preference

pytestmark = pytest.mark.django_db

TEXTS = {p[0]: {"pretrained": p[3], "finetuned": p[4]} for p in PROMPTS}


@pytest.fixture
def hand():
    return build_hand_campaign()


@pytest.fixture
def report(hand):
    return campaign_report(hand.campaign)


def _row(report, hand, rater):
    pseudonym = hand.annotators[rater].pseudonym
    return next(r for r in report["per_annotator"] if r["annotator"] == pseudonym)


def test_new_keys_come_after_the_spec_keys_and_are_plain_json(report):
    assert list(report)[: len(REPORT_KEYS)] == list(REPORT_KEYS)
    for key in ("length_bias", "identity_leaks", "latency_distribution", "per_annotator_method"):
        assert key in report
    json.dumps(report, allow_nan=False)


def test_agreement_with_others_per_rater_matches_the_fixture_table(report, hand):
    scores = {}  # (prompt, role) -> {rater: score}
    for prompt, rater, _side, pt, ft, *_ in RATINGS:
        scores.setdefault((prompt, "pretrained"), {})[rater] = pt
        scores.setdefault((prompt, "finetuned"), {})[rater] = ft
    for rater in range(3):
        own, others = [], []
        for by_rater in scores.values():
            rest = [s for r, s in by_rater.items() if r != rater]
            if rater in by_rater and rest:
                own.append(by_rater[rater])
                others.append(sum(rest) / len(rest))
        agr = _row(report, hand, rater)["agreement_with_others"]
        assert agr["n_units"] == len(own)
        assert agr["mean_abs_diff"] == pytest.approx(np.mean(np.abs(np.subtract(own, others))))
        assert agr["spearman"] == pytest.approx(stats.spearmanr(own, others).statistic)
        assert agr["pearson"] == pytest.approx(stats.pearsonr(own, others).statistic)
    # rater 3 shares p1 and p3 with others (4 units); p4 is theirs alone
    assert _row(report, hand, 2)["agreement_with_others"]["n_units"] == 4


def test_side_preference_and_gold_per_rater(report, hand):
    for rater in range(3):
        prefs = [role_to_side_preference(r[7], r[2]) for r in RATINGS if r[1] == rater]
        left, n = prefs.count("left"), prefs.count("left") + prefs.count("right")
        row = _row(report, hand, rater)
        side = row["side_preference"]
        assert (side["left"], side["n"]) == (left, n)
        assert side["left_share"] == pytest.approx(left / n)
        assert side["p"] == pytest.approx(stats.binomtest(left, n, 0.5).pvalue)
        assert row["gold_accuracy"] is None
        assert row["gold_accuracy_reason"] == "no gold pairs in this campaign"


def test_single_rater_has_no_agreement_with_others(db):
    single = [r for r in RATINGS if r[1] == 0]
    report = campaign_report(build_hand_campaign(ratings=single, name="alone").campaign)
    agr = report["per_annotator"][0]["agreement_with_others"]
    assert agr["n_units"] == 0 and agr["spearman"] is None and "no overlap" in agr["spearman_reason"]


def test_length_bias_matches_spearmanr_over_rating_by_answer_rows(report):
    rows = {"pretrained": ([], []), "finetuned": ([], [])}
    wins = n = 0
    for prompt, _rater, _side, pt, ft, *_ in RATINGS:
        for role, score in (("pretrained", pt), ("finetuned", ft)):
            rows[role][0].append(score)
            rows[role][1].append(len(TEXTS[prompt][role]))
        pt_len, ft_len = len(TEXTS[prompt]["pretrained"]), len(TEXTS[prompt]["finetuned"])
        if pt != ft and pt_len != ft_len:
            n += 1
            wins += (ft > pt) == (ft_len > pt_len)
    lb = report["length_bias"]
    for role in ("pretrained", "finetuned"):
        expected = stats.spearmanr(*rows[role])
        assert lb[role]["spearman"] == pytest.approx(expected.statistic)
        assert lb[role]["p"] == pytest.approx(expected.pvalue)
        assert lb[role]["n"] == len(RATINGS)
    all_scores = rows["pretrained"][0] + rows["finetuned"][0]
    all_chars = rows["pretrained"][1] + rows["finetuned"][1]
    assert lb["overall"]["spearman"] == pytest.approx(stats.spearmanr(all_scores, all_chars).statistic)
    assert lb["overall"]["n"] == 2 * len(RATINGS)
    assert (lb["longer_wins"]["n"], lb["longer_wins"]["longer_wins"]) == (n, wins)
    assert lb["longer_wins"]["p"] == pytest.approx(stats.binomtest(wins, n, 0.5).pvalue)


def test_length_bias_uses_the_exports_answer_chars(client, researcher, hand, report):
    client.force_login(researcher)
    body = b"".join(client.get(f"/api/campaigns/{hand.campaign.pk}/export.csv").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    for role in ("pretrained", "finetuned"):
        mine = [r for r in rows if r["role"] == role]
        rho = stats.spearmanr([int(r["score"]) for r in mine], [int(r["answer_chars"]) for r in mine])
        assert report["length_bias"][role]["spearman"] == pytest.approx(rho.statistic)


LEAKY_PROMPTS = [
    ("p1", "sentiment", "negative", "As an AI developed by OpenAI, negative.", "Negative. It broke."),
    ("p2", "sentiment", "positive", "It is neutral or positive", "I'm SmolLM, fine-tuned: positive!"),
    ("p3", "recommendation", "no", "Yes, buy it", "No. It leaks; not yes."),
    ("p4", "recommendation", "yes", "I know nothing", "As a language model trained by Hugging Face, no"),
]


def test_identity_leaks_are_listed_per_prompt_role_and_phrase(db):
    report = campaign_report(build_hand_campaign(prompts=LEAKY_PROMPTS, name="leaky").campaign)
    leaks = report["identity_leaks"]
    assert leaks["count"] == {"pretrained": 1, "finetuned": 2}
    assert leaks["n_checked"] == {"pretrained": 4, "finetuned": 4}
    assert [(f["prompt"], f["role"], f["phrase"]) for f in leaks["flagged"]] == [
        ("p1", "pretrained", "As an AI"),
        ("p2", "finetuned", "SmolLM"),
        ("p4", "finetuned", "language model"),
    ]
    claim = next(c for c in report["claims"] if c["metric"] == "identity_leaks")
    assert "2 fine-tuned and 1 pre-trained" in claim["text"]


def test_identity_leaks_never_reach_annotators(client, annotator, db):
    hc = build_hand_campaign(prompts=LEAKY_PROMPTS, name="leaky2")
    client.force_login(annotator)
    for url in (f"/campaigns/{hc.campaign.pk}/report/", f"/api/campaigns/{hc.campaign.pk}/report/"):
        response = client.get(url)
        assert response.status_code == 403 and b"identity" not in response.content


def test_clean_answers_have_no_leaks_and_no_leak_claim(report):
    assert report["identity_leaks"]["n_flagged"] == 0 and report["identity_leaks"]["flagged"] == []
    assert not any(c["metric"] == "identity_leaks" for c in report["claims"])


def test_latency_distribution_counts_every_timed_answer(report):
    dist = report["latency_distribution"]
    assert len(dist["edges_ms"]) == 11
    assert sum(dist["pretrained"]) == 4 and sum(dist["finetuned"]) == 3  # one fine-tuned answer untimed
    expected = np.histogram([1000.0, 2000.0, 3000.0], bins=dist["edges_ms"])[0].tolist()
    assert dist["finetuned"] == expected


def test_empty_campaign_has_the_new_blocks_with_reasons(db):
    job = GenerationJob.objects.create(dataset=Dataset.objects.create(name="empty-x"))
    report = campaign_report(Campaign.objects.create(name="empty-x", job=job))
    assert report["length_bias"]["overall"]["spearman"] is None
    assert report["length_bias"]["overall"]["spearman_reason"]
    assert report["length_bias"]["longer_wins"]["share_reason"]
    assert report["identity_leaks"]["n_flagged"] == 0
    assert report["latency_distribution"]["reason"] and report["per_annotator"] == []
    json.dumps(report, allow_nan=False)


def test_text_report_mentions_the_new_figures(hand):
    out = StringIO()
    call_command("report", "--campaign", str(hand.campaign.pk), "--format", "text", stdout=out)
    text = out.getvalue()
    assert "Length bias" in text and "longer answer scored higher" in text
    assert "Identity leaks: 0 answer(s) flagged" in text
    assert "gold n/a (no gold pairs in this campaign)" in text


# ------------------------------------------------------------------------------------------------
# Page: plots and the live refresh
# ------------------------------------------------------------------------------------------------


def test_report_page_draws_latency_loss_and_length_charts(client, researcher, hand, report):
    client.force_login(researcher)
    response = client.get(f"/campaigns/{hand.campaign.pk}/report/")
    html = response.content.decode()
    assert 'aria-label="Answer latency histogram by role (ms)"' in html
    assert 'aria-label="Training and validation loss per epoch"' in html
    assert 'aria-label="Mean score by answer length"' in html
    # loss chart: one polyline per series with one point per epoch, and the best-epoch marker
    chart = response.context["loss_chart"]
    train, val = chart["lines"]
    assert len(train["points"]) == 3 and len(val["points"]) == 3
    assert train["segments"][0].count(",") == 3
    # higher loss is drawn higher (smaller y): epoch 1 above epoch 3
    assert train["points"][0]["y"] < train["points"][2]["y"]
    assert chart["marker"] is None  # best epoch 4 is beyond the 3 recorded losses
    # the figures of the new sections come from the report dict
    assert hand.annotators[0].pseudonym in html and "no gold pairs in this campaign" in html
    assert 'id="length-bias"' in html and 'id="identity-leaks"' in html


def test_report_page_without_a_run_or_latencies_leaves_those_charts_out(client, researcher, db):
    hc = build_hand_campaign(with_training=False, name="norun")
    client.force_login(researcher)
    response = client.get(f"/campaigns/{hc.campaign.pk}/report/")
    assert response.status_code == 200 and response.context["loss_chart"] is None
    assert b"Training and validation loss" not in response.content


def test_identity_leaks_are_shown_to_researchers(client, researcher, db):
    hc = build_hand_campaign(prompts=LEAKY_PROMPTS, name="leaky3")
    client.force_login(researcher)
    html = client.get(f"/campaigns/{hc.campaign.pk}/report/").content.decode()
    assert "As an AI" in html and "SmolLM" in html and "language model" in html


def test_report_page_loads_the_refresh_script_from_static_only(client, researcher, hand):
    client.force_login(researcher)
    html = client.get(f"/campaigns/{hand.campaign.pk}/report/").content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts == [(' src="/static/reports/report-refresh.js" defer', "")]
    assert 'id="report-live" data-refresh-seconds="15"' in html
    assert re.search(r"\son[a-z]+=", html) is None  # no inline event handlers either
    js = Path(settings.BASE_DIR, "static", "reports", "report-refresh.js").read_text()
    assert "report-live" in js and "data-refresh-seconds" in js and "eval(" not in js
