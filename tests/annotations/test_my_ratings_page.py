"""The "My ratings" page: what each row shows (in the sides this annotator saw), skipped pairs with
"Rate now", pagination, and that nobody sees another annotator's ratings or a model's role."""

from __future__ import annotations

import re

import pytest

from annotations.assignment import assignment_next, assignment_skip
from annotations.models import Assignment, Campaign, Rating, Side
from annotations.rating import rating_submit
from generation.models import Answer
from tests.support.annotation_data import SECRET_STRINGS, make_campaign

pytestmark = pytest.mark.django_db

ROLE_WORDS = ["pretrained", "finetuned", "fine-tuned", "pre-trained", "adapter", "gpu-worker"]


def rate(annotator, campaign, **fields) -> Assignment:
    """The annotator's next pair, rated with `fields` over these defaults."""
    assignment = assignment_next(campaign=campaign, annotator=annotator)
    values = {
        "score_left": 4,
        "score_right": 2,
        "correct_left": True,
        "correct_right": False,
        "preference": "left",
        "comment": "",
    }
    values.update(fields)
    rating_submit(assignment=assignment, annotator=annotator, **values)
    return assignment


def rated_rows(html: str) -> list[str]:
    """The text of each row of the rated-pairs table, tags stripped, spaces collapsed."""
    section = html.split('id="rated"', 1)[1]
    rows = re.findall(r"<tr>(.*?)</tr>", section.split("<tbody>", 1)[1].split("</tbody>", 1)[0], re.DOTALL)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]


def page(client, campaign, query: str = "") -> str:
    response = client.get(f"/annotate/campaigns/{campaign.pk}/ratings/{query}")
    assert response.status_code == 200
    return response.content.decode()


def test_each_row_shows_product_snippet_scores_verdicts_preference_and_comment(client, annotator):
    campaign = make_campaign(prompts=2, overlap=1)
    first = assignment_next(campaign=campaign, annotator=annotator)
    prompt = first.pair.prompt
    prompt.context = "Product: Auralite Pro Wireless Earbuds\nReview: People complain about the call quality."
    prompt.save()
    # the left answer is the fine-tuned one here: the row still says what was given to the LEFT one
    Assignment.objects.filter(pk=first.pk).update(finetuned_side=Side.LEFT)
    rating_submit(
        assignment=first,
        annotator=annotator,
        score_left=5,
        score_right=2,
        correct_left=True,
        correct_right=False,
        preference="right",
        comment="Left one rambles <b>a lot</b>",
    )
    second = rate(annotator, campaign, score_left=1, score_right=3, correct_left=None, preference="both_bad")
    Assignment.objects.filter(pk=second.pk).update(finetuned_side=Side.RIGHT)
    client.force_login(annotator)

    html = page(client, campaign)
    rows = rated_rows(html)
    assert len(rows) == 2
    latest, earlier = rows  # latest rated first
    assert "Auralite Pro Wireless Earbuds" in earlier
    assert "People complain about the call quality." in earlier
    assert prompt.text not in html  # the instruction, much the same for every prompt, is not the label
    assert "5/5 · Correct" in earlier and "2/5 · Incorrect" in earlier
    assert "Right is better" in earlier
    assert "Left one rambles &lt;b&gt;a lot&lt;/b&gt;" in html  # shown as text, never as markup
    assert "1/5 · Not sure" in latest and "3/5 · Incorrect" in latest and "Both bad" in latest
    assert f'href="/annotate/assignments/{first.pk}/"' in html
    assert f'href="/annotate/assignments/{second.pk}/"' in html


def test_an_edited_rating_shows_its_new_values_marked_edited(client, annotator):
    campaign = make_campaign(prompts=1, overlap=1)
    assignment = rate(annotator, campaign, score_left=2)
    rating_submit(
        assignment=assignment,
        annotator=annotator,
        score_left=5,
        score_right=5,
        correct_left=False,
        correct_right=True,
        preference="tie",
        comment="changed my mind",
    )
    client.force_login(annotator)
    (row,) = rated_rows(page(client, campaign))
    assert "5/5 · Incorrect" in row and "5/5 · Correct" in row and "Tie" in row
    assert "changed my mind" in row and "(edited)" in row


def test_skipped_pairs_are_listed_with_rate_now_that_opens_them(client, annotator):
    campaign = make_campaign(prompts=3, overlap=2)
    skipped = assignment_next(campaign=campaign, annotator=annotator)
    assignment_skip(assignment=skipped, annotator=annotator)
    client.force_login(annotator)

    html = page(client, campaign)
    link = f'href="/annotate/assignments/{skipped.pk}/"'
    assert "Skipped pairs" in html and link in html
    assert re.search(rf'<a class="rate-now" {link}>Rate now', html)
    assert "You have not rated anything in this campaign yet." in html

    # "Rate now" opens that very pair, though the campaign page would serve the others first
    opened = client.get(f"/annotate/assignments/{skipped.pk}/")
    assert opened.status_code == 200
    assert skipped.pair.prompt.text in opened.content.decode()
    assert not Rating.objects.exists()  # opening it changes nothing
    response = client.post(
        f"/annotate/assignments/{skipped.pk}/",
        {
            "score_left": "3",
            "score_right": "4",
            "correct_left": "true",
            "correct_right": "true",
            "preference": "right",
            "comment": "rated after all",
        },
    )
    assert response.status_code == 302
    assert Rating.objects.get().assignment_id == skipped.pk

    html = page(client, campaign)
    assert "Skipped pairs" not in html
    assert "rated after all" in html


