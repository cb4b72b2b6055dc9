"""An annotator rates with the keyboard only, in Debian's Chromium driven by Playwright."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotations.models import Rating, User
from generation.models import Answer
from tests.support.annotation_data import HOSTILE, make_campaign

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
GUIDELINES = (
    "# How to rate\n\nScore each answer on its own, then say which is **better**.\n\n"
    "- 5 = excellent\n- 1 = poor"
)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_annotator_rates_five_pairs_with_the_keyboard_and_edits_one(live_server, browser_page):
    page = browser_page
    # "not sure" offered: the keyboard's third verdict key (d / l) is rated below
    campaign = make_campaign(prompts=6, overlap=1, hostile_prompt=0, guidelines=GUIDELINES, allow_not_sure=True)
    # every pair shows the hostile text: the annotator's own pair order decides which comes first
    Answer.objects.filter(job=campaign.job, role="finetuned").update(text=HOSTILE)
    alice = User.objects.create_user(username="alice", password="correct-horse-battery", role="annotator")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    # CSP violations show as console errors, script exceptions as page errors; a missing favicon is no fault
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    missing: list[str] = []
    page.on(
        "response", lambda r: missing.append(r.url) if r.status >= 400 and "favicon" not in r.url else None
    )

    # log in with the keyboard
    page.goto(f"{live_server.url}/login/")
    page.wait_for_selector("#id_username:focus")  # autofocus lands before we type
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type("correct-horse-battery")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/annotate/"), page.inner_text("main")
    assert "Spring review campaign" in page.inner_text("main")

    page.goto(f"{live_server.url}/annotate/campaigns/{campaign.pk}/")
    # the hostile answer is on the first pair: shown as text, never run
    texts = page.locator(".answer-text").all_inner_texts()
    assert HOSTILE in texts
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0

    # a first visit opens the guidelines; "g" closes them
    page.wait_for_selector("#guidelines[open]")
    assert page.locator("#guidelines strong").inner_text() == "better"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "annotate.png"), full_page=True)
    page.keyboard.press("g")
    page.wait_for_selector("#guidelines:not([open])")

    plans = [
        ("4", "w", "a", "l", "z"),
        ("5", "q", "s", "j", "c"),
        ("3", "e", "d", "k", "x"),
        ("1", "t", "a", "j", "v"),
        ("2", "r", "s", "l", "c"),
    ]
    for done, (left, right, left_ok, right_ok, preference) in enumerate(plans):
        assert page.inner_text("#progress-text") == f"{done} / 6 rated"
        assert page.get_attribute("#progress", "value") == str(done)
        for key in (left, right, left_ok, right_ok, preference):
            page.keyboard.press(key)
        page.wait_for_timeout(150)  # a little time on the page, so duration_ms is measurable
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "Rating saved." in page.inner_text("main")
    assert page.inner_text("#progress-text") == "5 / 6 rated"

    ratings = list(Rating.objects.filter(assignment__annotator=alice).order_by("assignment__completed_at"))
    assert len(ratings) == 5
    first, last = ratings[0], ratings[-1]
    assert (
        first.score_left,
        first.score_right,
        first.correct_left,
        first.correct_right,
        first.preference,
    ) == (4, 2, True, None, "left")
    assert (ratings[1].score_right, ratings[1].correct_left, ratings[1].preference) == (1, False, "right")
    assert (
        ratings[2].preference == "tie" and ratings[3].preference == "both_bad" and last.preference == "right"
    )
    assert all(rating.duration_ms and rating.duration_ms >= 100 for rating in ratings)

    # back to the last rating with "b", change the left score with "1", save with Enter
    with page.expect_navigation():
        page.keyboard.press("b")
    assert "You are changing a rating you gave earlier." in page.inner_text("main")
    assert page.locator("#score_left_2").is_checked()
    page.keyboard.press("1")
    page.keyboard.press("v")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Rating updated." in page.inner_text("main")
    last.refresh_from_db()
    assert (last.score_left, last.preference) == (1, "both_bad")
    assert Rating.objects.filter(assignment__annotator=alice).count() == 5
    assert page.inner_text("#progress-text") == "5 / 6 rated"

    # skip the sixth with "n": with nothing else left the same pair comes back, still unrated
    with page.expect_navigation():
        page.keyboard.press("n")
    assert page.inner_text("#progress-text") == "5 / 6 rated"

    # narrow screens stack the answers
    page.set_viewport_size({"width": 600, "height": 900})
    left_box = page.locator("#answer-left").bounding_box()
    right_box = page.locator("#answer-right").bounding_box()
    assert right_box["y"] > left_box["y"] + left_box["height"] - 1

    assert dialogs == []
    assert [e for e in console_errors if "Failed to load resource" not in e] == []
    assert page_errors == [] and missing == []
