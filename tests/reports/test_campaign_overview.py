"""The campaigns overview (`/campaigns/`, issue 16): each campaign's headline difference with its 95% CI,
its coverage and status, sortable, filtered by status, 25 to a page, and quick with many campaigns."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.models import Campaign
from generation.models import Dataset, GenerationJob
from reports.building import campaign_report
from reports.overview import SORT_CHOICES
from tests.support.report_data import build_hand_campaign, generated_prompts, one_rater_rows

pytestmark = pytest.mark.django_db


def _campaign_with_difference(name: str, pt: int, ft: int, n: int = 6):
    """n prompts, one rater; the fine-tuned answer `ft - pt` points better on every other prompt."""
    prompts = generated_prompts({"sentiment": n})
    ids = [p[0] for p in prompts]
    rows = one_rater_rows(ids[: n // 2], pt, ft) + one_rater_rows(ids[n // 2 :], pt, pt + 1)
    return build_hand_campaign(prompts=prompts, ratings=rows, name=name, n_annotators=1, with_training=False)


def _empty_campaign(name: str) -> Campaign:
    job = GenerationJob.objects.create(dataset=Dataset.objects.create(name=f"ds-{name}"))
    return Campaign.objects.create(name=name, job=job)


def _names(response) -> list[str]:
    return [row.name for row in response.context["campaigns"]]


def test_each_campaign_shows_the_reports_headline_and_coverage(client, researcher):
    hc = build_hand_campaign()
    empty = _empty_campaign("nothing yet")
    client.force_login(researcher)
    response = client.get("/campaigns/")
    page = response.content.decode()
    rel = campaign_report(hc.campaign)["relevance"]
    row = next(r for r in response.context["campaigns"] if r.pk == hc.campaign.pk)
    assert row.difference == pytest.approx(rel["difference"])
    assert row.difference_ci95 == pytest.approx(rel["difference_ci95"])
    lo, hi = rel["difference_ci95"]
    assert f"{rel['difference']:+.2f}" in page and f"({lo:+.2f} to {hi:+.2f})" in page
    assert "4 / 4 prompts rated (100%)" in page and "2.2 ratings per rated prompt (target 3)" in page
    none = next(r for r in response.context["campaigns"] if r.pk == empty.pk)
    assert none.difference is None and "no figure yet: no ratings yet" in page


def test_sorting_by_difference_puts_missing_figures_last(client, researcher):
    _campaign_with_difference("small", 3, 4)
    _campaign_with_difference("large", 1, 5)
    _empty_campaign("unrated")
    client.force_login(researcher)
    assert _names(client.get("/campaigns/?sort=-difference")) == ["large", "small", "unrated"]
    assert _names(client.get("/campaigns/?sort=difference")) == ["small", "large", "unrated"]
    assert _names(client.get("/campaigns/?sort=name")) == ["large", "small", "unrated"]
    assert _names(client.get("/campaigns/?sort=-name")) == ["unrated", "small", "large"]
    page = client.get("/campaigns/?sort=-difference").content.decode()
    # the active column says its direction; its link reverses it
    assert 'aria-sort="descending"><a href="?sort=difference"' in page


def test_every_sort_in_the_menu_is_accepted_and_selected(client, researcher):
    _empty_campaign("only one")
    client.force_login(researcher)
    for value, label in SORT_CHOICES:
        response = client.get(f"/campaigns/?sort={value}")
        assert response.status_code == 200, value
        assert f'<option value="{value}" selected>{label}</option>' in response.content.decode()


def test_status_filter_and_bad_queries(client, researcher):
    _empty_campaign("still open")
    closed = _empty_campaign("done")
    Campaign.objects.filter(pk=closed.pk).update(status=Campaign.Status.CLOSED)
    client.force_login(researcher)
    assert _names(client.get("/campaigns/?status=closed")) == ["done"]
    assert _names(client.get("/campaigns/?status=open")) == ["still open"]
    for query, message in (("sort=bogus", "Unknown sort"), ("status=archived", "Unknown status")):
        response = client.get(f"/campaigns/?{query}")
        assert response.status_code == 400 and message.encode() in response.content
        assert sorted(_names(response)) == ["done", "still open"]  # the default list, nothing changed


def test_pages_of_25(client, researcher):
    for i in range(26):
        _empty_campaign(f"c{i:02d}")
    client.force_login(researcher)
    first = client.get("/campaigns/?sort=name")
    assert _names(first) == [f"c{i:02d}" for i in range(25)]
    assert "page 1 of 2 (26 campaigns)" in first.content.decode()
    assert _names(client.get("/campaigns/?sort=name&page=2")) == ["c25"]
    assert _names(client.get("/campaigns/?sort=name&page=abc")) == _names(first)  # a bad page: the first


def test_annotators_get_403(client, annotator):
    _empty_campaign("secret")
    client.force_login(annotator)
    response = client.get("/campaigns/")
    assert response.status_code == 403 and b"secret" not in response.content


def test_twenty_campaigns_cost_a_fixed_number_of_queries(client, researcher, capsys):
    for i in range(20):
        _campaign_with_difference(f"c{i}", 2, 4, n=30)
    client.force_login(researcher)
    client.get("/campaigns/")  # warm up (templates, sessions)
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get("/campaigns/")
        seconds = time.perf_counter() - started
    assert response.status_code == 200 and len(response.context["campaigns"]) == 20
    # campaigns, pairs, ratings, the existence check, session and user: never one query per campaign
    assert len(queries) <= 8, [q["sql"][:80] for q in queries.captured_queries]
    started = time.perf_counter()
    for campaign in Campaign.objects.all()[:3]:
        campaign_report(campaign)
    per_report = (time.perf_counter() - started) / 3
    with capsys.disabled():
        print(f"\n/campaigns/ with 20 campaigns: {seconds:.3f} s, {len(queries)} queries; "
              f"one full report: {per_report:.3f} s")
