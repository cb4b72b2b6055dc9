"""Score export, long format: one row per rating × answer (two rows per rating), streamed.

Rows come from one `values_list(...).iterator(chunk_size=...)` query, so memory stays flat however
many ratings a campaign has; answer lengths are computed by the database, and texts are only fetched
when asked for (`with_texts`). The SPEC's columns come first and in their order; the columns added
since (comment and revision history, then the optional texts) follow them.

`role` is the system that wrote the row's answer (the answer's own `role`): "pretrained" or
"finetuned" in a two-system campaign, any of the job's system names in a campaign of more (issue 17),
and `preference` names the preferred answer's system the same way (or tie / both_bad). No separate
`system` column: `role` is that column.

By default a row is the rating's current version. `all_revisions` gives one row per kept version
(annotations.models.RatingRevision) × answer instead: that version's scores, verdicts, preference,
comment, when it was saved and that visit's time. `reports.parquet_export` writes the same rows as
typed Parquet; `reports.export_formats` chooses between the three.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models.functions import Length

from annotations.models import Campaign, Rating, User

SPEC_COLUMNS = (
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
# appended after the SPEC's columns: the rater's comment, which version the row is, how many versions
# the rating has, and when the pair was first rated (`rated_at` is when this version was saved)
HISTORY_COLUMNS = ("comment", "revision", "revisions", "first_rated_at")
COLUMNS = SPEC_COLUMNS + HISTORY_COLUMNS
TEXT_COLUMNS = ("prompt_text", "prompt_context", "answer_text")
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CHUNK_SIZE = 2000
ROWS_PER_WRITE = 1000


@dataclass(frozen=True)
class ExportOptions:
    """What an export contains beyond the default columns.

    `with_usernames`: raters by username instead of pseudonym (the API grants it to admins only,
    evalsite.access.EXPORT_USERNAMES; `export_scores --with-usernames` to whoever runs commands).
    `with_texts`: the prompt's text and context and the answer's text on every row.
    `all_revisions`: one row per kept version of each rating instead of its current version."""

    with_usernames: bool = False
    with_texts: bool = False
    all_revisions: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return COLUMNS + TEXT_COLUMNS if self.with_texts else COLUMNS


def neutralise(value: Any) -> Any:
    """Prefix a text cell that a spreadsheet would run as a formula with a single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _other(side: str) -> str:
    return "right" if side == "left" else "left"


# what the rows need from each rating, in this order: the pair's fields (`_HEAD` values), then the
# current version (`_VERSION` values), then with all_revisions a kept version (the same fields, joined in),
# then with texts the prompt's and both answers' texts
_HEAD_LOOKUPS = (
    "assignment__pair_id",
    "assignment__pair__prompt_id",
    "assignment__pair__prompt__external_id",
    "assignment__pair__prompt__task",
    "assignment__annotator_id",  # or the username (with_usernames)
    "assignment__finetuned_side",
    "created_at",
    "pretrained_chars",
    "finetuned_chars",
    "assignment__pair__pretrained_answer__role",  # the systems of the pair's two answers
    "assignment__pair__finetuned_answer__role",
)
_VERSION_LOOKUPS = (
    "score_left",
    "score_right",
    "correct_left",
    "correct_right",
    "preference",
    "comment",
    "duration_ms",
)
_CURRENT_LOOKUPS = (*_VERSION_LOOKUPS, "revision", "updated_at")
# a LEFT JOIN: a rating with no kept version (made before versions were kept) still gives its row
_KEPT_LOOKUPS = (
    *(f"revisions__{name}" for name in _VERSION_LOOKUPS),
    "revisions__number",
    "revisions__rated_at",
)
_TEXT_LOOKUPS = (
    "assignment__pair__prompt__text",
    "assignment__pair__prompt__context",
    "assignment__pair__pretrained_answer__text",
    "assignment__pair__finetuned_answer__text",
)
_HEAD = len(_HEAD_LOOKUPS)
_VERSION = len(_CURRENT_LOOKUPS)


def _rating_tuples(campaign: Campaign, options: ExportOptions) -> Iterator[tuple]:
    """A chunked iterator over one tuple per rating (per kept version with all_revisions), laid out as
    the lookups above say."""
    lookups = list(_HEAD_LOOKUPS) + list(_CURRENT_LOOKUPS)
    if options.with_usernames:
        lookups[4] = "assignment__annotator__username"
    if options.all_revisions:
        lookups += _KEPT_LOOKUPS
    if options.with_texts:
        lookups += _TEXT_LOOKUPS
    queryset = Rating.objects.filter(assignment__pair__campaign=campaign).annotate(
        pretrained_chars=Length("assignment__pair__pretrained_answer__text"),
        finetuned_chars=Length("assignment__pair__finetuned_answer__text"),
    )
    order = ("id", "revisions__number") if options.all_revisions else ("id",)
    return queryset.order_by(*order).values_list(*lookups).iterator(chunk_size=CHUNK_SIZE)


