"""How texts appear on the rating page: campaign guidelines as a small, safe subset of Markdown, and
long texts (answers, prompts, contexts) cut into pieces the browser can lay out lazily."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# [text](url): the URL has no spaces and at most one level of parentheses, e.g. a wiki page "(disambiguation)"
_LINK = re.compile(r"\[([^\[\]]+)\]\(([^()\s]*(?:\([^()\s]*\)[^()\s]*)*)\)")
# only these schemes become links; anything else ("javascript:", "data:", relative paths) stays as text
_SAFE_URL = re.compile(r"^(?:https?://[^/\s]|mailto:[^\s])", re.IGNORECASE)
_CODE = re.compile(r"`([^`]+)`")
_HOLE = "\x00{}\x00"  # a placeholder for a finished piece of HTML; escaped text holds no NUL


def _emphasis(text: str) -> str:
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"(?<![\w*])\*([^*]+)\*(?![\w*])", r"<em>\1</em>", text)


def _inline(line: str) -> str:
    """One line of guidelines as HTML: escaped first, then `code`, [links](url), **bold** and *italic*.
    Code spans and link URLs are set aside before emphasis is applied, so a `*` inside them stays."""
    line = escape(line.replace("\x00", ""))
    holes: list[str] = []

    def hold(html: str) -> str:
        holes.append(html)
        return _HOLE.format(len(holes) - 1)

    line = _CODE.sub(lambda m: hold(f"<code>{m.group(1)}</code>"), line)

    def link(match: re.Match[str]) -> str:
        text, url = match.group(1), match.group(2)
        if not _SAFE_URL.match(url):
            return match.group(0)  # shown as the text it is
        # the URL is escaped text (quotes included), so it cannot leave the attribute
        opening = f'<a href="{url}" rel="noopener noreferrer nofollow" target="_blank">'
        return hold(opening) + _emphasis(text) + hold("</a>")

    line = _emphasis(_LINK.sub(link, line))
    return re.sub("\x00(\\d+)\x00", lambda m: holes[int(m.group(1))], line)


def guidelines_html(text: str) -> SafeString:
    """A small, safe subset of Markdown: every character is escaped first, then only fixed tags are
    added (paragraphs, line breaks, - lists, # headings, **bold**, *italic*, `code`, and [links](url)
    to http, https or mailto addresses only, opening in a new tab without the page's referrer)."""
    html = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        heading = re.match(r"^(#{1,4})\s+(.*)$", lines[0])
        if heading and len(lines) == 1:
            html.append(f"<h3>{_inline(heading.group(2))}</h3>")
        elif all(re.match(r"^\s*[-*]\s+", line) for line in lines):
            items = "".join("<li>" + _inline(re.sub(r"^\s*[-*]\s+", "", line)) + "</li>" for line in lines)
            html.append(f"<ul>{items}</ul>")
        else:
            html.append("<p>" + "<br>".join(_inline(line) for line in lines) + "</p>")
    return mark_safe("".join(html))  # noqa: S308 — built from escaped text and fixed tags only


_GOLD_VERDICTS = {
    "tie": "that the two answers were equally good (a tie)",
    "both_bad": "that both answers were bad",
}
_CHOSEN = {"left": "left is better", "right": "right is better", "tie": "tie", "both_bad": "both bad"}


def gold_notice(assignment: Any, rating: Any) -> str:
    """The known verdict of a gold pair, told to the annotator who just rated it (training rounds), in
    the sides THEY saw: never which model wrote which answer. `assignment` is an Assignment (its pair
    loaded), `rating` the Rating just saved."""
    pair = assignment.pair
    ft_side = assignment.finetuned_side
    pt_side = "right" if ft_side == "left" else "left"
    sides = {"finetuned": ft_side, "pretrained": pt_side}
    preference = pair.gold_preference
    if preference in sides:
        verdict = f"that the answer on the {sides[preference]} was better"
    else:
        verdict = _GOLD_VERDICTS.get(preference, "not recorded")
    parts = [f"Training pair: the expected verdict was {verdict}."]
    known = {ft_side: pair.gold_correct_finetuned, pt_side: pair.gold_correct_pretrained}
    said = [
        f"the {side} answer {'correct' if known[side] else 'incorrect'}"
        for side in ("left", "right")
        if known[side] is not None
    ]
    if said:
        parts.append("Expected: " + " and ".join(said) + ".")
    parts.append(f"You chose: {_CHOSEN.get(rating.preference, rating.preference)}.")
    return " ".join(parts)


# A long text on the rating page (either answer, the prompt's text, its context) is shown in pieces of
# at most this many characters, each its own block with `content-visibility: auto` (annotate.css):
# Chromium lays out only the pieces near the visible part of the scroll box. One 200,000-character
# paragraph of emoji or mixed-direction text without spaces otherwise costs seconds of layout on every
# load and resize (its line breaking grows faster than linearly). Every character is still in the page,
# in order; shorter texts are one plain text node (templates/annotations/_text.html).
TEXT_CHUNK_CHARS = 4000


def _safe_cut(text: str, index: int) -> bool:
    """True when text[:index] / text[index:] splits no CR LF pair and no user-perceived character
    (combining marks, variation selectors, skin tones, ZWJ sequences, flags) and starts no piece with
    whitespace."""
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if after in "\r\n \t":  # a piece starting with a line break or a space would show an extra
        return False  # empty line or an indent
    if before == "\u200d" or unicodedata.category(after) in ("Mn", "Mc", "Me", "Cf"):
        return False
    if 0x1F3FB <= ord(after) <= 0x1F3FF:  # emoji skin-tone modifier
        return False
    return not (0x1F1E6 <= ord(before) <= 0x1F1FF and 0x1F1E6 <= ord(after) <= 0x1F1FF)  # a flag


def text_chunks(text: str, size: int = TEXT_CHUNK_CHARS) -> list[str]:
    """Split text into pieces of at most `size` characters that join back to exactly `text`. A piece
    ends after a line break where one falls in the second half of the window, else after a space, else
    at the last point that splits no character (a hard cut only when there is none)."""
    chunks: list[str] = []
    start = 0
    while len(text) - start > size:
        end = start + size
        cut = 0
        for pattern in ("\n", " ", "\t"):
            found = text.rfind(pattern, start + size // 2, end)
            while found != -1 and not _safe_cut(text, found + 1):
                found = text.rfind(pattern, start + size // 2, found)
            if found != -1:
                cut = found + 1
                break
        if not cut:
            cut = next((i for i in range(end, max(start + 1, end - 64), -1) if _safe_cut(text, i)), end)
        chunks.append(text[start:cut])
        start = cut
    chunks.append(text[start:])
    return chunks
