"""The report's `systems` section (issue 17): the campaign's two systems through the many-system
analysis. Preferences are read in role terms whatever side each answer was shown on, the ranking
agrees with the headline, and its statement follows the headline's rules."""

from __future__ import annotations

import pytest

from reports.building import campaign_report
from tests.support.report_data import build_hand_campaign, generated_prompts

pytestmark = pytest.mark.django_db


def _rows(prompt_ids, winner: str):
    """One rating per prompt: the `winner` role preferred and scored higher, sides alternating."""
    rows = []
    for i, external_id in enumerate(prompt_ids):
        pt, ft = (2, 4) if winner == "finetuned" else (4, 2)
        rows.append((external_id, i % 3, ("left", "right")[i % 2], pt, ft, None, None, winner))
    return rows


def test_the_preferred_system_leads_whichever_side_it_was_shown_on():
    prompts = generated_prompts({"sentiment": 20, "recommendation": 20})
    ids = [p[0] for p in prompts]
    hc = build_hand_campaign(prompts=prompts, ratings=_rows(ids, "finetuned"), name="sys-ft")
    systems = campaign_report(hc.campaign)["systems"]
    rows = systems["leaderboard"]["rows"]
    assert [r["system"] for r in rows] == ["finetuned", "pretrained"]
    assert rows[0]["ci95"][0] > 0 > rows[1]["ci95"][1] and rows[0]["n_prompts"] == 40
    statement = systems["leaderboard"]["statement"]
    assert not statement["refused"] and "finetuned > pretrained" in statement["text"]
    assert systems["win_matrix"] and systems["baseline"]["system"] == "pretrained"
    assert set(systems["by_task"]) == {"sentiment", "recommendation"}

    other = build_hand_campaign(prompts=prompts, ratings=_rows(ids, "pretrained"), name="sys-pt")
    assert [r["system"] for r in campaign_report(other.campaign)["systems"]["leaderboard"]["rows"]] == [
        "pretrained",
        "finetuned",
    ]


def test_the_statement_is_refused_below_thirty_prompts_and_with_no_ratings():
    prompts = generated_prompts({"sentiment": 10})
    hc = build_hand_campaign(prompts=prompts, ratings=_rows([p[0] for p in prompts], "finetuned"), name="few")
    statement = campaign_report(hc.campaign)["systems"]["leaderboard"]["statement"]
    assert statement["refused"] and statement["text"] is None
    empty = build_hand_campaign(prompts=prompts, ratings=[], name="none")
    assert campaign_report(empty.campaign)["systems"] == {
        "systems": ["pretrained", "finetuned"],
        "reason": "no ratings yet",
    }


def test_the_statement_is_refused_while_coverage_is_uneven():
    prompts = generated_prompts({"sentiment": 40, "recommendation": 40})
    rated = [p[0] for p in prompts if p[1] == "sentiment"]  # one task of two rated
    hc = build_hand_campaign(prompts=prompts, ratings=_rows(rated, "finetuned"), name="uneven")
    report = campaign_report(hc.campaign)
    statement = report["systems"]["leaderboard"]["statement"]
    assert report["coverage"]["even"] is False
    assert statement["refused"] and "coverage is too uneven" in statement["reason"]
    assert "finetuned > pretrained" in statement["would_read"]


def test_the_text_report_prints_the_leaderboard_the_disagreement_queue_and_comments():
    from io import StringIO

    from django.core.management import call_command

    from annotations.models import Rating

    prompts = generated_prompts({"sentiment": 20, "recommendation": 20})
    ids = [p[0] for p in prompts]
    rows = _rows(ids, "finetuned")
    # a second rater on the first prompt who sees it the other way round: the queue's first pair
    rows.append((ids[0], 1, "right", 5, 1, None, None, "pretrained"))
    hc = build_hand_campaign(prompts=prompts, ratings=rows, name="text")
    Rating.objects.filter(pk=hc.ratings[-1].pk).update(comment="the second answer  ignores\nthe question")
    out = StringIO()
    call_command("report", "--campaign", str(hc.campaign.pk), "--format", "text", stdout=out)
    text = out.getvalue()
    assert "Leaderboard (Bradley–Terry strength" in text
    assert "  1. fine-tuned" in text and "  2. pre-trained" in text
    assert "The data tell every pair apart: fine-tuned > pre-trained" in text
    pair = hc.pairs[ids[0]].pk
    assert "Disagreement queue: 1 pair where raters disagree" in text
    assert f"  pair {pair} ({ids[0]}, sentiment): score spread" in text and "preference split" in text
    assert "Comments: 1 comment; the newest 1" in text
    assert f"  pair {pair} (sentiment), rater-" in text and ": the second answer ignores the question" in text


def test_the_report_codes_the_same_judgments_as_the_checked_table_reader():
    """The section builds its judgment table from the campaign's arrays (fast); the same ratings read
    as judgment mappings through `judgment_table` (checked) give the same strengths."""
    from reports.statistics.systems import rank_systems
    from tests.support.report_data import PROMPTS, RATINGS

    hc = build_hand_campaign(name="same")
    report = campaign_report(hc.campaign)
    task = {p[0]: p[1] for p in PROMPTS}
    judgments = [
        {"prompt": ext, "task": task[ext], "system_a": "pretrained", "system_b": "finetuned", "score_a": pt,
         "score_b": ft, "preference": {"pretrained": "a", "finetuned": "b"}.get(pref, pref)}
        for ext, _, _, pt, ft, _, _, pref in RATINGS
    ]  # fmt: skip
    direct = rank_systems(judgments, systems=["pretrained", "finetuned"], baseline="pretrained")
    for name in ("pretrained", "finetuned"):
        mine, theirs = report["systems"]["strengths"][name], direct["strengths"][name]
        assert mine["strength"] == pytest.approx(theirs["strength"])
        assert mine["ci95"] == pytest.approx(theirs["ci95"])
    assert report["systems"]["win_matrix"] == direct["win_matrix"]
