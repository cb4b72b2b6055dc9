"""Report pages and API: researchers and admins only; page, API and command agree on every figure."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from annotations.models import Campaign
from generation.models import Dataset, GenerationJob
from reports.building import campaign_report
from tests.support.report_data import RATINGS, build_hand_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def hand():
    return build_hand_campaign()


def _urls(pk: int) -> list[str]:
    return [
        "/campaigns/",
        f"/campaigns/{pk}/report/",
        f"/api/campaigns/{pk}/report/",
        f"/api/campaigns/{pk}/report.json",
        f"/api/campaigns/{pk}/export.csv",
        f"/api/campaigns/{pk}/export.jsonl",
    ]


def test_annotators_get_403_everywhere(client, annotator, hand):
    client.force_login(annotator)
    for url in _urls(hand.campaign.pk):
        response = client.get(url)
        assert response.status_code == 403, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"finetuned" not in body and b"pretrained" not in body


def test_anonymous_visitors_are_sent_to_login_or_refused(client, hand):
    for url in _urls(hand.campaign.pk):
        response = client.get(url)
        if url.startswith("/api/"):
            assert response.status_code in (401, 403), url
        else:
            assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize("who", ["researcher", "admin_user"])
def test_researchers_and_admins_get_200(client, request, who, hand):
    client.force_login(request.getfixturevalue(who))
    for url in _urls(hand.campaign.pk):
        assert client.get(url).status_code == 200, url


def test_home_sends_researchers_to_the_campaign_list(client, researcher, hand):
    client.force_login(researcher)
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == "/campaigns/"
    assert hand.campaign.name.encode() in response.content


def test_campaign_list_shows_pairs_and_ratings(client, researcher, hand):
    client.force_login(researcher)
    response = client.get("/campaigns/")
    row = response.context["campaigns"][0]
    assert (row.n_pairs, row.n_ratings) == (4, len(RATINGS))


def test_api_report_is_the_same_dict_as_the_command_and_the_page(client, researcher, hand):
    client.force_login(researcher)
    api = client.get(f"/api/campaigns/{hand.campaign.pk}/report/").json()
    out = io.StringIO()
    call_command("report", "--campaign", str(hand.campaign.pk), stdout=out)
    assert api == json.loads(out.getvalue())
    page = client.get(f"/campaigns/{hand.campaign.pk}/report/")
    assert json.loads(json.dumps(page.context["report"])) == api
    # the figures the page prints come from that dict
    html = page.content.decode()
    rel = api["relevance"]
    assert f"{rel['improvement'] * 100:.1f}%" in html
    assert f"{rel['ci95'][0] * 100:.1f}% – {rel['ci95'][1] * 100:.1f}%" in html
    assert f"{rel['wilcoxon_p']:.3g}" in html
    for claim in api["claims"]:
        assert (claim["reason"] if claim["refused"] else claim["text"]).replace("'", "&#x27;") in html


def test_report_page_has_no_inline_script_or_style(client, researcher, hand):
    client.force_login(researcher)
    response = client.get(f"/campaigns/{hand.campaign.pk}/report/")
    html = response.content.decode()
    assert "<svg" in html and "style=" not in html and "<style" not in html
    # the one script is the static live-refresh file: nothing inline
    assert re.findall(r"<script[^>]*>(.*?)</script>", html, re.S) == [""]
    assert re.findall(r"<script([^>]*)>", html) == [' src="/static/reports/report-refresh.js" defer']
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_empty_campaign_page_renders(client, researcher):
    job = GenerationJob.objects.create(dataset=Dataset.objects.create(name="empty"))
    campaign = Campaign.objects.create(name="nothing yet", job=job)
    client.force_login(researcher)
    response = client.get(f"/campaigns/{campaign.pk}/report/")
    assert response.status_code == 200
    assert b"no ratings yet" in response.content


def test_unknown_campaign_is_404(client, researcher):
    client.force_login(researcher)
    assert client.get("/campaigns/999/report/").status_code == 404
    assert client.get("/api/campaigns/999/report/").status_code == 404
    assert client.get("/api/campaigns/999/export.csv").status_code == 404


def test_token_auth_reads_the_report_and_the_export(client, researcher, hand):
    token = Token.objects.create(user=researcher)
    headers = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    report = client.get(f"/api/campaigns/{hand.campaign.pk}/report/", **headers)
    assert report.status_code == 200 and report.json()["n_ratings"] == len(RATINGS)
    export = client.get(f"/api/campaigns/{hand.campaign.pk}/export.csv", **headers)
    assert export.status_code == 200


def test_export_csv_streams_an_attachment(client, researcher, hand):
    client.force_login(researcher)
    response = client.get(f"/api/campaigns/{hand.campaign.pk}/export.csv")
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="campaign-{hand.campaign.pk}-scores.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2 * len(RATINGS)
    assert {r["annotator"] for r in rows} == {u.pseudonym for u in hand.annotators}


def test_export_jsonl_and_report_download(client, researcher, hand):
    client.force_login(researcher)
    jsonl = client.get(f"/api/campaigns/{hand.campaign.pk}/export.jsonl")
    lines = b"".join(jsonl.streaming_content).decode().splitlines()
    assert len(lines) == 2 * len(RATINGS) and json.loads(lines[0])["campaign_id"] == hand.campaign.pk
    download = client.get(f"/api/campaigns/{hand.campaign.pk}/report.json")
    assert "attachment" in download["Content-Disposition"]
    assert download.json() == json.loads(json.dumps(campaign_report(hand.campaign)))
