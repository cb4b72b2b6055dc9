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

from annotations.models import Assignment
from annotations.display import TEXT_CHUNK_CHARS, text_chunks
from generation.models import Answer, Prompt, Role
from tests.support.annotation_data import make_campaign

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
