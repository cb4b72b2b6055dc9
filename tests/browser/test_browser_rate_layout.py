"""The rating page as an annotator meets it in Chromium: at 1366x768 the whole decision (each answer's
score and verdict, the preference, Submit) is in view; the keyboard rates with letter keys only and
leaves arrows, Tab and Space to the browser; a forgotten verdict is caught; the guidelines open on a
first visit and after a change, and otherwise stay as the annotator left them; on a phone (390x844)
the answers stack with their scores, the decision bar stays in view and taps rate the pair."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotations.models import Assignment, Rating
from generation.models import Answer, Prompt
from tests.support.annotation_data import make_campaign
from tests.support.browser import ARTIFACTS, DESKTOP, horizontal_overflow, in_viewport, log_in, screenshot

PASSWORD = "correct-horse-battery"  # tests/conftest.py
# Texts of the length the demo's pairs have: a product review as context, answers of a few sentences.
CONTEXT = (
    "Product: Auralite Pro Wireless Earbuds\nReview: We've had them for a couple of months. People on the "
    "other end complain about the call quality whenever I'm outside, and the case scratches easily. The "
    "battery lasts a full working day, which is the one thing that works as promised. Really disappointed "
    "overall, and I would not buy them again at this price."
)
ANSWER = (
    "Negative. The reviewer complains about the call quality outdoors and a case that scratches easily; "
    "the battery life is the only thing praised, and they say they would not buy the earbuds again at "
    "this price. Overall the customer is disappointed with the purchase."
)
GUIDELINES = (
    "# How to rate\n\nScore each answer on its own, then say which is **better**. "
    "See [the rating handbook](https://example.org/handbook).\n\n- 5 = excellent\n- 1 = poor"
)
DECISION = [
    "#answer-left fieldset:nth-of-type(1)",  # left score
    "#answer-left fieldset:nth-of-type(2)",  # left verdict
    "#answer-right fieldset:nth-of-type(1)",
    "#answer-right fieldset:nth-of-type(2)",
    "#preference",
    "#submit-button",
]


def _demo_sized(campaign) -> None:
    Prompt.objects.filter(dataset=campaign.job.dataset).update(context=CONTEXT)
    Answer.objects.filter(job=campaign.job).update(text=ANSWER)


def _watch_errors(page) -> list[str]:
    """Script exceptions and console errors (CSP violations among them) from now on."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Failed to load resource" not in msg.text
            else None
        ),
    )
    return errors


def _open(page, live_server, campaign) -> None:
    page.goto(f"{live_server.url}/annotate/campaigns/{campaign.pk}/")
    expect(page.locator("#rating-form")).to_be_visible()


def _checked(page, name: str) -> str | None:
    return page.evaluate(
        "(name) => { const i = document.querySelector(`input[name='${name}']:checked`); return i && i.value; }",
        name,
    )


def _rate_by_keys(page, keys) -> None:
    for key in keys:
        page.keyboard.press(key)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("main")).to_contain_text("Rating saved.")