def export_rows(campaign: Campaign, *, iso_times: bool = True, **options: bool) -> Iterator[dict[str, Any]]:
    """The export rows as dicts (raw values: booleans, ints, None), two per rating: left then right.

    `options` are ExportOptions' fields. Times are ISO 8601 strings, or aware datetimes (UTC) when
    `iso_times` is false (for Parquet). Raters are pseudonyms unless `with_usernames`. `revisions` is
    the rating's current revision number: every post keeps its version, numbered from 1, so the
    current number is also how many versions there are."""
    opts = ExportOptions(**options)
    pseudonyms: dict[int, str] = {}
    campaign_id = campaign.pk
    as_time = datetime.isoformat if iso_times else (lambda value: value)
    kept_at, texts_at = _HEAD + _VERSION, _HEAD + _VERSION * (2 if opts.all_revisions else 1)
    for values in _rating_tuples(campaign, opts):
        pair_id, prompt_id, external_id, task, annotator, ft_side, first_rated = values[:7]
        pt_chars, ft_chars, pt_system, ft_system = values[7:_HEAD]
        current = values[_HEAD:kept_at]
        kept = values[kept_at:texts_at]
        # the version this row shows: the current one, or (all_revisions) the kept one joined in
        version = kept if kept and kept[-2] is not None else current
        score_left, score_right, correct_left, correct_right, preference = version[:5]
        comment, duration, revision, saved = version[5:]
        if not opts.with_usernames:
            name = pseudonyms.get(annotator)
            if name is None:
                name = pseudonyms[annotator] = User(pk=annotator).pseudonym
            annotator = name
        # each side's answer by the system that wrote it (pretrained / finetuned in a two-system campaign)
        role_at = {ft_side: ft_system, _other(ft_side): pt_system}
        preference = role_at.get(preference, preference)  # tie / both_bad stay as they are
        rated_at, first_rated_at = as_time(saved), as_time(first_rated)
        for position, score, correct in (
            ("left", score_left, correct_left),
            ("right", score_right, correct_right),
        ):
            role = role_at[position]
            shows_later = position == ft_side  # the pair's `finetuned_answer` is on this side
            row = {
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
                "preference": preference,
                "rated_at": rated_at,
                "duration_ms": duration,
                "answer_chars": ft_chars if shows_later else pt_chars,
                "comment": comment,
                "revision": revision,
                "revisions": current[-2],
                "first_rated_at": first_rated_at,
            }
            if opts.with_texts:
                prompt_text, prompt_context, pt_text, ft_text = values[texts_at:]
                row["prompt_text"] = prompt_text
                row["prompt_context"] = prompt_context
                row["answer_text"] = ft_text if shows_later else pt_text
            yield row


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return neutralise(value)


def stream_csv(campaign: Campaign, **options: bool) -> Iterator[str]:
    """CSV text in pieces of about ROWS_PER_WRITE rows, header first. Every text cell a spreadsheet
    would run as a formula (comments and texts included) starts with a single quote."""
    header = ExportOptions(**options).columns
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    pending = 0
    for row in export_rows(campaign, **options):
        writer.writerow([_csv_cell(value) for value in row.values()])
        pending += 1
        if pending >= ROWS_PER_WRITE:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


def stream_jsonl(campaign: Campaign, **options: bool) -> Iterator[str]:
    """One JSON object per line with the CSV's fields; values keep their types (true/false/null).

    JSON is not opened by spreadsheets, so values are written as stored, not neutralised.
    """
    lines: list[str] = []
    for row in export_rows(campaign, **options):
        lines.append(json.dumps(row, ensure_ascii=False))
        if len(lines) >= ROWS_PER_WRITE:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


def stream(campaign: Campaign, *, fmt: str = "csv", **options: bool) -> Iterator[str]:
    """The CSV or JSONL export in pieces of text (reports.export_formats adds Parquet)."""
    if fmt == "csv":
        return stream_csv(campaign, **options)
    if fmt == "jsonl":
        return stream_jsonl(campaign, **options)
    raise ValueError(f"unknown export format {fmt!r}: use csv or jsonl")
