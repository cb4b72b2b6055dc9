"""The report of a campaign of more than two systems (issue 17): the leaderboard ranks every system the
raters judged, the two-system figures read only the pre-trained vs fine-tuned pairs, human strength
meets validation loss for the kept epochs of the run, and the page and the text report show it all.

The campaigns are laid by `tests.support.systems_data` (four systems: pre-trained, fine-tuned, a kept
epoch and an outside system) and rated by simulated raters of known taste
(`tests.support.systems_ratings`)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from annotations.models import Pair
from generation.models import FinetuneRun, JobSystem
from reports.building import campaign_report
from tests.support.report_data import build_hand_campaign
from tests.support.systems_data import make_systems_job, make_systems_pairs
from tests.support.systems_ratings import copy_pairs, rate_by_strength

pytestmark = pytest.mark.django_db

SYSTEMS = ["pretrained", "finetuned", "epoch-005", "outside"]
# the raters' taste (Bradley–Terry strengths): outside > finetuned > epoch-005 > pretrained
TASTE = {"outside": 1.5, "finetuned": 0.5, "epoch-005": -0.5, "pretrained": -1.5}
# the run behind the job: ten epochs, the best (the fine-tuned system) is epoch 8
RUN_METRICS = {
    "best_epoch": 8,
    "epochs_run": 10,
    "early_stopped": True,
    "val_loss": [2.0, 1.8, 1.6, 1.5, 1.4, 1.35, 1.31, 1.3, 1.32, 1.36],
}


def _rated_campaign(
    prompts: int = 96, *, with_run: bool = True, taste: dict[str, float] = TASTE, name: str = "systems-set"
):
    job = make_systems_job(prompts=prompts, dataset_name=name)
    if with_run:
        run = FinetuneRun.objects.create(
            base_model="hub/base-model", output_dir="/srv/adapters", status="succeeded", metrics=RUN_METRICS
        )
        job.finetune_run = run
        job.save(update_fields=["finetune_run"])
        JobSystem.objects.filter(job=job, name="epoch-005").update(finetune_run=run)
    campaign = make_systems_pairs(job, overlap=3)
    rate_by_strength(campaign, taste, raters=3, seed=3)
    return campaign


def _paths(value, prefix: str = "") -> set[str]:
    """Every key path of a JSON value ("a.b", lists as "[]")."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out |= {path, *_paths(item, path)}
    elif isinstance(value, list):
        for item in value:
            out |= _paths(item, prefix + "[]")
    return out


def test_the_leaderboard_recovers_the_raters_taste_over_four_systems():
    campaign = _rated_campaign()
    section = campaign_report(campaign)["systems"]
    assert section["systems"] == SYSTEMS
    rows = section["leaderboard"]["rows"]
    assert [r["system"] for r in rows] == ["outside", "finetuned", "epoch-005", "pretrained"]
    assert all(r["ci95"] and r["ci95"][0] < r["strength"] < r["ci95"][1] for r in rows)
    assert rows[0]["ci95"][0] > rows[-1]["ci95"][1]  # the strongest and the weakest are told apart
    assert len(section["pairwise"]) == 6 and set(section["win_matrix"]["cells"]) == set(SYSTEMS)
    assert set(section["baseline"]["comparisons"]) == {"finetuned", "epoch-005", "outside"}
    assert set(section["by_task"]) == {"sentiment", "features", "recommendation", "relevance"}
    # accuracy per task and system, each answer's majority verdict over every rating that showed it
    accuracy = section["accuracy"]
    assert set(accuracy) == {"sentiment", "features", "recommendation", "relevance"}
    for task in accuracy:
        assert list(accuracy[task]) == SYSTEMS
        best, worst = accuracy[task]["outside"], accuracy[task]["pretrained"]
        assert best["n"] > 0 and best["accuracy"] > worst["accuracy"] and best["ci95"][0] <= best["accuracy"]
    assert section["scope"]["n_pairs"] == 96 and section["scope"]["n_two_system_pairs"] == 16


