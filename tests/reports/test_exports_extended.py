"""Exports, issue 16: comments and revision history, texts, every revision, Parquet (read back with pandas
and Hugging Face `datasets`), and the API's options and refusals."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotations.assignment import assignment_next
from annotations.models import Rating, User
from annotations.rating import rating_submit
from reports import export_formats, exports, parquet_export
from tests.support.annotation_data import make_campaign
from tests.support.report_data import RATINGS, build_hand_campaign

pytestmark = pytest.mark.django_db

ADDED = ["comment", "revision", "revisions", "first_rated_at"]
TEXTS = ["prompt_text", "prompt_context", "answer_text"]
FIRST = {"score_left": 4, "score_right": 2, "correct_left": True, "correct_right": None, "preference": "left"}
SECOND = {
    "score_left": 1,
    "score_right": 5,
    "correct_left": False,
    "correct_right": True,
    "preference": "right",
}


@pytest.fixture
def edited(annotator):
    """A campaign whose one rating was posted, then edited: two kept versions, a formula comment."""
    campaign = make_campaign(prompts=2, allow_not_sure=True)
    assignment = assignment_next(campaign=campaign, annotator=annotator)
    rating_submit(assignment=assignment, annotator=annotator, comment="first look", duration_ms=1000, **FIRST)
    rating_submit(
        assignment=assignment, annotator=annotator, comment="=2+2 on reflection", duration_ms=500, **SECOND
    )
    rating = Rating.objects.get(assignment=assignment)
    return campaign, rating


def _csv(campaign, **options) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO("".join(exports.stream_csv(campaign, **options)))))


def _jsonl(campaign, **options) -> list[dict]:
    return [json.loads(line) for line in "".join(exports.stream_jsonl(campaign, **options)).splitlines()]


def test_current_version_rows_carry_comment_revision_and_first_rated(edited):
    campaign, rating = edited
    rows = _csv(campaign)
    assert list(rows[0])[-4:] == ADDED
    assert len(rows) == 2
    revs = list(rating.revisions.order_by("number"))
    for row in rows:
        assert row["comment"] == "'=2+2 on reflection"  # a spreadsheet would run it: neutralised
        assert (row["revision"], row["revisions"]) == ("2", "2")
        assert row["rated_at"] == rating.updated_at.isoformat() == revs[1].rated_at.isoformat()
        assert row["first_rated_at"] == rating.created_at.isoformat()
        assert row["duration_ms"] == "1500"  # the rating's total over both visits
    by_position = {r["position"]: r for r in rows}
    assert (by_position["left"]["score"], by_position["right"]["score"]) == ("1", "5")
    assert (by_position["left"]["correct"], by_position["right"]["correct"]) == ("false", "true")
    line = _jsonl(campaign)[0]
    assert line["comment"] == "=2+2 on reflection" and line["revision"] == 2 and line["revisions"] == 2
    assert line["first_rated_at"] == rating.created_at.isoformat()


def test_all_revisions_gives_each_version_with_its_own_visit(edited):
    campaign, rating = edited
    rows = _csv(campaign, all_revisions=True)
    assert [(r["revision"], r["position"]) for r in rows] == [
        ("1", "left"),
        ("1", "right"),
        ("2", "left"),
        ("2", "right"),
    ]
    first, second = list(rating.revisions.order_by("number"))
    old_left, old_right, new_left = rows[0], rows[1], rows[2]
    assert (old_left["score"], old_right["score"]) == ("4", "2")
    assert (old_left["correct"], old_right["correct"]) == ("true", "")
    assert old_left["comment"] == "first look" and new_left["comment"] == "'=2+2 on reflection"
    assert old_left["duration_ms"] == "1000" and new_left["duration_ms"] == "500"  # that visit alone
    assert old_left["rated_at"] == first.rated_at.isoformat()
    assert new_left["rated_at"] == second.rated_at.isoformat()
    # the preference is in role terms, as in the default export; the first version preferred the left answer
    assignment = rating.assignment
    assert old_left["preference"] == assignment.role_at("left")
    assert new_left["preference"] == assignment.role_at("right")
    assert {r["revisions"] for r in rows} == {"2"}
    assert {r["first_rated_at"] for r in rows} == {rating.created_at.isoformat()}


def test_ratings_without_kept_versions_count_as_one(db):
    """Ratings made before versions were kept (the hand campaign writes Rating rows directly) still
    export once, as revision 1 of 1, in both modes."""
    hand = build_hand_campaign()
    current = _csv(hand.campaign)
    every = _csv(hand.campaign, all_revisions=True)
    assert current == every
    assert len(current) == 2 * len(RATINGS)
    assert {(r["revision"], r["revisions"], r["comment"]) for r in current} == {("1", "1", "")}


def test_with_texts_adds_prompt_context_and_each_answers_text(db):
    prompts = [("p1", "sentiment", "", "=pretrained says", "fine-tuned says")]
    hand = build_hand_campaign(prompts=prompts, ratings=[RATINGS[0]], name="texts")
    rows = _csv(hand.campaign, with_texts=True)
    assert list(rows[0]) == list(exports.COLUMNS) + TEXTS
    by_role = {r["role"]: r for r in rows}
    assert by_role["pretrained"]["answer_text"] == "'=pretrained says"
    assert by_role["finetuned"]["answer_text"] == "fine-tuned says"
    assert {r["prompt_text"] for r in rows} == {"q 0"}
    assert {r["prompt_context"] for r in rows} == {""}
    raw = {r["role"]: r for r in _jsonl(hand.campaign, with_texts=True)}
    assert raw["pretrained"]["answer_text"] == "=pretrained says"  # JSONL keeps it as stored
    assert "answer_text" not in _csv(hand.campaign)[0]


def _as_csv_cell(value) -> str:
    """A value read back from Parquet, written as the CSV export writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(exports.neutralise(value))


