"""Server-rendered rating pages, exercised without JavaScript (plain forms, as a no-JS browser would)."""

from __future__ import annotations

import re

import pytest

from annotations.models import Assignment, Campaign, Rating
from tests.support.annotation_data import make_campaign

pytestmark = pytest.mark.django_db

FORM = {
    "score_left": "5",
    "score_right": "2",
    "correct_left": "true",
    "correct_right": "false",
    "preference": "left",
    "comment": "fine",
    "duration_ms": "4200",
}


@pytest.fixture
def alice(client, annotator):
    client.force_login(annotator)
    return client


def open_pair(client, campaign) -> Assignment:
    response = client.get(f"/annotate/campaigns/{campaign.pk}/")
    assert response.status_code == 200
    return Assignment.objects.get(pk=response.context["assignment"].pk)


def test_home_redirects_annotators_to_their_campaigns(alice):
    make_campaign(prompts=2)
    response = alice.get("/", follow=True)
    assert response.redirect_chain[-1][0] == "/annotate/"
    assert b"Spring review campaign" in response.content
    assert b"0 / 2" in response.content
    # the campaign's name is itself the way in, not only the Start button beside it
    campaign = Campaign.objects.get()
    assert f'<a href="/annotate/campaigns/{campaign.pk}/">Spring review campaign</a>'.encode() in response.content


