"""Issue 17 end to end on the demo model (SmolLM2-135M-Instruct): a LoRA run that keeps every epoch, one
job answering with the base model and every kept epoch (one base load), an outside system's answers
imported beside them, one campaign over all of them, rated through the API by scripted annotators whose
taste is known, and the report's leaderboard and checkpoint-vs-loss view.

Slow: fine-tuning the demo model for two epochs and generating 72 answers take about a minute here."""

from __future__ import annotations

import json
import random
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from annotations.models import Assignment, User
from generation.configs import GenerationSettings
from generation.jobs import job_create
from generation.models import Answer, Dataset, FinetuneRun, JobSystem, ModelLoadAttempt, job_system_names
from tests.support.generation_data import run_job_here

ROOT = Path(__file__).resolve().parents[2]
PER_TASK = 6


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1].strip()


def _eval_subset(tmp_path: Path) -> tuple[Path, Path]:
    rows = [json.loads(line) for line in (ROOT / "demo/data/eval.jsonl").read_text().splitlines() if line]
    subset, taken = [], {}
    for row in rows:
        if taken.get(row["task"], 0) < PER_TASK:
            taken[row["task"]] = taken.get(row["task"], 0) + 1
            subset.append(row)
    prompts, outside = tmp_path / "eval.jsonl", tmp_path / "outside.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in subset))
    outside.write_text(
        "".join(json.dumps({"prompt_external_id": r["external_id"], "answer": r["reference"]}) + "\n" for r in subset)
    )
    return prompts, outside


def _rate_everything(campaign_id: int, annotators: list[User], taste: dict[str, int], seed: int = 7) -> int:
    """Each annotator rates every pair the API serves: the answer of the system they like better (higher
    `taste`) wins
    4 times in 5 (scores 4 and 2), else the other; the system is looked up server-side, as a simulation
    of raters with a known taste (annotators never see it: the API gives texts only)."""
    rng = random.Random(seed)
    posted = 0
    for annotator in annotators:
        client = APIClient()
        token = _last_line(_call("api_token", annotator.username))
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        while True:
            response = client.get(f"/api/campaigns/{campaign_id}/next/")
            if response.status_code == 204:
                break
            assert response.status_code == 200, response.content
            body = response.json()
            assignment = Assignment.objects.select_related("pair__pretrained_answer", "pair__finetuned_answer").get(
                pk=body["assignment"]
            )
            pair = assignment.pair
            right_is_b = assignment.finetuned_side == "right"
            left_system = pair.pretrained_answer.role if right_is_b else pair.finetuned_answer.role
            right_system = pair.finetuned_answer.role if right_is_b else pair.pretrained_answer.role
            left_better = taste[left_system] > taste[right_system]
            left_wins = left_better if rng.random() < 0.8 else not left_better
            rating = {
                "score_left": 4 if left_wins else 2,
                "score_right": 2 if left_wins else 4,
                "correct_left": left_wins,
                "correct_right": not left_wins,
                "preference": "left" if left_wins else "right",
            }
            posted_rating = client.post(f"/api/assignments/{body['assignment']}/rating/", rating, format="json")
            assert posted_rating.status_code == 201, posted_rating.content
            posted += 1
    return posted


def _call(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.slow
@pytest.mark.django_db
def test_checkpoints_base_and_an_outside_system_ranked_by_scripted_annotators(tmp_path, researcher):
    prompts_path, outside_path = _eval_subset(tmp_path)
    _call("import_prompts", str(prompts_path), "--dataset", "eval-24")
    _call("import_prompts", str(ROOT / "demo/data/train.jsonl"), "--dataset", "train")
    run_id = int(_last_line(_call(
        "finetune", "--dataset", "train", "--base", "smollm2-demo", "--output", str(tmp_path / "run"),
        "--epochs", "2", "--patience", "2", "--keep-every", "1", "--max-examples", "12", "--lr", "5e-4",
        "--batch-size", "4", "--max-length", "256", "--seed", "0", "--threads", "1",
    )))  # fmt: skip
    run = FinetuneRun.objects.get(pk=run_id)
    assert run.status == "succeeded", run.error
    best = run.metrics["best_epoch"]
    other = 3 - best  # the kept epoch that is not the run's adapter

    job = job_create(
        dataset=Dataset.objects.get(name="eval-24"),
        base_model="",
        finetune_run_id=run_id,
        kept_epochs=True,
        settings=GenerationSettings(max_new_tokens=12, batch_size=24, chunk_prompts=24),
    )
    job = run_job_here(job)
    assert job.status == "succeeded", job.error
    assert job_system_names(job) == ["pretrained", "finetuned", f"epoch-{other:03d}"]
    kept = JobSystem.objects.get(job=job, name=f"epoch-{other:03d}")
    assert kept.epoch == other and kept.val_loss == pytest.approx(run.metrics["val_loss"][other - 1], abs=1e-5)
    # one base load served every system; each adapter loaded once, none failed
    loads = ModelLoadAttempt.objects.filter(job=job)
    assert loads.filter(kind="base").count() == 1 and not loads.filter(success=False).exists()
    assert loads.filter(kind="adapter").count() == 2

    _call("import_answers", str(outside_path), "--add-system", "outside", "--job", str(job.pk))
    job.refresh_from_db()
    systems = ["pretrained", "finetuned", f"epoch-{other:03d}", "outside"]
    assert job_system_names(job) == systems
    assert Answer.objects.filter(job=job).count() == job.total == 4 * 4 * PER_TASK
    # the scripted raters' taste: a higher number is a better system
    taste = {"outside": 3, "finetuned": 2, f"epoch-{other:03d}": 1, "pretrained": 0}

    campaign_id = int(_last_line(_call("create_campaign", "--job", str(job.pk), "--name", "k", "--overlap", "2")))
    annotators = [User.objects.create_user(f"rater{i}", password="x-pass-4417", role="annotator") for i in range(2)]
    assert _rate_everything(campaign_id, annotators, taste) == 2 * 4 * PER_TASK

    client = APIClient()
    client.force_authenticate(researcher)
    report = client.get(f"/api/campaigns/{campaign_id}/report/").json()
    section = report["systems"]
    assert section["systems"] == systems
    strengths = section["strengths"]
    assert set(strengths) == set(systems) and all(strengths[s]["ci95"] is not None for s in systems)
    # the raters' taste, recovered: the outside system strongest, the base model weakest
    order = sorted(systems, key=lambda s: -strengths[s]["strength"])
    assert order[0] == "outside" and order[-1] == "pretrained", strengths
    rows = {row["epoch"]: row for row in section["checkpoints"]["rows"]}
    assert set(rows) == {1, 2}
    assert rows[best]["system"] == "finetuned" and rows[best]["kept"] is True
    assert rows[other]["val_loss"] == pytest.approx(run.metrics["val_loss"][other - 1], abs=1e-5)
    statement = section["checkpoints"]["statement"]
    assert statement["text"] or statement["reason"]

    browser = Client()
    browser.force_login(researcher)
    page = browser.get(f"/campaigns/{campaign_id}/report/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "outside" in text and f"epoch-{other:03d}" in text and "validation loss" in text.lower()
