"""Django admin for campaigns and ratings (issue 16): no campaign from a raw job id and raw JSON (the
admin is sent to the job page's one-step form), and a rating's comment and every earlier version are
readable there."""

from __future__ import annotations

import pytest

from annotations.models import Assignment, Campaign, User
from annotations.rating import rating_submit
from tests.support.annotation_data import make_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    admin = User.objects.create_user(username="ada", password="pw-ada-12345", role="admin")
    client.force_login(admin)
    return client


def test_adding_a_campaign_in_django_admin_leads_to_the_job_pages_form(admin_client):
    response = admin_client.get("/admin/annotations/campaign/add/", follow=True)
    assert response.redirect_chain[0][0] == "/jobs/?status=succeeded"
    assert "Open a campaign on this job" in response.content.decode()
    before = Campaign.objects.count()
    admin_client.post("/admin/annotations/campaign/add/", {"name": "x", "job": 1, "overlap": 1})
    assert Campaign.objects.count() == before


def test_a_ratings_comment_and_its_earlier_versions_show_in_django_admin(admin_client):
    campaign = make_campaign(prompts=1, overlap=1, allow_not_sure=True)
    annotator = User.objects.create_user(username="ann", password="pw-ann-12345", role="annotator")
    pair = campaign.pairs.get()
    assignment = Assignment.objects.create(pair=pair, annotator=annotator, finetuned_side="left")
    values = dict(score_left=2, score_right=4, correct_left=None, correct_right=True, preference="right")
    rating_submit(assignment=assignment, annotator=annotator, comment="first thought", **values)
    rating, created = rating_submit(
        assignment=assignment, annotator=annotator, comment="second thought", **{**values, "score_left": 3}
    )
    assert not created and rating.revision == 2
    listing = admin_client.get("/admin/annotations/rating/?q=second").content.decode()
    assert "second thought" in listing
    page = admin_client.get(f"/admin/annotations/rating/{rating.pk}/change/").content.decode()
    assert "first thought" in page and "second thought" in page
