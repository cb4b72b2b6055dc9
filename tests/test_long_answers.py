"""Very long answers, prompts and contexts on the rating page: split into pieces that join back exactly,
the same way on both answer sides; in Chromium the page stays within the viewport, the whole text is
reachable and the keyboard still rates. Layout cost is measured by scripts/measure_long_answer.py,
never asserted here."""

from __future__ import annotations

import random
import re
import unicodedata
from html.parser import HTMLParser

import pytest

from annotations.models import Assignment, Rating
from annotations.views_annotate import TEXT_CHUNK_CHARS, text_chunks
from generation.models import Answer, Prompt, Role
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
def test_text_chunks_join_back_exactly_within_the_size(text):
    chunks = text_chunks(text)
    assert "".join(chunks) == text
    assert all(len(chunk) <= TEXT_CHUNK_CHARS for chunk in chunks)
    if len(text) <= TEXT_CHUNK_CHARS:
        assert chunks == [text]
    for before, after in zip(chunks, chunks[1:]):
        assert after, "empty piece"
        assert not after[0].isspace(), repr(after[:10])  # no extra empty line or indent
        assert unicodedata.category(after[0]) not in ("Mn", "Mc", "Me", "Cf"), repr(after[:5])
        assert not before.endswith("\u200d") and not after.startswith("\U0001f3fd")


def test_text_chunks_of_nothing_but_spaces_still_join_back():
    text = " " * 10_000 + "x"
    assert "".join(text_chunks(text)) == text


def test_text_chunks_cut_after_line_breaks_and_spaces_when_there_are_some():
    paragraphs = "".join(f"Paragraph {i} " + "word " * 150 + "\n\n" for i in range(300))
    assert all(chunk.endswith("\n") for chunk in text_chunks(paragraphs)[:-1])
    assert all(chunk.endswith(" ") for chunk in text_chunks("word " * 40_000)[:-1])
    flags = text_chunks(FLAG * 50_000)
    assert all(len(chunk) % 2 == 0 for chunk in flags)  # no flag is cut in two
    assert max(len(chunk) for chunk in text_chunks("x" * LONG)) == TEXT_CHUNK_CHARS


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
    assert left.count('class="text-chunk"') == len(text_chunks(hostile)) > 1
    assert "208,000 characters" in left
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in left
    # a short answer stays one plain text node, as before
    _set_answers(campaign, "short one", "short two")
    html = client.get(f"/annotate/campaigns/{campaign.pk}/").content.decode()
    assert "text-chunk" not in html and "characters, scroll" not in html


class _BoxText(HTMLParser):
    """The text of the first element whose classes include `box`, as a browser's textContent would be,
    and the classes of that element and of the elements inside it."""

    def __init__(self, html: str, box: str) -> None:
        super().__init__(convert_charrefs=True)
        self.box, self.depth, self.parts = box, 0, []
        self.classes: list[str] | None = None
        self.inner_classes: list[str] = []
        self.feed(html)
        self.close()
        self.text = "".join(self.parts)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if self.depth:
            self.depth += 1
            self.inner_classes += classes
        elif self.classes is None and self.box in classes:
            self.depth, self.classes = 1, classes

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def _set_prompts(campaign, text: str, context: str) -> None:
    Prompt.objects.filter(pk__in=campaign.pairs.values_list("prompt_id", flat=True)).update(
        text=text, context=context
    )


@pytest.mark.django_db
def test_long_prompt_and_context_come_in_pieces_that_join_back_and_stay_escaped(client, annotator):
    campaign = make_campaign(prompts=1, overlap=1)
    text = _mixed(LONG, 3)
    context = "<script>alert(1)</script>&\r\n" * 7500  # 210,000 characters, one line break each 28
    _set_prompts(campaign, text, context)
    client.force_login(annotator)
    html = client.get(f"/annotate/campaigns/{campaign.pk}/").content.decode()
    for box, expected in (("prompt-text", text), ("context-text", context)):
        shown = _BoxText(html, box)
        assert shown.text == expected, box  # every character, in order
        assert shown.classes == [box, "split"]
        assert shown.inner_classes == ["text-chunk"] * len(text_chunks(expected)), box
        assert len(shown.inner_classes) > 1
    assert "<script>alert" not in html
    task = html[html.index('class="task"') : html.index('class="prompt-text')]
    assert "200,000 characters, scroll inside the box" in task
    title = html[html.index('class="context-title"') : html.index('class="context-text')]
    assert "210,000 characters, scroll inside the box" in title
    # the short answers stay one plain text node each
    assert html.count('<div class="answer-text">') == 2 and html.count("characters, scroll") == 2

    # a short prompt and context stay one plain text node, as before; no context, no context box
    _set_prompts(campaign, "Short  prompt\n  indented", "")
    html = client.get(f"/annotate/campaigns/{campaign.pk}/").content.decode()
    assert '<div class="prompt-text">Short  prompt\n  indented</div>' in html
    assert "context-text" not in html and "context-title" not in html
    assert "text-chunk" not in html and "split" not in html and "characters, scroll" not in html


def _without_csrf(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)


def _answer_sections(html: str) -> tuple[str, str, str]:
    """Each side's heading and text (up to its score buttons, whose keys differ by side) with the side's
    name taken out, and the rest of the page."""
    a, b = html.index('id="answer-left"'), html.index('name="score_left"')
    c, d = html.index('id="answer-right"'), html.index('name="score_right"')
    left = html[a + len('id="answer-left"') : b].replace("Left", "Side")
    right = html[c + len('id="answer-right"') : d].replace("Right", "Side")
    return left, right, html[:a] + html[b:c] + html[d:]


@pytest.mark.django_db
def test_with_a_long_prompt_and_context_swapping_the_sides_only_swaps_the_answers(client, annotator):
    campaign = make_campaign(prompts=1, overlap=1)
    _set_prompts(campaign, _mixed(LONG, 4), _mixed(LONG // 2, 5))
    _set_answers(campaign, "x" * 50_000, "a short answer")
    client.force_login(annotator)
    url = f"/annotate/campaigns/{campaign.pk}/"
    first = _answer_sections(_without_csrf(client.get(url).content.decode()))
    assignment = Assignment.objects.get(annotator=annotator)
    assignment.finetuned_side = "right" if assignment.finetuned_side == "left" else "left"
    assignment.save(update_fields=["finetuned_side"])
    second = _answer_sections(_without_csrf(client.get(url).content.decode()))
    assert first[0] != first[1]
    # the same pair with the sides swapped: the long answer's markup moves to the other side as it is,
    # and nothing else on the page (prompt, context, their pieces) changes
    assert (second[0], second[1]) == (first[1], first[0])
    assert second[2] == first[2]
    pieces = first[2].count('class="text-chunk"')
    assert pieces == len(text_chunks(_mixed(LONG, 4))) + len(text_chunks(_mixed(LONG // 2, 5)))


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
    for key in ("5", "q", "d", "j", "c"):
        page.keyboard.press(key)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Rating saved." in page.inner_text("main")
    rating = Rating.objects.get(assignment__annotator=annotator)
    scores = (rating.score_left, rating.score_right, rating.correct_left, rating.correct_right)
    assert scores == (5, 1, None, True) and rating.preference == "right"
    assert errors == []