def test_anonymous_visitors_are_sent_to_log_in(client):
    campaign = make_campaign(prompts=1)
    response = client.get(f"/annotate/campaigns/{campaign.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_other_roles_cannot_open_rating_pages(client, researcher):
    campaign = make_campaign(prompts=1)
    client.force_login(researcher)
    assert client.get("/annotate/").status_code == 403
    assert client.get(f"/annotate/campaigns/{campaign.pk}/").status_code == 403
    assert not Assignment.objects.exists()


def test_rating_page_shows_prompt_answers_keys_and_progress(alice):
    campaign = make_campaign(
        prompts=2, guidelines="# Rules\n\nBe **fair** and read `context`.\n\n- one\n- two"
    )
    assignment = open_pair(alice, campaign)
    html = alice.get(f"/annotate/campaigns/{campaign.pk}/").content.decode()
    assert assignment.pair.prompt.text in html and assignment.pair.prompt.context in html
    assert assignment.pair.pretrained_answer.text in html and assignment.pair.finetuned_answer.text in html
    assert '<progress id="progress" value="0" max="2">' in html
    for label in ("Left answer", "Right answer", "Tie", "Both bad", "Skip", "Keyboard shortcuts"):
        assert label in html
    assert 'data-key="1"' in html and 'data-key="q"' in html and 'data-key="z"' in html
    assert "data-arrow" not in html  # no arrow-key shortcuts
    assert "<h3>Rules</h3>" in html and "<strong>fair</strong>" in html and "<code>context</code>" in html
    assert "<li>one</li>" in html
    # Content-Security-Policy forbids inline code: every script has a src, no style attributes
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    assert "style=" not in html
    assert "script-src 'self'" in alice.get(f"/annotate/campaigns/{campaign.pk}/")["Content-Security-Policy"]


def test_guidelines_markup_is_escaped(alice):
    campaign = make_campaign(prompts=1, guidelines="**<b onmouseover=x>hi</b>** <script>alert(3)</script>")
    html = alice.get(f"/annotate/campaigns/{campaign.pk}/").content.decode()
    assert "<b onmouseover" not in html and "<script>alert(3)" not in html
    assert "<strong>&lt;b onmouseover=x&gt;hi&lt;/b&gt;</strong>" in html


def test_submitting_the_form_saves_the_rating_and_shows_the_next_pair(alice, annotator):
    campaign = make_campaign(prompts=2)
    assignment = open_pair(alice, campaign)
    response = alice.post(f"/annotate/assignments/{assignment.pk}/", FORM)
    assert response.status_code == 302 and response["Location"] == f"/annotate/campaigns/{campaign.pk}/"
    rating = Rating.objects.get(assignment=assignment)
    assert (rating.score_left, rating.score_right, rating.correct_left, rating.correct_right) == (
        5,
        2,
        True,
        False,
    )
    assert (rating.preference, rating.comment, rating.duration_ms) == ("left", "fine", 4200)
    page = alice.get(f"/annotate/campaigns/{campaign.pk}/")
    assert page.context["assignment"].pk != assignment.pk
    assert b'value="1" max="2"' in page.content
    assert b"Rating saved." in page.content


def test_invalid_form_is_shown_again_with_errors(alice):
    campaign = make_campaign(prompts=1)
    assignment = open_pair(alice, campaign)
    response = alice.post(
        f"/annotate/assignments/{assignment.pk}/", {**FORM, "score_right": "", "preference": "x"}
    )
    assert response.status_code == 400
    assert b"Give the right answer a score from 1 to 5." in response.content
    assert b"Select a valid choice" in response.content
    assert b'id="score_left_5" value="5" data-key="5" checked' in response.content  # keeps what was chosen
    assert not Rating.objects.exists()


def test_earlier_ratings_can_be_edited_while_open(alice):
    campaign = make_campaign(prompts=2, allow_not_sure=True)
    assignment = open_pair(alice, campaign)
    alice.post(f"/annotate/assignments/{assignment.pk}/", FORM)

    page = alice.get(f"/annotate/campaigns/{campaign.pk}/")
    assert f'id="previous-link" href="/annotate/assignments/{assignment.pk}/"'.encode() in page.content
    mine = alice.get(f"/annotate/campaigns/{campaign.pk}/ratings/")
    assert f'href="/annotate/assignments/{assignment.pk}/"'.encode() in mine.content

    edit = alice.get(f"/annotate/assignments/{assignment.pk}/")
    assert edit.status_code == 200
    assert b"You are changing a rating you gave earlier." in edit.content
    assert b'id="score_left_5" value="5" data-key="5" checked' in edit.content
    assert b'id="correct_left_1" value="true" data-key="a" checked' in edit.content

    alice.post(f"/annotate/assignments/{assignment.pk}/", {**FORM, "score_left": "1", "correct_left": "unsure"})
    rating = Rating.objects.get(assignment=assignment)
    assert rating.score_left == 1 and rating.correct_left is None
    assert Rating.objects.count() == 1


def test_skip_moves_on_without_rating(alice):
    campaign = make_campaign(prompts=3)
    first = open_pair(alice, campaign)
    response = alice.post(f"/annotate/assignments/{first.pk}/skip/", FORM)
    assert response.status_code == 302
    assert open_pair(alice, campaign).pk != first.pk
    assert not Rating.objects.exists()


def test_all_done_page_when_nothing_is_left(alice):
    campaign = make_campaign(prompts=1)
    assignment = open_pair(alice, campaign)
    alice.post(f"/annotate/assignments/{assignment.pk}/", FORM)
    page = alice.get(f"/annotate/campaigns/{campaign.pk}/")
    assert b"Nothing is left for you to rate" in page.content and b"1 / 1 rated" in page.content


def test_closed_campaign_is_read_only(alice):
    campaign = make_campaign(prompts=2)
    assignment = open_pair(alice, campaign)
    alice.post(f"/annotate/assignments/{assignment.pk}/", FORM)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CLOSED)

    assert b"This campaign is closed" in alice.get(f"/annotate/campaigns/{campaign.pk}/").content
    assert b"This campaign is closed" in alice.get(f"/annotate/assignments/{assignment.pk}/").content
    alice.post(f"/annotate/assignments/{assignment.pk}/", {**FORM, "score_left": "1"})
    assert Rating.objects.get().score_left == 5
    mine = alice.get(f"/annotate/campaigns/{campaign.pk}/ratings/")
    assert b"read-only" in mine.content and b">Edit<" not in mine.content
    assert b"Spring review campaign" in alice.get("/annotate/").content  # listed under closed campaigns


def test_another_annotators_assignment_is_a_404_page(client, annotator, other_annotator):
    campaign = make_campaign(prompts=1)
    client.force_login(annotator)
    assignment = open_pair(client, campaign)
    client.force_login(other_annotator)
    assert client.get(f"/annotate/assignments/{assignment.pk}/").status_code == 404
    assert client.post(f"/annotate/assignments/{assignment.pk}/", FORM).status_code == 404
    assert client.post(f"/annotate/assignments/{assignment.pk}/skip/").status_code == 404
