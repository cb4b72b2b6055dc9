"""Very long answers, prompts and contexts on the rating page in Chromium: the page stays within the
viewport, the whole text is reachable and the keyboard still rates (the markup itself is checked in
tests/annotations/test_long_answers.py). Layout cost is measured by scripts/measure_long_answer.py,
never asserted here."""

from __future__ import annotations

import pytest

from annotations.models import Assignment, Rating
from tests.annotations.test_long_answers import LONG, _mixed, _set_answers, _set_prompts
from tests.support.annotation_data import make_campaign

BOX_JS = """(selector) => [...document.querySelectorAll(selector)].map(box => ({
  text: box.textContent,
  scrollWidth: box.scrollWidth,
  clientWidth: box.clientWidth,
  right: box.getBoundingClientRect().right,
}))"""

def _page_errors(page) -> list[str]:
    """Script exceptions and console errors (CSP violations among them) the page reports from now on."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(  # a missing favicon is no fault
        "console",
        lambda msg: errors.append(msg.text)
        if msg.type == "error" and "Failed to load resource" not in msg.text
        else None,
    )
    return errors


def _log_in(page, base_url: str, user) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "correct-horse-battery")  # tests/conftest.py
    with page.expect_navigation():
        page.press("#id_password", "Enter")


# Bring a box into view, scroll it to its end and say whether the text's last character is shown inside
# the box. Pieces of
# the text that were never laid out have a guessed height, so the end may take a few scrolls to reach:
# the test polls this with page.wait_for_function, as a reader would press End again.
END_VISIBLE_JS = """([selector, index]) => {
  const box = document.querySelectorAll(selector)[index];
  box.scrollIntoView({block: 'nearest'});
  box.scrollTop = box.scrollHeight;
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  let node = null; while (walker.nextNode()) { node = walker.currentNode; }
  const range = document.createRange();
  range.setStart(node, node.length - 1); range.setEnd(node, node.length);
  const r = range.getBoundingClientRect(), b = box.getBoundingClientRect();
  return r.height > 0 && r.top >= b.top && r.bottom <= b.bottom && r.left >= b.left && r.right <= b.right
    && document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2) === node.parentElement;
}"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_two_200k_answers_without_spaces_fit_the_screen_are_readable_to_the_end_and_rate_by_keyboard(
    live_server, browser_page, annotator  # noqa: F811
):
    page = browser_page
    campaign = make_campaign(prompts=2, overlap=1)
    one = "x" * (LONG - 10) + "END-OF-ONE"
    two = _mixed(LONG - 10, 2) + "END-OF-TWO"
    _set_answers(campaign, one, two)
    errors = _page_errors(page)
    _log_in(page, live_server.url, annotator)
    page.goto(f"{live_server.url}/annotate/campaigns/{campaign.pk}/")
    for width in (1280, 600):  # side by side, then stacked
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), width
        boxes = page.evaluate(BOX_JS, ".answer-text")
        assert sorted(box["text"] for box in boxes) == sorted([one, two])  # every character, in order
        for box in boxes:
            assert box["scrollWidth"] <= box["clientWidth"], (width, box["scrollWidth"], box["clientWidth"])
            assert box["right"] <= width
        assert page.locator(".answer .text-length").all_inner_texts() == [
            "200,000 characters, scroll inside the box"
        ] * 2
    page.set_viewport_size({"width": 1280, "height": 900})
    # the pieces come with their stylesheet (only those near the visible part are laid out)
    assert page.evaluate(
        "() => [...document.querySelectorAll('.text-chunk')].every("
        "c => getComputedStyle(c).contentVisibility === 'auto')"
    )
    # the end of each answer can be scrolled to and is shown inside its box
    for index in (0, 1):
        page.wait_for_function(END_VISIBLE_JS, arg=[".answer-text", index])

    # the keyboard still rates the pair
    for key in ("4", "w", "a", "k", "z"):
        page.keyboard.press(key)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Rating saved." in page.inner_text("main")
    rating = Rating.objects.get(assignment__annotator=annotator)
    assignment = Assignment.objects.get(pk=rating.assignment_id)
    scores = (rating.score_left, rating.score_right, rating.correct_left, rating.correct_right)
    assert scores == (4, 2, True, False)
    assert rating.preference == "left" and assignment.completed_at is not None
    assert errors == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_200k_prompt_and_context_without_spaces_fit_the_screen_are_readable_to_the_end_and_rate_by_keyboard(
    live_server, browser_page, annotator  # noqa: F811
):
    page = browser_page
    campaign = make_campaign(prompts=2, overlap=1)
    text = _mixed(LONG - 13, 6) + "END-OF-PROMPT"
    context = _mixed(LONG - 14, 7) + "END-OF-CONTEXT"
    _set_prompts(campaign, text, context)
    errors = _page_errors(page)
    _log_in(page, live_server.url, annotator)
    page.goto(f"{live_server.url}/annotate/campaigns/{campaign.pk}/")
    for width in (1280, 600):  # answers side by side, then stacked
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), width
        for selector, expected in ((".prompt-text", text), (".context-text", context)):
            boxes = page.evaluate(BOX_JS, selector)
            assert [box["text"] for box in boxes] == [expected], selector  # every character, in order
            box = boxes[0]
            assert box["scrollWidth"] <= box["clientWidth"], (selector, width, box)
            assert box["right"] <= width
        assert page.locator(".prompt .text-length").all_inner_texts() == [
            "200,000 characters, scroll inside the box"
        ] * 2
        # the long prompt scrolls inside its own box: the answers are not pushed pages down
        top = page.evaluate(
            "() => document.getElementById('answer-left').getBoundingClientRect().top + scrollY"
        )
        assert top < 2 * 900, (width, top)
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.evaluate(
        "() => [...document.querySelectorAll('.text-chunk')].every("
        "c => getComputedStyle(c).contentVisibility === 'auto')"
    )
    for selector in (".prompt-text", ".context-text"):
        page.wait_for_function(END_VISIBLE_JS, arg=[selector, 0])

    # a click into the prompt (as when reading it) leaves the keyboard rating the pair
    page.click(".prompt-text")
    for key in ("5", "q", "s", "j", "c"):
        page.keyboard.press(key)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Rating saved." in page.inner_text("main")
    rating = Rating.objects.get(assignment__annotator=annotator)
    scores = (rating.score_left, rating.score_right, rating.correct_left, rating.correct_right)
    assert scores == (5, 1, False, True) and rating.preference == "right"
    assert errors == []