@pytest.mark.parametrize("options", [{}, {"with_texts": True, "all_revisions": True}])
def test_parquet_loads_in_pandas_and_datasets_with_the_csv_values(edited, tmp_path, options):
    import pandas as pd
    from datasets import Dataset

    campaign, _ = edited
    path = tmp_path / "scores.parquet"
    flags = ["--with-texts", "--all-revisions"] if options else []
    call_command(
        "export_scores", "--campaign", str(campaign.pk), "--format", "parquet", "--output", str(path), *flags
    )
    expected = _csv(campaign, **options)
    header = list(exports.ExportOptions(**options).columns)

    frame = pd.read_parquet(path)
    assert list(frame.columns) == header and len(frame) == len(expected)
    dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
    for name in ("campaign_id", "pair_id", "prompt_id", "score", "answer_chars", "revision", "revisions"):
        assert dtypes[name] == "int64", name
    assert dtypes["correct"] == "boolean" and dtypes["duration_ms"] == "Int64"
    assert dtypes["rated_at"] == dtypes["first_rated_at"] == "datetime64[us, UTC]"
    assert dtypes["comment"] == dtypes["annotator"] == "str"
    if options:
        assert frame["correct"].isna().sum() == 1  # revision 1 left one verdict empty: <NA>, not False

    data = Dataset.from_parquet(str(path), cache_dir=str(tmp_path / "hf"))
    assert data.column_names == header
    assert data.features["correct"].dtype == "bool"
    assert data.features["rated_at"].dtype == "timestamp[us, tz=UTC]"
    assert data.features["duration_ms"].dtype == "int64"
    for loaded, wanted in zip(data, expected, strict=True):
        assert {name: _as_csv_cell(value) for name, value in loaded.items()} == wanted


def test_parquet_is_written_in_row_groups_as_rows_come(db, monkeypatch, tmp_path):
    monkeypatch.setattr(parquet_export, "ROWS_PER_GROUP", 4)
    hand = build_hand_campaign()
    pieces = list(export_formats.stream(hand.campaign, fmt="parquet"))
    # 18 rows: four full groups of 4, each handed on as soon as written, then the last 2 rows and the footer
    assert len(pieces) == 5 and all(len(piece) > 100 for piece in pieces)
    path = tmp_path / "x.parquet"
    path.write_bytes(b"".join(pieces))
    meta = pq.ParquetFile(path).metadata
    assert (meta.num_rows, meta.num_row_groups) == (18, 5)


