"""Blinding: nothing an annotator can reach names a model, an adapter, a role, the job or an answer id."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotations.assignment import assignment_next
from annotations.models import Assignment, Campaign
from generation.models import Answer
from tests.support.annotation_data import HOSTILE, SECRET_STRINGS, VALID_RATING, make_campaign

pytestmark = pytest.mark.django_db

ROLE_WORDS = [
    "pretrained",
    "finetuned",
    "fine-tuned",
    "pre-trained",
    "fine tuned",
    "pre trained",
    "finetuned_side",
    "gpu-worker",
    "adapter",
]


def assert_blind(label: str, response, answer_ids: list[int]) -> None:
    body = response.content.decode("utf-8", "replace")
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    for where, text in (("body", body), ("headers", headers)):
        lowered = text.lower()
        for secret in SECRET_STRINGS.values():
            assert secret.lower() not in lowered, f"{label}: {secret!r} in {where}"
        for word in ROLE_WORDS:
            assert word not in lowered, f"{label}: {word!r} in {where}"
        for answer_id in answer_ids:
            assert str(answer_id) not in text, f"{label}: answer id {answer_id} in {where}"


def test_every_annotator_facing_page_and_response_is_blind(client, annotator):
    campaign = make_campaign(
        prompts=3,
        overlap=2,
        hostile_prompt=0,
        guidelines="Rate **helpfulness**. Do not guess which system wrote what.",
    )
    answer_ids = list(Answer.objects.values_list("id", flat=True))
    assert min(answer_ids) > 7_000_000
    client.force_login(annotator)
    api = APIClient()
    api.force_authenticate(annotator)
    seen = []

    def check(label, response, status=200):
        assert response.status_code == status, label
        assert_blind(label, response, answer_ids)
        seen.append(label)
        return response

    check("login page", client.get("/login/"))
    check("home", client.get("/"), 302)
    check("annotate home", client.get("/annotate/"))
    check("rating page", client.get(f"/annotate/campaigns/{campaign.pk}/"))
    first = Assignment.objects.get(annotator=annotator)
    check(
        "rating page, invalid post",
        client.post(f"/annotate/assignments/{first.pk}/", {"score_left": "9"}),
        400,
    )
    check(
        "rating page, valid post",
        client.post(
            f"/annotate/assignments/{first.pk}/",
            {
                "score_left": "3",
                "score_right": "4",
                "correct_left": "false",
                "correct_right": "true",
                "preference": "tie",
                "comment": "",
                "duration_ms": "900",
            },
        ),
        302,
    )
    check("next pair page", client.get(f"/annotate/campaigns/{campaign.pk}/"))
    second = Assignment.objects.get(annotator=annotator, completed_at__isnull=True)
    check("skip", client.post(f"/annotate/assignments/{second.pk}/skip/"), 302)
    check("edit page", client.get(f"/annotate/assignments/{first.pk}/"))
    check("my ratings", client.get(f"/annotate/campaigns/{campaign.pk}/ratings/"))
    check("unknown assignment page", client.get("/annotate/assignments/99999999/"), 404)

    body = check("api next", api.get(f"/api/campaigns/{campaign.pk}/next/")).json()
    rating_url = f"/api/assignments/{body['assignment']}/rating/"
    check("api rating 400", api.post(rating_url, {**VALID_RATING, "score_left": 0}, format="json"), 400)
    check("api rating 201", api.post(rating_url, VALID_RATING, format="json"), 201)
    check("api rating 200", api.post(rating_url, VALID_RATING, format="json"), 200)
    check("api rating 404", api.post("/api/assignments/99999999/rating/", VALID_RATING, format="json"), 404)
    check("api unknown campaign", api.get("/api/campaigns/99999999/next/"), 404)
    while api.get(f"/api/campaigns/{campaign.pk}/next/").status_code == 200:
        pending = Assignment.objects.get(
            annotator=annotator, completed_at__isnull=True, skipped_at__isnull=True
        )
        api.post(f"/api/assignments/{pending.pk}/rating/", VALID_RATING, format="json")
    check("api 204", api.get(f"/api/campaigns/{campaign.pk}/next/"), 204)
    check("all done page", client.get(f"/annotate/campaigns/{campaign.pk}/"))

    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CLOSED)
    check("closed page", client.get(f"/annotate/campaigns/{campaign.pk}/"))
    check("closed api", api.get(f"/api/campaigns/{campaign.pk}/next/"), 403)
    check("closed home", client.get("/annotate/"))

    for asset in ("annotate/annotate.js", "annotate/annotate.css", "css/site.css"):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200, asset
        text = b"".join(response.streaming_content).decode().lower()
        assert not [word for word in ROLE_WORDS + list(SECRET_STRINGS.values()) if word.lower() in text], (
            asset
        )
        seen.append(asset)
    assert len(seen) >= 20


def test_hostile_answer_text_is_escaped_in_html(client, annotator):
    campaign = make_campaign(prompts=1, hostile_prompt=0)
    client.force_login(annotator)
    html = client.get(f"/annotate/campaigns/{campaign.pk}/").content.decode()
    assert "<img src=x onerror=alert(1)>" not in html
    assert "<script>alert(2)</script>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    # and the API returns it verbatim (JSON is data; a client must not render it as HTML)
    api = APIClient()
    api.force_authenticate(annotator)
    body = api.get(f"/api/campaigns/{campaign.pk}/next/").json()
    assert HOSTILE in (body["left"]["text"], body["right"]["text"])


def test_the_next_pair_response_differs_by_side_only_in_the_order_of_the_texts(annotator, other_annotator):
    # Sides are drawn per assignment; whatever side was drawn, the response carries nothing else that
    # depends on it (no extra field, header or wording), so the side cannot be read off the response.
    campaign = make_campaign(prompts=1, overlap=2)
    bodies, headers = {}, {}
    for rater, side in ((annotator, "left"), (other_annotator, "right")):
        api = APIClient()
        api.force_authenticate(rater)
        assignment = assignment_next(campaign=campaign, annotator=rater)
        Assignment.objects.filter(pk=assignment.pk).update(finetuned_side=side)
        response = api.get(f"/api/campaigns/{campaign.pk}/next/")
        assert response.status_code == 200
        bodies[side] = response.json()
        headers[side] = {k: v for k, v in response.items() if k.lower() not in ("date", "content-length")}
    left_first, right_first = bodies["left"], bodies["right"]
    assert (left_first["left"], left_first["right"]) == (right_first["right"], right_first["left"])
    assert left_first["left"] != left_first["right"]
    for body in (left_first, right_first):
        del body["assignment"], body["left"], body["right"]
    assert left_first == right_first
    assert headers["left"] == headers["right"]