def test_the_two_system_figures_read_only_the_pretrained_vs_finetuned_pairs():
    campaign = _rated_campaign()
    report = campaign_report(campaign)
    two = list(
        Pair.objects.filter(
            campaign=campaign, pretrained_answer__role="pretrained", finetuned_answer__role="finetuned"
        ).order_by("id")
    )
    assert len(two) == 16
    alone = campaign_report(copy_pairs(campaign, two, "only pre-trained vs fine-tuned"))
    assert report["n_prompts"] == alone["n_prompts"] == 16 and report["n_ratings"] == alone["n_ratings"] == 48
    # every two-system figure is the one of a campaign holding only those pairs and their ratings
    per_campaign = {"campaign", "campaign_name", "systems", "disagreements", "n_disagreeing_pairs"}
    for key in set(report) - per_campaign:
        assert report[key] == alone[key], key
    assert set(report) == set(alone)
    # the systems section reads every pair and says what the rest covers
    assert report["systems"]["n_ratings"] == 288 and alone["systems"]["n_ratings"] == 48
    scope = report["systems"]["scope"]
    assert (scope["n_pairs"], scope["n_two_system_pairs"]) == (
        96,
        16,
    ) and "16 of the campaign's 96 pairs" in scope["text"]


def test_the_overview_headline_is_the_reports_on_a_campaign_of_four_systems():
    from annotations.models import Campaign
    from reports.overview import campaign_rows

    campaign = _rated_campaign(48)
    report = campaign_report(campaign)
    (row,) = campaign_rows(Campaign.objects.filter(pk=campaign.pk))
    assert row.n_pairs == report["n_prompts"] == 8 and row.n_ratings == report["n_ratings"] == 24
    assert row.difference == pytest.approx(report["relevance"]["difference"])


def test_checkpoints_set_human_strength_against_validation_loss():
    campaign = _rated_campaign()
    block = campaign_report(campaign)["systems"]["checkpoints"]
    rows = [(r["epoch"], r["system"], r["val_loss"], r["kept"]) for r in block["rows"]]
    # epoch 5 is the kept epoch system; the fine-tuned system is the run's best epoch (8, val_loss[7])
    assert rows == [(5, "epoch-005", 1.4, False), (8, "finetuned", 1.3, True)]
    assert all(r["strength"] is not None and r["ci95"] for r in block["rows"])
    assert block["kept_epoch"] == 8 and block["preferred_epoch"] == 8 and block["notes"] == []
    statement = block["statement"]
    assert not statement["refused"] and statement["verdict"] == "agree"
    assert statement["text"].startswith("The raters prefer epoch 8 (finetuned, validation loss 1.3")

    # raters who prefer the earlier epoch: validation loss and human preference disagree
    taste = {**TASTE, "epoch-005": 1.0, "finetuned": -0.5}
    other = campaign_report(_rated_campaign(taste=taste, name="prefers-epoch-5"))["systems"]["checkpoints"]
    assert other["preferred_epoch"] == 5 and other["statement"]["verdict"] == "disagree"
    assert "validation loss and human preference disagree" in other["statement"]["text"]


def test_checkpoints_without_a_run_or_without_epochs_say_why():
    without_run = campaign_report(_rated_campaign(48, with_run=False))["systems"]["checkpoints"]
    assert [r["epoch"] for r in without_run["rows"]] == [5] and "not known" in without_run["notes"][0]
    assert without_run["statement"]["refused"] and "no other epoch" in without_run["statement"]["reason"]

    job = make_systems_job(
        prompts=24, dataset_name="no-epochs", extra=(("outside", JobSystem.Kind.IMPORTED, None, None),)
    )
    campaign = make_systems_pairs(job)
    rate_by_strength(campaign, {"pretrained": 0.0, "finetuned": 0.5, "outside": 1.0})
    section = campaign_report(campaign)["systems"]
    assert section["systems"] == ["pretrained", "finetuned", "outside"]
    assert section["checkpoints"]["rows"] == [] and "kept epoch" in section["checkpoints"]["reason"]


def test_a_campaign_of_four_systems_without_ratings_shows_its_epochs_and_no_ranking(client, researcher):
    job = make_systems_job(prompts=8, dataset_name="unrated")
    campaign = make_systems_pairs(job)
    section = campaign_report(campaign)["systems"]
    assert section["reason"] == "no ratings yet" and section["systems"] == SYSTEMS
    assert section["scope"]["n_pairs"] == 8 and "accuracy" not in section
    assert [r["epoch"] for r in section["checkpoints"]["rows"]] == [5]
    assert (
        section["checkpoints"]["rows"][0]["strength"] is None
        and section["checkpoints"]["statement"]["refused"]
    )
    client.force_login(researcher)
    page = client.get(f"/campaigns/{campaign.pk}/report/")
    assert page.status_code == 200 and b'id="checkpoint-table"' in page.content