def test_a_skipped_pair_others_have_filled_has_no_rate_now(client, annotator, other_annotator):
    campaign = make_campaign(prompts=1, overlap=1)
    skipped = assignment_next(campaign=campaign, annotator=annotator)
    assignment_skip(assignment=skipped, annotator=annotator)
    rate(other_annotator, campaign)
    client.force_login(annotator)

    html = page(client, campaign)
    assert "Skipped pairs" in html and "Rated by enough others" in html
    assert 'class="rate-now"' not in html


def test_another_annotators_ratings_and_skips_are_never_listed(client, annotator, other_annotator):
    campaign = make_campaign(prompts=4, overlap=2)
    mine = rate(annotator, campaign, comment="my own words")
    theirs = rate(other_annotator, campaign, comment="their private words")
    their_skip = assignment_next(campaign=campaign, annotator=other_annotator)
    assignment_skip(assignment=their_skip, annotator=other_annotator)
    client.force_login(annotator)

    html = page(client, campaign)
    assert len(rated_rows(html)) == 1
    assert "my own words" in html and f"/annotate/assignments/{mine.pk}/" in html
    assert "their private words" not in html
    assert f"/annotate/assignments/{theirs.pk}/" not in html
    assert f"/annotate/assignments/{their_skip.pk}/" not in html
    assert "Skipped pairs" not in html
    # and their rating page stays theirs
    assert client.get(f"/annotate/assignments/{theirs.pk}/").status_code == 404


def test_the_page_names_no_model_role_or_answer(client, annotator):
    campaign = make_campaign(prompts=3, overlap=1)
    rate(annotator, campaign, comment="fine")
    skipped = assignment_next(campaign=campaign, annotator=annotator)
    assignment_skip(assignment=skipped, annotator=annotator)
    client.force_login(annotator)
    html = page(client, campaign).lower()
    for word in [*ROLE_WORDS, *(s.lower() for s in SECRET_STRINGS.values())]:
        assert word not in html, word
    for answer_id in Answer.objects.values_list("id", flat=True):
        assert str(answer_id) not in html


def test_continue_rating_is_the_first_link_on_the_page(client, annotator):
    campaign = make_campaign(prompts=2, overlap=1)
    rate(annotator, campaign)
    client.force_login(annotator)
    body = page(client, campaign).split("<body>", 1)[1]
    first_link = re.search(r"<a [^>]*>([^<]*)", body)
    assert first_link and first_link.group(1) == "Continue rating"
    assert f'href="/annotate/campaigns/{campaign.pk}/"' in first_link.group(0)


def test_long_lists_come_a_page_at_a_time(client, annotator):
    campaign = make_campaign(prompts=30, overlap=1)
    for i in range(30):
        rate(annotator, campaign, comment=f"note-{i:02d}")
    client.force_login(annotator)

    first = page(client, campaign)
    assert len(rated_rows(first)) == 25
    assert "Page 1 of 2" in first and 'href="?page=2"' in first
    assert "note-29" in first and "note-04" not in first  # latest first
    second = page(client, campaign, "?page=2")
    assert len(rated_rows(second)) == 5 and "note-00" in second and "note-29" not in second
    # a page that is not one shows the nearest one, never an error
    assert len(rated_rows(page(client, campaign, "?page=abc"))) == 25
    assert "note-00" in page(client, campaign, "?page=999")


def test_closed_campaign_lists_ratings_read_only(client, annotator):
    campaign = make_campaign(prompts=2, overlap=1)
    rated = rate(annotator, campaign, comment="kept")
    skipped = assignment_next(campaign=campaign, annotator=annotator)
    assignment_skip(assignment=skipped, annotator=annotator)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CLOSED)
    client.force_login(annotator)

    html = page(client, campaign)
    assert "read-only" in html and "kept" in html
    assert "Continue rating" not in html and 'class="rate-now"' not in html
    assert f'href="/annotate/assignments/{rated.pk}/"' not in html


def test_other_roles_get_the_styled_403(client, researcher):
    campaign = make_campaign(prompts=1)
    client.force_login(researcher)
    response = client.get(f"/annotate/campaigns/{campaign.pk}/ratings/")
    assert response.status_code == 403
    assert b"Only annotators can rate pairs." in response.content
    assert b'id="error-403"' in response.content
