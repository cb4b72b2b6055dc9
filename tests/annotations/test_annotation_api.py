"""The annotator API contract: GET /api/campaigns/{id}/next/ and POST /api/assignments/{id}/rating/."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.models import Assignment, Campaign, Rating
from tests.support.annotation_data import VALID_RATING, make_campaign

pytestmark = pytest.mark.django_db


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def next_url(campaign) -> str:
    return f"/api/campaigns/{campaign.pk}/next/"


def rating_url(assignment_id) -> str:
    return f"/api/assignments/{assignment_id}/rating/"


def test_next_returns_exactly_the_contract_keys(annotator):
    campaign = make_campaign(prompts=4, overlap=2)
    response = api_for(annotator).get(next_url(campaign))
    assert response.status_code == 200
    body = response.json()
    # SPEC's keys plus "question" (the campaign's wording for the prompt's task)
    assert set(body) == {"assignment", "prompt", "question", "left", "right", "progress"}
    assert set(body["prompt"]) == {"task", "text", "context"}
    assert set(body["left"]) == {"text"} and set(body["right"]) == {"text"}
    assert body["progress"] == {"done": 0, "total": 4}
    assignment = Assignment.objects.get(pk=body["assignment"])
    assert assignment.annotator == annotator
    pair = assignment.pair
    assert body["prompt"] == {
        "task": pair.prompt.task,
        "text": pair.prompt.text,
        "context": pair.prompt.context,
    }
    expected = {pair.pretrained_answer.text, pair.finetuned_answer.text}
    assert {body["left"]["text"], body["right"]["text"]} == expected
    shown_left = (
        pair.finetuned_answer.text if assignment.finetuned_side == "left" else pair.pretrained_answer.text
    )
    assert body["left"]["text"] == shown_left


def test_the_same_open_assignment_comes_back_on_reload(annotator):
    campaign = make_campaign(prompts=4)
    client = api_for(annotator)
    first = client.get(next_url(campaign)).json()
    first_lock = Assignment.objects.get(pk=first["assignment"]).locked_until
    second = client.get(next_url(campaign)).json()
    assert second == first
    assert Assignment.objects.filter(annotator=annotator).count() == 1
    assert Assignment.objects.get(pk=first["assignment"]).locked_until >= first_lock


def test_rating_is_created_then_updated_by_the_same_annotator(annotator):
    campaign = make_campaign(prompts=2, allow_not_sure=True)
    client = api_for(annotator)
    assignment_id = client.get(next_url(campaign)).json()["assignment"]

    created = client.post(rating_url(assignment_id), {**VALID_RATING, "duration_ms": 1500}, format="json")
    assert created.status_code == 201
    assert created.json()["score_left"] == 4 and created.json()["assignment"] == assignment_id
    rating = Rating.objects.get(assignment_id=assignment_id)
    assert (rating.score_left, rating.score_right, rating.correct_left, rating.correct_right) == (
        4,
        2,
        True,
        False,
    )
    assert rating.preference == "left" and rating.comment == "clear" and rating.duration_ms == 1500
    assert Assignment.objects.get(pk=assignment_id).completed_at is not None

    updated = client.post(
        rating_url(assignment_id),
        {**VALID_RATING, "score_left": 1, "correct_left": None, "preference": "both_bad", "duration_ms": 500},
        format="json",
    )
    assert updated.status_code == 200
    rating.refresh_from_db()
    assert (rating.score_left, rating.correct_left, rating.preference) == (1, None, "both_bad")
    assert rating.duration_ms == 2000  # time spent on the pair adds up
    assert Rating.objects.count() == 1


def test_progress_counts_this_annotators_ratings(annotator):
    campaign = make_campaign(prompts=3)
    client = api_for(annotator)
    for done in range(3):
        body = client.get(next_url(campaign)).json()
        assert body["progress"] == {"done": done, "total": 3}
        assert client.post(rating_url(body["assignment"]), VALID_RATING, format="json").status_code == 201
    assert client.get(next_url(campaign)).status_code == 204


def test_204_when_nothing_is_left_for_this_annotator(annotator, other_annotator):
    campaign = make_campaign(prompts=1, overlap=1)
    assert api_for(other_annotator).get(next_url(campaign)).status_code == 200  # takes the only slot
    response = api_for(annotator).get(next_url(campaign))
    assert response.status_code == 204
    assert response.content == b""


def test_another_annotators_assignment_is_a_404(annotator, other_annotator):
    campaign = make_campaign(prompts=2)
    assignment_id = api_for(annotator).get(next_url(campaign)).json()["assignment"]
    response = api_for(other_annotator).post(rating_url(assignment_id), VALID_RATING, format="json")
    assert response.status_code == 404
    assert not Rating.objects.exists()
    assert api_for(annotator).post(rating_url(987654321), VALID_RATING, format="json").status_code == 404


@pytest.mark.parametrize(
    "change, field",
    [
        ({"score_left": 0}, "score_left"),
        ({"score_right": 6}, "score_right"),
        ({"score_left": "five"}, "score_left"),
        ({"correct_left": "maybe"}, "correct_left"),
        ({"preference": "pretty"}, "preference"),
        ({"preference": None}, "preference"),
    ],
)
def test_invalid_values_are_400_with_field_errors(annotator, change, field):
    campaign = make_campaign(prompts=1)
    client = api_for(annotator)
    assignment_id = client.get(next_url(campaign)).json()["assignment"]
    response = client.post(rating_url(assignment_id), {**VALID_RATING, **change}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Rating.objects.exists()


def test_missing_scores_are_named(annotator):
    campaign = make_campaign(prompts=1)
    client = api_for(annotator)
    assignment_id = client.get(next_url(campaign)).json()["assignment"]
    response = client.post(rating_url(assignment_id), {"preference": "tie"}, format="json")
    assert response.status_code == 400
    # verdicts left out mean "not sure", which this campaign does not allow
    assert set(response.json()) == {"score_left", "score_right", "correct_left", "correct_right"}


def test_correct_may_be_null_and_comment_may_be_left_out(annotator):
    campaign = make_campaign(prompts=1, allow_not_sure=True)
    client = api_for(annotator)
    assignment_id = client.get(next_url(campaign)).json()["assignment"]
    body = {
        "score_left": 3,
        "score_right": 3,
        "correct_left": None,
        "correct_right": None,
        "preference": "tie",
    }
    assert client.post(rating_url(assignment_id), body, format="json").status_code == 201
    rating = Rating.objects.get()
    assert rating.correct_left is None and rating.comment == ""


def test_token_auth_works_without_csrf(annotator):
    campaign = make_campaign(prompts=1)
    token = Token.objects.create(user=annotator)
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assignment_id = client.get(next_url(campaign)).json()["assignment"]
    assert client.post(rating_url(assignment_id), VALID_RATING, format="json").status_code == 201


def test_session_auth_enforces_csrf(annotator):
    campaign = make_campaign(prompts=1)
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="alice", password="correct-horse-battery")
    assignment_id = client.get(next_url(campaign)).json()["assignment"]
    response = client.post(rating_url(assignment_id), VALID_RATING, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_unauthenticated_requests_are_refused(db):
    campaign = make_campaign(prompts=1)
    client = APIClient()
    assert client.get(next_url(campaign)).status_code in (401, 403)
    assert client.post(rating_url(1), VALID_RATING, format="json").status_code in (401, 403)
    assert not Assignment.objects.exists()


def test_researchers_and_admins_cannot_take_pairs(researcher, admin_user):
    campaign = make_campaign(prompts=1)
    for user in (researcher, admin_user):
        response = api_for(user).get(next_url(campaign))
        assert response.status_code == 403
        assert response.json() == {"detail": "Only annotators can rate pairs."}
    assert not Assignment.objects.exists()


def test_unknown_campaign_is_a_404(annotator):
    assert api_for(annotator).get("/api/campaigns/424242/next/").status_code == 404


def test_closed_campaign_refuses_new_pairs_and_rating_changes(annotator):
    campaign = make_campaign(prompts=2)
    client = api_for(annotator)
    assignment_id = client.get(next_url(campaign)).json()["assignment"]
    assert client.post(rating_url(assignment_id), VALID_RATING, format="json").status_code == 201
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CLOSED)

    response = client.get(next_url(campaign))
    assert response.status_code == 403
    assert response.json()["detail"] == "This campaign is closed; ratings can no longer be added or changed."
    response = client.post(rating_url(assignment_id), {**VALID_RATING, "score_left": 1}, format="json")
    assert response.status_code == 403
    assert Rating.objects.get().score_left == 4


def test_skip_gives_a_different_pair(annotator):
    campaign = make_campaign(prompts=3)
    client = api_for(annotator)
    first = client.get(next_url(campaign)).json()["assignment"]
    assert client.post(f"/api/assignments/{first}/skip/").status_code == 204
    second = client.get(next_url(campaign)).json()["assignment"]
    assert second != first


def test_schema_renders_the_annotation_endpoints(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "/api/campaigns/{campaign_id}/next/" in text
    assert "/api/assignments/{assignment_id}/rating/" in text
