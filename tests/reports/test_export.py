"""Score export: columns, role/position mapping, preference translation, formula neutralisation, streaming."""

from __future__ import annotations

import csv
import io
import json
import types

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotations.models import User
from reports import exports
from reports.exports import COLUMNS, neutralise
from tests.support.report_data import PROMPTS, RATINGS, build_hand_campaign

pytestmark = pytest.mark.django_db

SPEC_COLUMNS = (
    "campaign_id, pair_id, prompt_id, prompt_external_id, task, annotator, role, position, score, correct, "
    "preference, rated_at, duration_ms, answer_chars"
).split(", ")
# appended after the SPEC's columns, in this order (issue 16)
HEADER = [*SPEC_COLUMNS, "comment", "revision", "revisions", "first_rated_at"]


@pytest.fixture
def hand():
    return build_hand_campaign()


def _csv(campaign, **kwargs) -> list[dict[str, str]]:
    text = "".join(exports.stream_csv(campaign, **kwargs))
    return list(csv.DictReader(io.StringIO(text)))


def test_columns_are_in_spec_order(hand):
    text = "".join(exports.stream_csv(hand.campaign))
    assert text.splitlines()[0].split(",") == HEADER
    assert list(COLUMNS) == HEADER


def test_csv_round_trip_gives_back_the_stored_ratings_in_role_terms(hand):
    rows = _csv(hand.campaign)
    assert len(rows) == 2 * len(RATINGS)
    texts = {p[0]: {"pretrained": p[3], "finetuned": p[4]} for p in PROMPTS}
    for n, (external_id, rater, side, pt_score, ft_score, pt_ok, ft_ok, pref) in enumerate(RATINGS):
        left, right = rows[2 * n], rows[2 * n + 1]
        assert (left["position"], right["position"]) == ("left", "right")
        by_role = {left["role"]: left, right["role"]: right}
        assert by_role["finetuned"]["position"] == side
        expected = {"pretrained": (pt_score, pt_ok), "finetuned": (ft_score, ft_ok)}
        for role, (score, ok) in expected.items():
            row = by_role[role]
            assert row["score"] == str(score)
            assert row["correct"] == {True: "true", False: "false", None: ""}[ok]
            assert row["preference"] == pref
            assert row["answer_chars"] == str(len(texts[external_id][role]))
            assert row["prompt_external_id"] == external_id
            assert row["campaign_id"] == str(hand.campaign.pk)
            assert row["pair_id"] == str(hand.pairs[external_id].pk)
            assert row["prompt_id"] == str(hand.pairs[external_id].prompt_id)
            assert row["annotator"] == hand.annotators[rater].pseudonym
            assert row["duration_ms"] == str(1000 * (n + 1))
            assert row["rated_at"] == hand.ratings[n].updated_at.isoformat()


def test_usernames_only_on_request(hand):
    names = {u.username for u in hand.annotators}
    assert not names & {r["annotator"] for r in _csv(hand.campaign)}
    assert {r["annotator"] for r in _csv(hand.campaign, with_usernames=True)} == names


@pytest.mark.parametrize("payload", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_neutralise_prefixes_formula_cells(payload):
    assert neutralise(payload) == "'" + payload
    assert neutralise("plain") == "plain" and neutralise(5) == 5 and neutralise(None) is None


def test_formula_payloads_in_stored_values_are_neutralised_in_csv(db):
    prompts = [('=HYPERLINK("http://x")', "+task", "", "a", "b"), ("@evil", "-cmd", "", "c", "d")]
    ratings = [
        ('=HYPERLINK("http://x")', 0, "left", 2, 3, None, None, "tie"),
        ("@evil", 1, "right", 4, 1, True, False, "pretrained"),
    ]
    hc = build_hand_campaign(prompts=prompts, ratings=ratings, name="formula")
    User.objects.filter(pk=hc.annotators[0].pk).update(username="=cmd|'/C calc'!A0")
    rows = _csv(hc.campaign, with_usernames=True)
    assert {r["prompt_external_id"] for r in rows} == {'\'=HYPERLINK("http://x")', "'@evil"}
    assert {r["task"] for r in rows} == {"'+task", "'-cmd"}
    assert "'=cmd|'/C calc'!A0" in {r["annotator"] for r in rows}
    for row in rows:
        for value in row.values():
            assert not value.startswith(exports.FORMULA_PREFIXES)


def test_jsonl_has_the_same_fields_with_types(hand):
    lines = "".join(exports.stream_jsonl(hand.campaign)).splitlines()
    rows = [json.loads(line) for line in lines]
    csv_rows = _csv(hand.campaign)
    assert len(rows) == len(csv_rows)
    assert list(rows[0]) == HEADER
    first = RATINGS[0]
    ft_row = next(r for r in rows[:2] if r["role"] == "finetuned")
    assert ft_row["score"] == first[4] and ft_row["correct"] is True and ft_row["preference"] == "finetuned"
    third = rows[4:6]  # rating 3 has an empty pre-trained verdict
    assert next(r for r in third if r["role"] == "pretrained")["correct"] is None


def test_export_is_a_generator_reading_the_database_in_chunks(hand, monkeypatch):
    monkeypatch.setattr(exports, "ROWS_PER_WRITE", 4)
    pieces = exports.stream_csv(hand.campaign)
    assert isinstance(pieces, types.GeneratorType)
    chunks = list(pieces)
    assert len(chunks) > 3  # written out as it goes, not built up in one string


def test_export_command_writes_csv_to_stdout_and_jsonl_to_a_file(hand, tmp_path):
    out = io.StringIO()
    call_command("export_scores", "--campaign", str(hand.campaign.pk), stdout=out)
    assert out.getvalue() == "".join(exports.stream_csv(hand.campaign))
    path = tmp_path / "scores.jsonl"
    call_command(
        "export_scores", "--campaign", str(hand.campaign.pk), "--format", "jsonl", "--output", str(path)
    )
    assert path.read_text(encoding="utf-8") == "".join(exports.stream_jsonl(hand.campaign))


def test_export_command_names_an_unknown_campaign(db):
    with pytest.raises(CommandError, match="--campaign: no campaign with id 12345"):
        call_command("export_scores", "--campaign", "12345")


def test_export_command_names_an_unwritable_output(hand, tmp_path):
    with pytest.raises(CommandError, match="--output: cannot write"):
        call_command(
            "export_scores", "--campaign", str(hand.campaign.pk), "--output", str(tmp_path / "no" / "x.csv")
        )