@pytest.mark.django_db(transaction=True)
def test_desktop_keeps_the_decision_in_view_and_rates_by_letter_keys_only(
    live_server, browser_page, annotator
):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    campaign = make_campaign(prompts=4, overlap=1)
    _demo_sized(campaign)
    errors = _watch_errors(page)
    log_in(page, live_server.url, annotator.username, PASSWORD)
    _open(page, live_server, campaign)

    for size in ({"width": 1280, "height": 720}, DESKTOP):  # a smaller laptop screen too
        page.set_viewport_size(size)
        for selector in DECISION + ["#skip-button"]:
            assert in_viewport(page, selector), (size, selector)
        assert horizontal_overflow(page) == 0
    # no guidelines in this campaign: no panel, no "g" advertised
    assert page.locator("#guidelines").count() == 0
    assert "guidelines" not in page.inner_text("#keys")
    # verdicts start empty, and "not sure" is not offered unless the campaign allows it
    assert _checked(page, "correct_left") is None and _checked(page, "correct_right") is None
    assert page.locator("#answer-left").get_by_text("Not sure").count() == 0
    screenshot(page, "rate-desktop")

    # ArrowDown scrolls the page and chooses nothing; the decision bar stays in view
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => window.scrollY > 0")
    assert _checked(page, "preference") is None
    assert in_viewport(page, "#preference") and in_viewport(page, "#submit-button")

    # Space and Tab inside a radio group do what they natively do; arrows there move within the group
    page.focus("#score_left_3")
    page.keyboard.press("Space")
    assert _checked(page, "score_left") == "3"
    page.keyboard.press("ArrowRight")
    assert _checked(page, "score_left") == "4"
    assert _checked(page, "preference") is None  # not "Right is better"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.name") == "correct_left"
    page.keyboard.press("Space")
    assert _checked(page, "correct_left") == "true"

    # the rest with letter keys: right score 2 (w), right incorrect (k), left is better (z)
    for key in ("w", "k", "z"):
        page.keyboard.press(key)
    assert [_checked(page, n) for n in ("score_right", "correct_right", "preference")] == [
        "2",
        "false",
        "left",
    ]
    page.wait_for_timeout(120)  # a little time on the page, so duration_ms is measurable
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("main")).to_contain_text("Rating saved.")
    rating = Rating.objects.get(assignment__annotator=annotator)
    assert (rating.score_left, rating.score_right, rating.correct_left, rating.correct_right) == (
        4,
        2,
        True,
        False,
    )
    assert rating.preference == "left" and rating.duration_ms >= 100
    # after a save (the notice on top) the decision is still in view
    for selector in DECISION:
        assert in_viewport(page, selector), selector

    # a forgotten verdict is caught with a visible message; nothing is saved
    for key in ("3", "e", "a", "x"):
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    missing = page.locator("#answer-right .error")
    expect(missing).to_have_text("Say whether the right answer is correct or incorrect.")
    assert in_viewport(page, "#answer-right .error")
    assert page.locator("#answer-left .error").count() == 0
    assert Rating.objects.filter(assignment__annotator=annotator).count() == 1
    page.keyboard.press("j")  # choosing it clears the message
    expect(missing).to_have_count(0)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("main")).to_contain_text("Rating saved.")
    second = Rating.objects.filter(assignment__annotator=annotator).order_by("-id").first()
    assert (second.score_left, second.score_right, second.correct_left, second.correct_right) == (
        3,
        3,
        True,
        True,
    )
    assert second.preference == "tie"

    # keys do nothing while typing a comment, nor with a modifier held
    page.keyboard.press("i")
    page.keyboard.type("z1")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+x")
    assert page.input_value("#id_comment") == "z1"
    assert _checked(page, "preference") is None and _checked(page, "score_left") is None
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_guidelines_open_on_first_visit_stay_as_left_and_reopen_after_a_change(
    live_server, browser_page, annotator
):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    hostile = GUIDELINES + "\n\nNever [click this](javascript:alert(1)) link."
    campaign = make_campaign(prompts=4, overlap=1, guidelines=hostile)
    _demo_sized(campaign)
    errors = _watch_errors(page)
    log_in(page, live_server.url, annotator.username, PASSWORD)
    _open(page, live_server, campaign)

    panel = page.locator("#guidelines")
    expect(panel).to_have_attribute("open", "")  # first visit: open
    link = panel.get_by_role("link", name="the rating handbook")
    assert link.get_attribute("href") == "https://example.org/handbook"
    assert link.get_attribute("target") == "_blank"
    assert link.get_attribute("rel") == "noopener noreferrer nofollow"
    assert "[click this](javascript:alert(1))" in panel.inner_text()  # shown as text, not a link
    assert panel.locator("a").count() == 1
    assert "g" in page.inner_text("#keys")

    # the annotator closes them; the next pair keeps them closed, and "g" opens them again
    panel.locator("summary").click()
    expect(panel).not_to_have_attribute("open", "")
    page.locator("#question").click()  # focus leaves the summary (Enter there toggles the panel)
    _rate_by_keys(page, ("4", "w", "a", "k", "z"))
    expect(panel).not_to_have_attribute("open", "")
    page.reload()
    expect(page.locator("#rating-form")).to_be_visible()
    expect(panel).not_to_have_attribute("open", "")
    for selector in DECISION:
        assert in_viewport(page, selector), selector
    page.keyboard.press("g")
    expect(panel).to_have_attribute("open", "")
    page.keyboard.press("g")
    expect(panel).not_to_have_attribute("open", "")

    # the admin changes the guidelines: they open again on the next page
    campaign.refresh_from_db()
    campaign.guidelines = GUIDELINES + "\n\nNew: a **tie** needs both scores equal."
    campaign.save()
    page.reload()
    expect(panel).to_have_attribute("open", "")
    expect(panel).to_contain_text("a tie needs both scores equal")
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_phone_stacks_answers_with_their_scores_and_rates_by_taps(live_server, phone_page, annotator):
    page = phone_page
    campaign = make_campaign(prompts=2, overlap=1)
    _demo_sized(campaign)
    errors = _watch_errors(page)
    log_in(page, live_server.url, annotator.username, PASSWORD)
    _open(page, live_server, campaign)
    assert horizontal_overflow(page) == 0
    assert in_viewport(page, "#action-bar") and in_viewport(page, "#submit-button")

    # the answers stack, each followed by its own score and verdict
    left = page.locator("#answer-left").bounding_box()
    right = page.locator("#answer-right").bounding_box()
    assert right["y"] >= left["y"] + left["height"] - 1
    left_score = page.locator("#answer-left fieldset:nth-of-type(1)").bounding_box()
    assert left["y"] < left_score["y"] < right["y"]
    # no key hints on a touch screen
    assert not page.locator("#keys").is_visible()
    assert not page.locator("#submit-button kbd").is_visible()
    # what the phone shows (a full-page capture drops the touch emulation while it is taken)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "rate-phone.png"))

    page.locator("label[for=score_left_4]").tap()
    page.locator("label[for=correct_left_1]").tap()
    page.locator("label[for=score_right_2]").tap()
    page.locator("label[for=correct_right_2]").tap()
    page.locator("label[for=preference_left]").tap()
    # every choice and button is a touch-sized target, and the bar is still in view after scrolling
    for selector in (
        "label[for=score_right_2]",
        "label[for=correct_right_2]",
        "label[for=preference_tie]",
        "#submit-button",
    ):
        box = page.locator(selector).bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, (selector, box)
    assert in_viewport(page, "#action-bar") and in_viewport(page, "#preference_left + label")
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(ARTIFACTS / "rate-phone-chosen.png"))
    with page.expect_navigation():
        page.locator("#submit-button").tap()
    expect(page.locator("main")).to_contain_text("Rating saved.")
    rating = Rating.objects.get(assignment__annotator=annotator)
    assert (rating.score_left, rating.score_right, rating.correct_left, rating.correct_right) == (
        4,
        2,
        True,
        False,
    )
    assert rating.preference == "left"
    assert Assignment.objects.get(pk=rating.assignment_id).completed_at is not None
    assert in_viewport(page, "#action-bar")
    assert errors == []