def test_the_disagreement_queue_reads_every_pair_and_names_its_systems():
    campaign = _rated_campaign()
    report = campaign_report(campaign)
    rows = report["disagreements"]
    assert rows and report["n_disagreeing_pairs"] > 16  # more than the pre-trained vs fine-tuned pairs
    shown = {tuple(r["systems"]) for r in rows}
    assert any(pair != ("pretrained", "finetuned") for pair in shown)
    pairs = {
        p.pk: (p.pretrained_answer.role, p.finetuned_answer.role)
        for p in Pair.objects.filter(campaign=campaign)
    }
    for row in rows:
        a, b = pairs[row["pair"]]
        assert row["systems"] == [a, b] and list(row["score_spread_by_role"]) == [a, b]
        assert list(row["preferences"]) == [b, a, "tie", "both_bad"]
        assert sum(row["preferences"].values()) == row["n_ratings"]
        assert set(row["split_verdict_roles"]) <= {a, b}


def test_the_page_and_the_text_report_show_every_system(client, researcher):
    campaign = _rated_campaign()
    client.force_login(researcher)
    page = client.get(f"/campaigns/{campaign.pk}/report/")
    assert page.status_code == 200
    html = page.content.decode()
    leaderboard = html[html.index('id="leaderboard"') : html.index('id="accuracy"')]
    first_table = leaderboard[: leaderboard.index("</table>")]
    assert [name in first_table for name in ("outside", "fine-tuned", "epoch-005", "pre-trained")] == [
        True
    ] * 4
    for table in (
        "win-matrix-table",
        "baseline-table",
        "task-ranking-table",
        "system-accuracy-table",
        "checkpoint-table",
    ):
        assert f'id="{table}"' in leaderboard, table
    checkpoints = leaderboard[leaderboard.index('id="checkpoint-table"') :]
    assert "1.4000" in checkpoints and "1.3000" in checkpoints and "<strong>kept</strong>" in checkpoints
    assert "The raters prefer epoch 8 (fine-tuned" in checkpoints
    chart = page.context["checkpoint_chart"]
    assert [p["label"] for p in chart["points"]] == ["epoch 5", "epoch 8"] and chart["points"][1]["kept"]
    assert 'id="checkpoint-chart"' in html and html.count("<title>epoch ") == 2
    assert 'id="systems-scope"' in html and "16 of the campaign&#x27;s 96 pairs" in html

    out = StringIO()
    call_command("report", "--campaign", str(campaign.pk), "--format", "text", stdout=out)
    text = out.getvalue()
    board = ("  1. outside", "  2. fine-tuned", "  3. epoch-005", "  4. pre-trained")
    blocks = (
        "Win matrix",
        "Against pre-trained",
        "By task",
        "Accuracy by system",
        "Checkpoints vs validation loss",
    )
    for line in (*board, *blocks):
        assert line in text, line
    assert (
        "        5  epoch-005" in text and "        8  fine-tuned        1.3000" in text and "  kept" in text
    )
    assert "The raters prefer epoch 8 (fine-tuned" in text
    assert " vs " in text.split("Disagreement queue")[1].splitlines()[1]


def test_a_two_system_campaign_reports_the_keys_it_always_had(client, researcher):
    """The key paths of the hand campaign's report, recorded before issue 17 (two_system_report_keys.json):
    a two-system campaign's report gains and loses none."""
    before = json.loads((Path(__file__).parent / "two_system_report_keys.json").read_text())
    hc = build_hand_campaign(name="two")
    assert sorted(_paths(campaign_report(hc.campaign))) == before
    client.force_login(researcher)
    html = client.get(f"/campaigns/{hc.campaign.pk}/report/").content.decode()
    assert (
        'id="systems-scope"' not in html
        and 'id="win-matrix-table"' not in html
        and 'id="checkpoints"' not in html
    )


def test_every_key_of_a_many_system_report_is_documented():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "report-schema.md").read_text(encoding="utf-8")
    report = campaign_report(_rated_campaign(48))
    section = report["systems"]
    keys = {
        *section,
        *section["scope"],
        *section["checkpoints"],
        *section["checkpoints"]["statement"],
        *(k for row in section["checkpoints"]["rows"] for k in row),
        *(k for block in section["accuracy"].values() for figures in block.values() for k in figures),
        *(k for row in report["disagreements"] for k in row),
    }
    missing = sorted(key for key in keys if f"`{key}`" not in doc and key not in doc)
    assert not missing, f"docs/report-schema.md does not describe: {missing}"
