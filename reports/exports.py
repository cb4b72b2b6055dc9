"""Score export, long format: one row per rating × answer (two rows per rating), streamed.

Rows come from one `values_list(...).iterator(chunk_size=...)` query, so memory stays flat however
many ratings a campaign has; answer lengths are computed by the database, never fetched as text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from django.db.models.functions import Length

from annotations.models import Campaign, Rating, User

COLUMNS = (
    "campaign_id",
    "pair_id",
    "prompt_id",
    "prompt_external_id",
    "task",
    "annotator",
    "role",
    "position",
    "score",
    "correct",
    "preference",
    "rated_at",
    "duration_ms",
    "answer_chars",
)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CHUNK_SIZE = 2000
ROWS_PER_WRITE = 1000


def neutralise(value: Any) -> Any:
    """Prefix a text cell that a spreadsheet would run as a formula with a single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _other(side: str) -> str:
    return "right" if side == "left" else "left"


def export_rows(campaign: Campaign, *, with_usernames: bool = False) -> Iterator[dict[str, Any]]:
    """The export rows as dicts (raw values: booleans, ints, None), two per rating: left then right.

    Raters are pseudonyms unless `with_usernames`, which the API grants to admins only
    (evalsite.access.EXPORT_USERNAMES) and `export_scores --with-usernames` to whoever runs commands."""
    annotator_field = "assignment__annotator__username" if with_usernames else "assignment__annotator_id"
    queryset = (
        Rating.objects.filter(assignment__pair__campaign=campaign)
        .order_by("id")
        .annotate(
            pretrained_chars=Length("assignment__pair__pretrained_answer__text"),
            finetuned_chars=Length("assignment__pair__finetuned_answer__text"),
        )
        .values_list(
            "assignment__pair_id",
            "assignment__pair__prompt_id",
            "assignment__pair__prompt__external_id",
            "assignment__pair__prompt__task",
            annotator_field,
            "assignment__finetuned_side",
            "score_left",
            "score_right",
            "correct_left",
            "correct_right",
            "preference",
            "updated_at",
            "duration_ms",
            "pretrained_chars",
            "finetuned_chars",
        )
    )
    pseudonyms: dict[int, str] = {}
    campaign_id = campaign.pk
    for (
        pair_id,
        prompt_id,
        external_id,
        task,
        annotator,
        finetuned_side,
        score_left,
        score_right,
        correct_left,
        correct_right,
        preference,
        rated_at,
        duration_ms,
        pretrained_chars,
        finetuned_chars,
    ) in queryset.iterator(chunk_size=CHUNK_SIZE):
        if not with_usernames:
            name = pseudonyms.get(annotator)
            if name is None:
                name = pseudonyms[annotator] = User(pk=annotator).pseudonym
            annotator = name
        pretrained_side = _other(finetuned_side)
        role_at = {finetuned_side: "finetuned", pretrained_side: "pretrained"}
        preference_role = role_at.get(preference, preference)  # tie / both_bad stay as they are
        rated = rated_at.isoformat()
        for position, score, correct in (
            ("left", score_left, correct_left),
            ("right", score_right, correct_right),
        ):
            role = role_at[position]
            yield {
                "campaign_id": campaign_id,
                "pair_id": pair_id,
                "prompt_id": prompt_id,
                "prompt_external_id": external_id,
                "task": task,
                "annotator": annotator,
                "role": role,
                "position": position,
                "score": score,
                "correct": correct,
                "preference": preference_role,
                "rated_at": rated,
                "duration_ms": duration_ms,
                "answer_chars": finetuned_chars if role == "finetuned" else pretrained_chars,
            }


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return neutralise(value)


def stream_csv(campaign: Campaign, *, with_usernames: bool = False) -> Iterator[str]:
    """CSV text in pieces of about ROWS_PER_WRITE rows, header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    pending = 0
    for row in export_rows(campaign, with_usernames=with_usernames):
        writer.writerow([_csv_cell(row[c]) for c in COLUMNS])
        pending += 1
        if pending >= ROWS_PER_WRITE:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


def stream_jsonl(campaign: Campaign, *, with_usernames: bool = False) -> Iterator[str]:
    """One JSON object per line with the CSV's fields; values keep their types (true/false/null).

    JSON is not opened by spreadsheets, so values are written as stored, not neutralised.
    """
    lines: list[str] = []
    for row in export_rows(campaign, with_usernames=with_usernames):
        lines.append(json.dumps(row, ensure_ascii=False))
        if len(lines) >= ROWS_PER_WRITE:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


def stream(campaign: Campaign, *, fmt: str = "csv", with_usernames: bool = False) -> Iterator[str]:
    if fmt == "csv":
        return stream_csv(campaign, with_usernames=with_usernames)
    if fmt == "jsonl":
        return stream_jsonl(campaign, with_usernames=with_usernames)
    raise ValueError(f"unknown export format {fmt!r}: use csv or jsonl")
