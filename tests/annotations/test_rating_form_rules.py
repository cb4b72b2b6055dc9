"""The rating rules an annotator meets, through the form and the API: correctness verdicts start empty and
are required, "not sure" only where the campaign allows it; gold-pair feedback in training rounds, told
in the sides the annotator saw; guidelines Markdown with safe links; shortcuts advertised only where
they work; create_campaign's switches for both options."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from annotations.display import guidelines_html
from annotations.models import Assignment, Campaign, Pair, Rating
from tests.annotations.test_blinding import ROLE_WORDS
from tests.support.annotation_data import VALID_RATING, make_campaign, make_job

pytestmark = pytest.mark.django_db

FORM = {
    "score_left": "5",
    "score_right": "2",
    "correct_left": "true",
    "correct_right": "false",
    "preference": "left",
    "comment": "",
    "duration_ms": "4200",
}
RIGHT_MISSING = "Say whether the right answer is correct or incorrect."


@pytest.fixture
def alice(client, annotator):
    client.force_login(annotator)
    return client


def open_pair(client, campaign) -> tuple[Assignment, str]:
    response = client.get(f"/annotate/campaigns/{campaign.pk}/")
    assert response.status_code == 200
    return Assignment.objects.get(pk=response.context["assignment"].pk), response.content.decode()


def verdict_inputs(html: str) -> list[str]:
    return re.findall(r'<input type="radio" name="correct_(?:left|right)"[^>]*>', html)


# --- verdicts: the form ------------------------------------------------------------------------------


def test_verdicts_start_empty_and_offer_not_sure_only_where_allowed(alice):
    strict = make_campaign(prompts=1)
    _, html = open_pair(alice, strict)
    inputs = verdict_inputs(html)
    assert len(inputs) == 4  # correct / incorrect for each answer
    assert not any(" checked" in tag for tag in inputs)
    assert "Not sure" not in html

    lenient = make_campaign(prompts=1, allow_not_sure=True, dataset_name="other")
    _, html = open_pair(alice, lenient)
    inputs = verdict_inputs(html)
    assert len(inputs) == 6 and not any(" checked" in tag for tag in inputs)
    assert html.count(">Not sure <kbd>") == 2


def test_a_forgotten_verdict_is_refused_with_a_message_next_to_it(alice):
    campaign = make_campaign(prompts=1)
    assignment, _ = open_pair(alice, campaign)
    form = {k: v for k, v in FORM.items() if k != "correct_right"}
    response = alice.post(f"/annotate/assignments/{assignment.pk}/", form)
    assert response.status_code == 400
    html = response.content.decode()
    # the message sits in the right answer's card, after its verdict buttons
    right = html[html.index('id="answer-right"') : html.index('id="action-bar"')]
    assert f'<p class="error" role="alert">{RIGHT_MISSING}</p>' in right
    assert "Say whether" not in html[html.index('id="answer-left"') : html.index('id="answer-right"')]
    assert 'id="form-errors"' in html
    assert 'name="score_left" id="score_left_5" value="5" data-key="5" checked' in html  # kept
    assert 'name="correct_left" id="correct_left_1" value="true" data-key="a" checked' in html
    assert not Rating.objects.exists()
    assert Assignment.objects.get(pk=assignment.pk).completed_at is None


def test_not_sure_in_the_form_only_where_the_campaign_allows_it(alice):
    strict = make_campaign(prompts=1)
    assignment, _ = open_pair(alice, strict)
    for value in ("unsure", "", "maybe"):
        response = alice.post(f"/annotate/assignments/{assignment.pk}/", {**FORM, "correct_right": value})
        assert response.status_code == 400, value
        assert RIGHT_MISSING in response.content.decode()
    assert not Rating.objects.exists()

    lenient = make_campaign(prompts=1, allow_not_sure=True, dataset_name="other")
    assignment, _ = open_pair(alice, lenient)
    # even where allowed, leaving it out is not "not sure": it must be chosen
    response = alice.post(f"/annotate/assignments/{assignment.pk}/", {**FORM, "correct_right": ""})
    assert response.status_code == 400
    assert (
        "Say whether the right answer is correct, incorrect, or that you are not sure."
        in response.content.decode()
    )
    response = alice.post(f"/annotate/assignments/{assignment.pk}/", {**FORM, "correct_right": "unsure"})
    assert response.status_code == 302
    rating = Rating.objects.get(assignment=assignment)
    assert (rating.correct_left, rating.correct_right) == (True, None)
    # the edit page shows "Not sure" chosen again
    html = alice.get(f"/annotate/assignments/{assignment.pk}/").content.decode()
    assert 'name="correct_right" id="correct_right_3" value="unsure" data-key="l" checked' in html


# --- verdicts: the API -------------------------------------------------------------------------------


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_api_refuses_a_null_or_missing_verdict_unless_the_campaign_allows_not_sure(annotator):
    api = _api(annotator)
    strict = make_campaign(prompts=1)
    assignment = api.get(f"/api/campaigns/{strict.pk}/next/").json()["assignment"]
    url = f"/api/assignments/{assignment}/rating/"
    refused = api.post(url, {**VALID_RATING, "correct_left": None}, format="json")
    assert refused.status_code == 400
    assert set(refused.json()) == {"correct_left"}
    assert "needs a verdict of correct (true) or incorrect (false)" in refused.json()["correct_left"][0]
    left_out = {k: v for k, v in VALID_RATING.items() if k != "correct_right"}
    assert set(api.post(url, left_out, format="json").json()) == {"correct_right"}
    assert not Rating.objects.exists()
    assert api.post(url, VALID_RATING, format="json").status_code == 201

    lenient = make_campaign(prompts=1, allow_not_sure=True, dataset_name="other")
    assignment = api.get(f"/api/campaigns/{lenient.pk}/next/").json()["assignment"]
    body = {**VALID_RATING, "correct_left": None, "correct_right": None}
    created = api.post(f"/api/assignments/{assignment}/rating/", body, format="json")
    assert created.status_code == 201
    assert (created.json()["correct_left"], created.json()["correct_right"]) == (None, None)


def test_the_api_schema_says_when_null_is_accepted(admin_user):
    schema = _api(admin_user).get("/api/schema/?format=json").json()
    field = schema["components"]["schemas"]["RatingInput"]["properties"]["correct_left"]
    assert field.get("nullable") is True and "allows" in field["description"]


# --- gold feedback -----------------------------------------------------------------------------------


def _gold_everywhere(campaign) -> None:
    Pair.objects.filter(campaign=campaign).update(
        gold_preference="finetuned", gold_correct_pretrained=False, gold_correct_finetuned=True
    )


@pytest.mark.parametrize("finetuned_side", ["left", "right"])
def test_gold_feedback_after_a_gold_pair_in_the_sides_the_annotator_saw(alice, finetuned_side):
    campaign = make_campaign(prompts=2, gold_feedback=True)
    _gold_everywhere(campaign)
    assignment, _ = open_pair(alice, campaign)
    Assignment.objects.filter(pk=assignment.pk).update(finetuned_side=finetuned_side)
    other = "right" if finetuned_side == "left" else "left"

    response = alice.post(f"/annotate/assignments/{assignment.pk}/", FORM, follow=True)
    html = response.content.decode()
    notice = re.search(r'<li class="[^"]*gold-feedback[^"]*">(.*?)</li>', html, re.DOTALL)
    assert notice is not None
    text = notice.group(1)
    assert (
        f"Training pair: the expected verdict was that the answer on the {finetuned_side} was better." in text
    )
    expected = {finetuned_side: "correct", other: "incorrect"}
    assert f"Expected: the left answer {expected['left']} and the right answer {expected['right']}." in text
    assert "You chose: left is better." in text
    lowered = html.lower()
    assert not [word for word in ROLE_WORDS if word in lowered]
    # shown once: the next page load has no notice
    assert "gold-feedback" not in alice.get(f"/annotate/campaigns/{campaign.pk}/").content.decode()


def test_no_gold_feedback_without_the_option_or_on_an_ordinary_pair(alice):
    quiet = make_campaign(prompts=1)
    _gold_everywhere(quiet)
    assignment, _ = open_pair(alice, quiet)
    html = alice.post(f"/annotate/assignments/{assignment.pk}/", FORM, follow=True).content.decode()
    assert "Rating saved." in html and "Training pair" not in html

    training = make_campaign(prompts=1, gold_feedback=True, dataset_name="other")  # no gold pair in it
    assignment, _ = open_pair(alice, training)
    html = alice.post(f"/annotate/assignments/{assignment.pk}/", FORM, follow=True).content.decode()
    assert "Rating saved." in html and "Training pair" not in html


def test_gold_feedback_for_a_tie_with_unknown_correctness(alice):
    campaign = make_campaign(prompts=1, gold_feedback=True)
    Pair.objects.filter(campaign=campaign).update(gold_preference="tie")
    assignment, _ = open_pair(alice, campaign)
    html = alice.post(f"/annotate/assignments/{assignment.pk}/", FORM, follow=True).content.decode()
    assert "the expected verdict was that the two answers were equally good (a tie)." in html
    assert "Expected:" not in html


# --- guidelines: Markdown links, and the shortcuts advertised ----------------------------------------


class _Links(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        assert tag in {"p", "br", "ul", "li", "h3", "strong", "em", "code", "a"}, tag
        if tag == "a":
            self.links.append(dict(attrs))


@pytest.mark.parametrize(
    "markdown, href",
    [
        ("[handbook](https://example.org/a_(b)?x=1&y=2)", "https://example.org/a_(b)?x=1&y=2"),
        ("[site](http://example.org/*x*)", "http://example.org/*x*"),
        ("[write to us](mailto:team@example.org)", "mailto:team@example.org"),
        ("[odd](HTTPS://EXAMPLE.ORG)", "HTTPS://EXAMPLE.ORG"),
    ],
)
def test_guidelines_links_to_http_and_mailto_open_safely(markdown, href):
    parsed = _Links(str(guidelines_html(f"See {markdown} **now**.")))
    assert parsed.links == [{"href": href, "rel": "noopener noreferrer nofollow", "target": "_blank"}]


@pytest.mark.parametrize(
    "markdown",
    [
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](data:text/html,<script>alert(1)</script>)",
        "[click](vbscript:msgbox)",
        "[click](/relative/path)",
        "[click](//evil.example)",
        "[click](&#106;avascript:alert(1))",
        "`[code](https://example.org)`",
    ],
)
def test_guidelines_other_links_are_shown_as_text(markdown):
    html = str(guidelines_html(markdown))
    assert _Links(html).links == []
    assert "<script" not in html


def test_a_link_cannot_leave_its_attribute():
    html = str(guidelines_html("[x](https://a.example/\"onmouseover=alert(1)) and [y](https://b.example/'x)"))
    links = _Links(html).links
    assert [set(link) for link in links] == [{"href", "rel", "target"}] * 2
    assert links[0]["href"] == 'https://a.example/"onmouseover=alert(1)'


def test_guidelines_and_their_key_only_where_a_campaign_has_guidelines(alice):
    plain = make_campaign(prompts=1)
    _, html = open_pair(alice, plain)
    assert 'id="guidelines"' not in html and "<kbd>g</kbd>" not in html
    assert "show or hide the guidelines" not in html
    assert "not sure" not in html.lower()  # neither the button nor its keys are advertised

    with_rules = make_campaign(
        prompts=1, guidelines="Read [the handbook](https://example.org/h).", dataset_name="other"
    )
    _, html = open_pair(alice, with_rules)
    with_rules.refresh_from_db()
    assert f'data-version="{with_rules.guidelines_updated_at.isoformat()}"' in html
    assert "<kbd>g</kbd>" in html and "show or hide the guidelines" in html
    assert (
        '<a href="https://example.org/h" rel="noopener noreferrer nofollow" target="_blank">the handbook</a>'
        in html
    )
    assert "data-arrow" not in html


# --- create_campaign switches ------------------------------------------------------------------------


def _create_campaign(*args: str) -> Campaign:
    out = StringIO()
    call_command("create_campaign", *args, stdout=out, stderr=StringIO())
    return Campaign.objects.get(pk=int(out.getvalue().split()[-1]))


def test_create_campaign_offers_not_sure_and_gold_feedback_only_when_asked():
    job = make_job(prompts=2)
    plain = _create_campaign("--job", str(job.pk), "--name", "strict")
    assert (plain.allow_not_sure, plain.gold_feedback) == (False, False)
    both = _create_campaign("--job", str(job.pk), "--name", "training", "--allow-not-sure", "--gold-feedback")
    assert (both.allow_not_sure, both.gold_feedback) == (True, True)