def test_parquet_of_a_campaign_without_ratings_is_an_empty_table(db, tmp_path):
    import pandas as pd

    campaign = make_campaign(prompts=1)
    path = tmp_path / "empty.parquet"
    path.write_bytes(b"".join(export_formats.stream(campaign, fmt="parquet")))
    frame = pd.read_parquet(path)
    assert len(frame) == 0 and list(frame.columns) == list(exports.COLUMNS)


def test_parquet_command_needs_an_output_file(edited):
    campaign, _ = edited
    with pytest.raises(CommandError, match="--format parquet: give --output"):
        call_command("export_scores", "--campaign", str(campaign.pk), "--format", "parquet")


def test_command_options_match_the_stream(edited):
    campaign, _ = edited
    out = io.StringIO()
    call_command(
        "export_scores",
        "--campaign",
        str(campaign.pk),
        "--format",
        "jsonl",
        "--with-texts",
        "--all-revisions",
        stdout=out,
    )
    assert out.getvalue() == "".join(exports.stream_jsonl(campaign, with_texts=True, all_revisions=True))


# ---- the API ---------------------------------------------------------------------------------------


def test_api_parquet_download_for_researchers(client, researcher, edited, tmp_path):
    import pandas as pd

    campaign, _ = edited
    client.force_login(researcher)
    response = client.get(f"/api/campaigns/{campaign.pk}/export.parquet?texts=1&revisions=all")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    assert response["Content-Disposition"] == f'attachment; filename="campaign-{campaign.pk}-scores.parquet"'
    path = tmp_path / "download.parquet"
    path.write_bytes(b"".join(response.streaming_content))
    frame = pd.read_parquet(path)
    assert list(frame.columns) == list(exports.COLUMNS) + TEXTS
    assert sorted(frame["revision"]) == [1, 1, 2, 2]
    assert set(frame["annotator"]) == {User.objects.get(username="alice").pseudonym}


def test_api_csv_options_and_comment(client, researcher, edited):
    campaign, _ = edited
    client.force_login(researcher)
    body = b"".join(client.get(f"/api/campaigns/{campaign.pk}/export.csv?texts=1").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert list(rows[0])[-3:] == TEXTS and rows[0]["comment"] == "'=2+2 on reflection"
    assert rows[0]["prompt_context"].startswith("Review ")
    body = b"".join(client.get(f"/api/campaigns/{campaign.pk}/export.jsonl?revisions=all").streaming_content)
    assert [json.loads(line)["revision"] for line in body.decode().splitlines()] == [1, 1, 2, 2]


@pytest.mark.parametrize(
    ("query", "field"),
    [("texts=maybe", "texts"), ("revisions=some", "revisions"), ("texts=2&revisions=x", "revisions")],
)
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_api_bad_options_are_a_400_naming_the_option(client, researcher, edited, query, field, fmt):
    campaign, _ = edited
    client.force_login(researcher)
    response = client.get(f"/api/campaigns/{campaign.pk}/export.{fmt}?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_api_parquet_refuses_annotators_and_usernames_for_researchers(
    client, annotator, researcher, admin_user, edited
):
    campaign, _ = edited
    url = f"/api/campaigns/{campaign.pk}/export.parquet"
    client.force_login(annotator)
    assert client.get(url).status_code == 403
    client.force_login(researcher)
    assert client.get(url + "?with_usernames=1").status_code == 403
    assert client.get("/api/campaigns/999999/export.parquet").status_code == 404
    client.force_login(admin_user)
    response = client.get(url + "?with_usernames=1")
    assert response.status_code == 200
    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content)))
    assert set(table.column("annotator").to_pylist()) == {"alice"}


# ---- the report's JSON, documented ---------------------------------------------------------------------


def test_every_top_level_report_key_is_documented(db):
    from pathlib import Path

    from reports.building import campaign_report

    doc = (Path(__file__).resolve().parents[2] / "docs" / "report-schema.md").read_text(encoding="utf-8")
    report = campaign_report(build_hand_campaign().campaign)
    missing = [key for key in report if f"`{key}`" not in doc]
    assert not missing, f"docs/report-schema.md does not describe: {missing}"
    for block in ("relevance", "win_rate", "coverage", "length_bias", "cost"):
        undocumented = [key for key in report[block] if key not in doc]
        assert not undocumented, (block, undocumented)
