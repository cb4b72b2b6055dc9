"""Exports, the unblinded pair page and the comments of a campaign of more than two systems (issue 17):
rated through the API by two annotators, then every export row names the system that wrote its answer
and the system the rater preferred, checked against the stored Pair and Assignment rows."""

from __future__ import annotations

import csv
import html
import io
import json

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from annotations.campaigns import campaign_create
from annotations.models import Assignment, Campaign, Rating, User
from reports import exports
from reports.building import campaign_report
from reports.labels import system_label, system_preference_label
from tests.support.annotation_data import make_campaign
from tests.support.systems_data import make_systems_job

pytestmark = pytest.mark.django_db

# what each annotator answers, in turn: the left answer preferred, the right, a tie, both bad
PREFERENCES = ("left", "right", "tie", "both_bad")


def _rate_all(campaign: Campaign, user: User) -> None:
    """The annotator rates every pair through the API, preferences taken in turn from PREFERENCES."""
    api = APIClient()
    api.force_authenticate(user)
    for i in range(100):
        response = api.get(f"/api/campaigns/{campaign.pk}/next/")
        if response.status_code == 204:
            return
        body = response.json()
        rating = {
            "score_left": 1 + i % 5,
            "score_right": 5 - i % 5,
            "correct_left": i % 2 == 0,
            "correct_right": i % 3 == 0,
            "preference": PREFERENCES[i % 4],
            "comment": f"note {i}" if i % 3 == 0 else "",
        }
        answer = api.post(f"/api/assignments/{body['assignment']}/rating/", rating, format="json")
        assert answer.status_code == 201, answer.content
    raise AssertionError("the campaign never ran out of pairs")


@pytest.fixture
def rated(annotator, other_annotator):
    """A four-system campaign over 24 prompts (each task shows every system pair once), every pair
    rated by both annotators through the API."""
    job = make_systems_job(prompts=24)
    campaign = campaign_create(job=job, name="four ways", overlap=2)
    _rate_all(campaign, annotator)
    _rate_all(campaign, other_annotator)
    return campaign


def _expected(campaign: Campaign, *, by_username: bool = False) -> dict[tuple[int, str, str], dict]:
    """{(pair id, rater, position): what the row must say} from the Pair, Assignment and Rating rows."""
    out = {}
    for a in Assignment.objects.filter(pair__campaign=campaign).select_related(
        "pair__pretrained_answer", "pair__finetuned_answer", "annotator", "rating"
    ):
        later, earlier = a.pair.finetuned_answer, a.pair.pretrained_answer
        at = {a.finetuned_side: later, ("right" if a.finetuned_side == "left" else "left"): earlier}
        preference = a.rating.preference
        preferred = at[preference].role if preference in at else preference
        rater = a.annotator.username if by_username else a.annotator.pseudonym
        for position, answer in at.items():
            out[(a.pair_id, rater, position)] = {
                "role": answer.role,
                "preference": preferred,
                "answer_chars": len(answer.text),
                "answer_text": answer.text,
            }
    return out


def _check(rows: list[dict], campaign: Campaign, *, texts: bool = False) -> None:
    expected = _expected(campaign)
    ratings = Rating.objects.filter(assignment__pair__campaign=campaign).count()
    assert len(rows) == len(expected) == 2 * ratings
    for row in rows:
        want = expected[(int(row["pair_id"]), row["annotator"], row["position"])]
        assert row["role"] == want["role"]
        assert row["preference"] == want["preference"]
        assert int(row["answer_chars"]) == want["answer_chars"]
        if texts:
            assert row["answer_text"] == want["answer_text"]


