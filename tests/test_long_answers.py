"""Very long answers on the rating page: split into pieces that join back exactly, the same way on both
sides; in Chromium the page stays within the viewport, the whole text is reachable and the keyboard
still rates. Layout cost is measured by scripts/measure_long_answer.py, never asserted here."""

from __future__ import annotations

import random
import unicodedata

import pytest

from annotations.models import Assignment, Rating
from annotations.views_annotate import ANSWER_CHUNK_CHARS, answer_chunks
from generation.models import Answer, Role
from tests.annotation_data import make_campaign
from tests.test_browser_annotate import browser_page  # noqa: F401 - fixture

LONG = 200_000
EMOJI_ZWJ = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one family emoji, five code points
FLAG = "\U0001f1eb\U0001f1f7"


def _mixed(n: int, seed: int) -> str:
    """n characters with no space: Latin, Hebrew, Arabic, emoji, combining marks, flags, ZWJ families."""
    rng = random.Random(seed)
    pieces = ["ab", "\u05d0\u05d1", "\u0627\u0628", "\U0001f600", "e\u0301", FLAG, EMOJI_ZWJ]
    pieces.append("\U0001f44d\U0001f3fd")  # thumbs up, medium skin tone
    out: list[str] = []
    length = 0
    while length < n:
        piece = rng.choice(pieces)
        out.append(piece)
        length += len(piece)
    return "".join(out)[:n]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short answer",
        "x" * LONG,
        "word " * 40_000,
        ("A paragraph of some length.\n\n" * 8000),
        "line\r\n" * 40_000,
        _mixed(LONG, 1),
        "\u05d0\u0301" * 50_000,
    ],
    ids=["empty", "short", "nospace", "words", "paragraphs", "crlf", "mixed", "combining"],
)
def test_answer_chunks_join_back_exactly_within_the_size(text):
    chunks = answer_chunks(text)
    assert "".join(chunks) == text
    assert all(len(chunk) <= ANSWER_CHUNK_CHARS for chunk in chunks)
    if len(text) <= ANSWER_CHUNK_CHARS:
        assert chunks == [text]
    for before, after in zip(chunks, chunks[1:]):
        assert after, "empty piece"
        assert not after[0].isspace(), repr(after[:10])  # no extra empty line or indent
        assert unicodedata.category(after[0]) not in ("Mn", "Mc", "Me", "Cf"), repr(after[:5])
        assert not before.endswith("\u200d") and not after.startswith("\U0001f3fd")


def test_answer_chunks_of_nothing_but_spaces_still_join_back():
    text = " " * 10_000 + "x"
    assert "".join(answer_chunks(text)) == text


def test_answer_chunks_cut_after_line_breaks_and_spaces_when_there_are_some():
    paragraphs = "".join(f"Paragraph {i} " + "word " * 150 + "\n\n" for i in range(300))
    assert all(chunk.endswith("\n") for chunk in answer_chunks(paragraphs)[:-1])
    assert all(chunk.endswith(" ") for chunk in answer_chunks("word " * 40_000)[:-1])
    flags = answer_chunks(FLAG * 50_000)
    assert all(len(chunk) % 2 == 0 for chunk in flags)  # no flag is cut in two
    assert max(len(chunk) for chunk in answer_chunks("x" * LONG)) == ANSWER_CHUNK_CHARS


def _set_answers(campaign, pretrained: str, finetuned: str) -> None:
    prompt_ids = campaign.pairs.values_list("prompt_id", flat=True)
    Answer.objects.filter(prompt_id__in=prompt_ids, role=Role.PRETRAINED).update(text=pretrained)
    Answer.objects.filter(prompt_id__in=prompt_ids, role=Role.FINETUNED).update(text=finetuned)


@pytest.mark.django_db
def test_both_long_answers_get_the_same_markup_and_stay_escaped(client, annotator):
    campaign = make_campaign(prompts=1, overlap=1)
    hostile = "<script>alert(1)</script>&" * 8000  # 208,000 characters
    _set_answers(campaign, hostile, hostile)
    client.force_login(annotator)
    html = client.get(f"/annotate/campaigns/{campaign.pk}/").content.decode()
    # heading and text of each side, up to the score buttons (whose keys differ by side)
    left = html[html.index('id="answer-left"') + 16 : html.index('name="score_left"')]
    right = html[html.index('id="answer-right"') + 17 : html.index('name="score_right"')]
    assert left.replace("Left", "Side") == right.replace("Right", "Side")
    assert left.count('class="answer-chunk"') == len(answer_chunks(hostile)) > 1
    assert "208,000 characters" in left
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in left
    # a short answer stays one plain text node, as before
    _set_answers(campaign, "short one", "short two")
    html = client.get(f"/annotate/campaigns/{campaign.pk}/").content.decode()
    assert "answer-chunk" not in html and "characters, scroll" not in html


BOX_JS = """() => [...document.querySelectorAll('.answer-text')].map(box => ({
  text: box.textContent,
  scrollWidth: box.scrollWidth,
  clientWidth: box.clientWidth,
  right: box.getBoundingClientRect().right,
}))"""

# Scroll a box to its end and say whether the text's last character is shown inside the box. Pieces of
# the text that were never laid out have a guessed height, so the end may take a few scrolls to reach:
# the test polls this with page.wait_for_function, as a reader would press End again.
END_VISIBLE_JS = """(index) => {
  const box = document.querySelectorAll('.answer-text')[index];
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
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(  # a missing favicon is no fault
        "console",
        lambda msg: errors.append(msg.text)
        if msg.type == "error" and "Failed to load resource" not in msg.text
        else None,
    )

    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", annotator.username)
    page.fill("#id_password", "correct-horse-battery")  # tests/conftest.py
    with page.expect_navigation():
        page.press("#id_password", "Enter")
    page.goto(f"{live_server.url}/annotate/campaigns/{campaign.pk}/")
    for width in (1280, 600):  # side by side, then stacked
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), width
        boxes = page.evaluate(BOX_JS)
        assert sorted(box["text"] for box in boxes) == sorted([one, two])  # every character, in order
        for box in boxes:
            assert box["scrollWidth"] <= box["clientWidth"], (width, box["scrollWidth"], box["clientWidth"])
            assert box["right"] <= width
        assert page.locator(".answer-length").all_inner_texts() == [
            "200,000 characters, scroll inside the box"
        ] * 2
    page.set_viewport_size({"width": 1280, "height": 900})
    # the pieces come with their stylesheet (only those near the visible part are laid out)
    assert page.evaluate(
        "() => [...document.querySelectorAll('.answer-chunk')].every("
        "c => getComputedStyle(c).contentVisibility === 'auto')"
    )
    # the end of each answer can be scrolled to and is shown inside its box
    for index in (0, 1):
        page.wait_for_function(END_VISIBLE_JS, arg=index)

    # the keyboard still rates the pair
    for key in ("4", "w", "a", "l", "z"):
        page.keyboard.press(key)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Rating saved." in page.inner_text("main")
    rating = Rating.objects.get(assignment__annotator=annotator)
    assignment = Assignment.objects.get(pk=rating.assignment_id)
    scores = (rating.score_left, rating.score_right, rating.correct_left, rating.correct_right)
    assert scores == (4, 2, True, None)
    assert rating.preference == "left" and assignment.completed_at is not None
    assert errors == []
