"""Per-task question wording and gold pairs: create_campaign --questions/--gold, the rating page and API,
and per-annotator gold accuracy in the report (checked against a hand computation)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotations.campaigns import CampaignCreateError, campaign_create
from annotations.models import DEFAULT_TASK_QUESTIONS, Assignment, Campaign, Pair, Rating, User
from reports.annotators import GOLD_REASON, NO_GOLD_RATED_REASON
from reports.building import campaign_report
from reports.text import report_as_text
from tests.support.annotation_data import make_campaign, make_job

pytestmark = pytest.mark.django_db


def create_campaign(*args: str) -> int:
    out, err = StringIO(), StringIO()
    call_command("create_campaign", *args, stdout=out, stderr=err)
    return int(out.getvalue().strip().splitlines()[-1])


def write_jsonl(path, rows) -> str:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(path)


# --- question wording ------------------------------------------------------------------------------


def test_default_and_campaign_questions_on_the_page_and_in_the_api(annotator):
    campaign = make_campaign(prompts=2, overlap=2)  # p0 relevance, p1 sentiment
    campaign.task_questions = {"sentiment": "Does it get the <b>mood</b> right?"}
    campaign.save()
    api = APIClient()
    api.force_authenticate(annotator)
    seen = {}
    for _ in range(2):
        body = api.get(f"/api/campaigns/{campaign.pk}/next/").json()
        seen[body["prompt"]["task"]] = body["question"]
        api.post(
            f"/api/assignments/{body['assignment']}/rating/",
            {"score_left": 3, "score_right": 3, "correct_left": True, "correct_right": True, "preference": "tie"},
            format="json",
        )
    assert seen == {
        "relevance": DEFAULT_TASK_QUESTIONS["relevance"],
        "sentiment": "Does it get the <b>mood</b> right?",
    }
    # the page shows it above the answers, escaped (whichever task this annotator's order starts with)
    campaign.task_questions = {"relevance": "Is it on <i>topic</i>?", "sentiment": "Is the <i>mood</i> right?"}
    campaign.save()
    other = User.objects.create_user(username="carol", password="correct-horse-battery", role="annotator")
    client = Client()
    client.force_login(other)
    html = client.get(reverse("annotate-campaign", args=[campaign.pk])).content.decode()
    assert 'id="question"' in html
    assert html.index('id="question"') < html.index('id="answer-left"')
    escaped = {"Is it on &lt;i&gt;topic&lt;/i&gt;?", "Is the &lt;i&gt;mood&lt;/i&gt; right?"}
    assert sum(question in html for question in escaped) == 1 and "<i>" not in html


def test_unknown_task_falls_back_and_defaults_cover_the_four_tasks():
    campaign = Campaign(task_questions={})
    assert campaign.question_for("sentiment") == "Is the sentiment stated correctly?"
    assert set(DEFAULT_TASK_QUESTIONS) == {"sentiment", "features", "recommendation", "relevance"}
    assert campaign.question_for("my-custom-task")  # a generic question, never empty


def test_create_campaign_questions_file(tmp_path):
    job = make_job(prompts=2)
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"relevance": "Is it on topic?"}))
    pk = create_campaign("--job", str(job.pk), "--name", "q", "--questions", str(path))
    assert Campaign.objects.get(pk=pk).question_for("relevance") == "Is it on topic?"

    path.write_text(json.dumps({"relevance": ""}))
    with pytest.raises(CommandError, match=r"--questions: .*q\.json: the question for task 'relevance'"):
        create_campaign("--job", str(job.pk), "--name", "q2", "--questions", str(path))
    path.write_text("[1, 2]")
    with pytest.raises(CommandError, match="expected a JSON object"):
        create_campaign("--job", str(job.pk), "--name", "q3", "--questions", str(path))
    assert Campaign.objects.count() == 1


# --- gold pairs: import ----------------------------------------------------------------------------


def test_create_campaign_gold_marks_pairs(tmp_path):
    job = make_job(prompts=4)
    gold = write_jsonl(
        tmp_path / "gold.jsonl",
        [
            {"prompt_external_id": "p0", "preference": "finetuned", "correct_pretrained": False,
             "correct_finetuned": True},
            "",
            {"prompt_external_id": "p2", "preference": "both_bad"},
        ],
    )
    pk = create_campaign("--job", str(job.pk), "--name", "g", "--gold", gold)
    marked = {
        p.prompt.external_id: (p.gold_preference, p.gold_correct_pretrained, p.gold_correct_finetuned)
        for p in Pair.objects.filter(campaign_id=pk).select_related("prompt")
    }
    assert marked == {
        "p0": ("finetuned", False, True),
        "p1": ("", None, None),
        "p2": ("both_bad", None, None),
        "p3": ("", None, None),
    }


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            ['{"prompt_external_id": "p0", "preference": "finetuned"}', "{oops"],
            r"gold\.jsonl line 2: not valid JSON",
        ),
        (
            [{"prompt_external_id": "p9", "preference": "tie"}],
            r"line 1: field 'prompt_external_id': no pair .* 'p9'",
        ),
        ([{"prompt_external_id": "p0", "preference": "left"}], r"line 1: field 'preference' must be one of"),
        (
            [
                {"prompt_external_id": "p0", "preference": "tie"},
                {"prompt_external_id": "p0", "preference": "tie"},
            ],
            r"line 2: .*already given on line 1",
        ),
        (
            [{"prompt_external_id": "p0", "preference": "tie", "correct_finetuned": "yes"}],
            r"'correct_finetuned'",
        ),
        ([{"prompt_external_id": "p0", "preference": "tie", "role": "x"}], r"unknown field 'role'"),
        ([{"preference": "tie"}], r"line 1: field 'prompt_external_id' is missing"),
    ],
)
def test_bad_gold_rows_are_one_line_errors_and_leave_no_campaign(tmp_path, rows, message):
    job = make_job(prompts=2)
    gold = write_jsonl(tmp_path / "gold.jsonl", rows)
    with pytest.raises(CommandError, match=message) as info:
        create_campaign("--job", str(job.pk), "--name", "g", "--gold", gold)
    assert "\n" not in str(info.value)
    assert not Campaign.objects.exists() and not Pair.objects.exists()


def test_campaign_create_with_gold_is_all_or_nothing():
    job = make_job(prompts=2)
    with pytest.raises(CampaignCreateError):
        campaign_create(
            job=job,
            name="g",
            gold=[
                (1, {"prompt_external_id": "p0", "preference": "tie"}),
                (2, {"prompt_external_id": "nope"}),
            ],
        )
    assert not Campaign.objects.exists()


# --- gold pairs: blind -----------------------------------------------------------------------------


def test_gold_pairs_are_served_like_any_other(annotator):
    campaign = make_campaign(prompts=2, overlap=1)
    Pair.objects.filter(campaign=campaign).update(
        gold_preference="finetuned", gold_correct_pretrained=False, gold_correct_finetuned=True
    )
    api = APIClient()
    api.force_authenticate(annotator)
    client = Client()
    client.force_login(annotator)
    response = api.get(f"/api/campaigns/{campaign.pk}/next/")
    assert set(response.json()) == {"assignment", "prompt", "question", "left", "right", "progress"}
    page = client.get(reverse("annotate-campaign", args=[campaign.pk]))
    assert page.status_code == 200
    for body in (response.content.decode(), page.content.decode()):
        assert "gold" not in body.lower()
        assert "finetuned" not in body and "pretrained" not in body


# --- gold accuracy in the report (hand computation) ---------------------------------------------------


def _rate(pair: Pair, user: User, *, finetuned_side: str, preference: str) -> None:
    assignment = Assignment.objects.create(
        pair=pair, annotator=user, finetuned_side=finetuned_side, completed_at=timezone.now()
    )
    Rating.objects.create(assignment=assignment, score_left=3, score_right=3, preference=preference)


def test_gold_accuracy_matches_a_hand_computation():
    campaign = make_campaign(prompts=4, overlap=3)
    pairs = {p.prompt.external_id: p for p in Pair.objects.filter(campaign=campaign).select_related("prompt")}
    for external_id, verdict in {"p0": "finetuned", "p1": "tie", "p2": "pretrained"}.items():
        Pair.objects.filter(pk=pairs[external_id].pk).update(gold_preference=verdict)
    a, b, c = (
        User.objects.create_user(username=n, password="correct-horse-battery", role="annotator")
        for n in ("ann", "ben", "cat")
    )
    # ann: p0 left=finetuned → finetuned ✓; p1 tie ✓; p2 right=finetuned ✗ (gold pretrained); p3 not gold
    _rate(pairs["p0"], a, finetuned_side="left", preference="left")
    _rate(pairs["p1"], a, finetuned_side="right", preference="tie")
    _rate(pairs["p2"], a, finetuned_side="right", preference="right")
    _rate(pairs["p3"], a, finetuned_side="left", preference="left")
    # ben: p0 left=pretrained ✗; p1 both_bad ✗ (gold tie); p2 right=pretrained ✓
    _rate(pairs["p0"], b, finetuned_side="right", preference="left")
    _rate(pairs["p1"], b, finetuned_side="left", preference="both_bad")
    _rate(pairs["p2"], b, finetuned_side="left", preference="right")
    # cat: only the ordinary pair
    _rate(pairs["p3"], c, finetuned_side="right", preference="right")

    report = campaign_report(campaign)
    rows = {row["annotator"]: row for row in report["per_annotator"]}
    assert report["n_gold_pairs"] == 3
    assert rows[a.pseudonym]["gold_accuracy"] == pytest.approx(2 / 3)
    assert (rows[a.pseudonym]["gold_n"], rows[a.pseudonym]["gold_correct"]) == (3, 2)
    assert rows[b.pseudonym]["gold_accuracy"] == pytest.approx(1 / 3)
    assert rows[b.pseudonym]["gold_n"] == 3
    assert rows[c.pseudonym]["gold_accuracy"] is None
    assert rows[c.pseudonym]["gold_n"] == 0
    assert rows[c.pseudonym]["gold_accuracy_reason"] == NO_GOLD_RATED_REASON
    assert "gold_accuracy_reason" not in rows[a.pseudonym]

    text = report_as_text(report)
    assert "gold 67% (n=3)" in text and "gold 33% (n=3)" in text
    assert f"gold n/a ({NO_GOLD_RATED_REASON})" in text


def test_no_gold_pairs_gives_null_with_reason():
    campaign = make_campaign(prompts=1, overlap=1)
    user = User.objects.create_user(username="ann", password="correct-horse-battery", role="annotator")
    _rate(campaign.pairs.get(), user, finetuned_side="left", preference="left")
    (row,) = campaign_report(campaign)["per_annotator"]
    assert row["gold_accuracy"] is None and row["gold_accuracy_reason"] == GOLD_REASON