def test_every_export_names_each_answers_system_and_the_preferred_system(client, researcher, rated, tmp_path):
    roles = {row["role"] for row in exports.export_rows(rated)}
    assert roles == {"pretrained", "finetuned", "epoch-005", "outside"}  # every system is in the export
    preferences = {row["preference"] for row in exports.export_rows(rated)}
    assert {"tie", "both_bad"} < preferences and preferences - {"tie", "both_bad"} <= roles
    client.force_login(researcher)
    base = f"/api/campaigns/{rated.pk}/export"
    body = b"".join(client.get(f"{base}.csv?texts=1").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert list(rows[0]) == [*exports.COLUMNS, *exports.TEXT_COLUMNS]  # no column added or moved
    _check(rows, rated, texts=True)
    body = b"".join(client.get(f"{base}.jsonl").streaming_content).decode()
    _check([json.loads(line) for line in body.splitlines()], rated)
    table = pq.read_table(io.BytesIO(b"".join(client.get(f"{base}.parquet?texts=1").streaming_content)))
    _check(table.to_pylist(), rated, texts=True)
    path = tmp_path / "scores.csv"
    call_command("export_scores", "--campaign", str(rated.pk), "--output", str(path), stdout=io.StringIO())
    _check(list(csv.DictReader(path.open(encoding="utf-8"))), rated)


def test_every_revision_keeps_each_versions_preferred_system(annotator, other_annotator):
    job = make_systems_job(prompts=6)
    campaign = campaign_create(job=job, name="revisions", overlap=1)
    _rate_all(campaign, annotator)
    api = APIClient()
    api.force_authenticate(annotator)
    rating = Rating.objects.filter(assignment__pair__campaign=campaign).select_related(
        "assignment__pair__pretrained_answer", "assignment__pair__finetuned_answer"
    )[0]
    flipped = {"left": "right", "right": "left", "tie": "left", "both_bad": "right"}[rating.preference]
    body = {
        "score_left": 2, "score_right": 3, "correct_left": True, "correct_right": True,
        "preference": flipped, "comment": "second look",
    }  # fmt: skip
    posted = api.post(f"/api/assignments/{rating.assignment_id}/rating/", body, format="json")
    assert posted.status_code == 200
    a = rating.assignment
    later, earlier = a.pair.finetuned_answer.role, a.pair.pretrained_answer.role
    rows = [
        r
        for r in exports.export_rows(campaign, all_revisions=True)
        if r["pair_id"] == a.pair_id and r["position"] == "left"
    ]
    assert [r["revision"] for r in rows] == [1, 2]
    assert rows[1]["preference"] == (later if flipped == a.finetuned_side else earlier)
    assert rows[1]["role"] == (later if a.finetuned_side == "left" else earlier)


def test_a_two_system_export_still_says_pretrained_and_finetuned(annotator):
    campaign = make_campaign(prompts=2, overlap=1)
    _rate_all(campaign, annotator)
    rows = list(exports.export_rows(campaign))
    assert {r["role"] for r in rows} == {"pretrained", "finetuned"}
    for a in Assignment.objects.filter(pair__campaign=campaign).select_related("rating"):
        (left,) = [r for r in rows if r["pair_id"] == a.pair_id and r["position"] == "left"]
        assert left["role"] == ("finetuned" if a.finetuned_side == "left" else "pretrained")
        if a.rating.preference in ("left", "right"):
            preferred = "finetuned" if a.rating.preference == a.finetuned_side else "pretrained"
            assert left["preference"] == preferred


def test_the_pair_page_labels_each_answer_by_its_system(client, researcher, rated):
    pair = (
        rated.pairs.filter(pretrained_answer__role="epoch-005", finetuned_answer__role="outside")
        .select_related("pretrained_answer", "finetuned_answer")
        .first()
    )
    earlier, later = pair.pretrained_answer.role, pair.finetuned_answer.role  # every task has this pair
    client.force_login(researcher)
    response = client.get(f"/campaigns/{rated.pk}/pairs/{pair.pk}/")
    page = response.content.decode()
    assert response.status_code == 200
    card = page.split('id="answer-epoch-005"')[1].split("</section>")[0]
    assert "epoch-005 answer" in card and html.escape(pair.pretrained_answer.text) in card
    assert "adapter /srv/adapters/epoch-005 (epoch 5)" in card
    card = page.split('id="answer-outside"')[1].split("</section>")[0]
    assert "outside answer" in card and "imported answers" in card
    assert "Pre-trained" not in page and "Fine-tuned" not in page
    assert "<th>outside shown</th>" in page and '<th class="num">epoch-005 score</th>' in page
    expected = _expected(rated)
    for row in response.context["ratings"]:
        rater = row.rater
        want = expected[(pair.pk, rater, "left")]["preference"]
        assert row.preference == want
        assert row.preference_text == system_preference_label(want, (earlier, later))
        assert row.preference_text in page
    assert {r.preference_text for r in response.context["ratings"]} <= {
        "epoch-005 better", "outside better", "tie", "both bad"
    }  # fmt: skip


def test_the_comments_name_the_two_systems_of_their_pair(rated):
    comments = campaign_report(rated)["comments"]
    assert comments
    pairs = {p.pk: p for p in rated.pairs.select_related("pretrained_answer", "finetuned_answer")}
    for comment in comments:
        pair = pairs[comment["pair"]]
        assert comment["systems"] == [pair.pretrained_answer.role, pair.finetuned_answer.role]


def test_system_labels():
    assert [system_label(s) for s in ("pretrained", "finetuned", "epoch_005")] == [
        "pre-trained",
        "fine-tuned",
        "epoch_005",
    ]
    assert system_preference_label("finetuned", ["pretrained", "finetuned"]) == "fine-tuned better"
    assert system_preference_label("epoch_005", ("finetuned", "epoch_005")) == "epoch_005 better"
    assert system_preference_label("both_bad", ("finetuned", "epoch_005")) == "both bad"
