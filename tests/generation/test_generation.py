"""Generation jobs in this process: creating, chunking, the engine on a tiny model, fallback, failures,
cancelling, exactly-once answers, and the admin API and pages. Real worker processes: test_worker.py."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from generation.configs import GenerationSettings
from generation.jobs import JobInputError, job_cancel, job_create
from generation.models import (
    Answer,
    Dataset,
    FailureKind,
    GenerationChunk,
    GenerationJob,
    JobStatus,
    ModelLoadAttempt,
    ModelSpec,
)
from generation.worker import chunks
from generation.worker.chunks import chunk_run
from generation.worker.role_models import RoleModels
from tests.support.generation_data import make_dataset, run_job_here

ROOT = Path(__file__).resolve().parents[2]
TINY = {"settings": GenerationSettings(max_new_tokens=6, batch_size=4)}
SEND = "generation.publishing.app.send_task"  # every message to the workers goes through it, by name


# ---------------------------------------------------------------------------------------------
# Creating and queueing (no model)


@pytest.mark.django_db
@override_settings(GENERATION_CHUNK_PROMPTS=2)
def test_a_job_freezes_its_prompts_into_chunks_and_reuses_model_specs():
    dataset = make_dataset(n=5)
    job = job_create(dataset=dataset, base_model="/models/base", adapter_path="/adapters/a")
    again = job_create(dataset=dataset, base_model="/models/base", adapter_path="/adapters/a")
    assert job.total == 10 and job.status == JobStatus.QUEUED
    assert [len(c.prompt_ids) for c in job.chunks.all()] == [2, 2, 1]
    assert job.settings == {
        "max_new_tokens": 64, "batch_size": 64, "seed": 0, "do_sample": False, "chunk_prompts": 2
    }
    assert ModelSpec.objects.count() == 2
    assert (again.pretrained_model_id, again.finetuned_model_id) == (
        job.pretrained_model_id,
        job.finetuned_model_id,
    )
    assert job.finetuned_model.adapter_path == "/adapters/a" and job.pretrained_model.adapter_path == ""


@pytest.mark.django_db
def test_a_job_on_an_adapter_folder_links_the_run_recorded_in_its_training_json(tmp_path):
    import json

    from annotations.campaigns import campaign_create
    from generation.models import FinetuneRun
    from reports.building import campaign_report

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    metrics = {"mode": "lora", "base_model": "smollm2-demo", "trainable_params": 1843200,
               "total_params": 134515008, "trainable_pct": 1.3703, "epochs_run": 2, "best_epoch": 2,
               "early_stopped": False, "train_loss": [1.68, 0.95], "val_loss": [1.35, 0.96],
               "peak_memory_bytes": 123, "wall_seconds": 9.5}
    (adapter / "training.json").write_text(json.dumps(metrics))
    dataset = make_dataset(n=2)
    job = job_create(dataset=dataset, base_model="/models/base", adapter_path=str(adapter))
    again = job_create(dataset=dataset, base_model="/models/base", adapter_path=str(adapter))
    assert job.finetune_run is not None and job.finetune_run.metrics == metrics
    assert again.finetune_run_id == job.finetune_run_id and FinetuneRun.objects.count() == 1
    assert job_create(dataset=dataset, base_model="/models/base").finetune_run is None

    for prompt in dataset.prompts.all():
        for role in ("pretrained", "finetuned"):
            Answer.objects.create(job=job, prompt=prompt, role=role, text="x")
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    job.refresh_from_db()
    report = campaign_report(campaign_create(job=job, name="c"))
    assert report["training"]["trainable_params"] == 1843200
    assert report["training"]["best_epoch"] == 2


@pytest.mark.django_db
def test_a_finished_lora_run_can_be_picked_as_the_fine_tuned_role(tmp_path):
    from generation.models import FinetuneRun

    dataset = make_dataset(n=2)
    run = FinetuneRun.objects.create(
        base_model="/models/base", output_dir=str(tmp_path / "adapter"), status=JobStatus.SUCCEEDED
    )
    job = job_create(dataset=dataset, base_model="", finetune_run_id=run.pk)
    assert job.finetune_run == run
    assert job.finetuned_model.adapter_path == str(tmp_path / "adapter")
    assert job.pretrained_model.base_model == "/models/base" and job.pretrained_model.adapter_path == ""

    running = FinetuneRun.objects.create(base_model="/b", output_dir="/o", status=JobStatus.RUNNING)
    full = FinetuneRun.objects.create(
        base_model="/b", output_dir="/f", mode="full", status=JobStatus.SUCCEEDED
    )
    for run_id, message in [
        (running.pk, f"run {running.pk} has not succeeded (status: running)"),
        (full.pk, f"run {full.pk} is a full fine-tune, not an adapter: use its folder as --base"),
        (999999, "no fine-tuning run 999999"),
    ]:
        with pytest.raises(JobInputError) as caught:
            job_create(dataset=dataset, base_model="", finetune_run_id=run_id)
        assert caught.value.message == message
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match=r"^--finetune-run: no fine-tuning run 999999$"):
        call_command(
            "queue_generation", "--dataset", "shop", "--finetune-run", "999999", stdout=out, stderr=err
        )
    assert GenerationJob.objects.count() == 1


@pytest.mark.django_db
def test_an_empty_dataset_gives_a_failed_job_saying_why():
    job = job_create(dataset=Dataset.objects.create(name="empty"), base_model="smollm2-demo")
    assert job.status == JobStatus.FAILED
    assert job.error == 'dataset "empty" has no prompts'
    assert job.failure_kind == FailureKind.NO_PROMPTS
    assert job.finished_at is not None and not job.chunks.exists()


@pytest.mark.django_db(transaction=True)
def test_queue_generation_on_an_empty_dataset_prints_the_failed_job_and_exits_non_zero():
    Dataset.objects.create(name="empty")
    out = StringIO()
    with mock.patch(SEND) as send, pytest.raises(CommandError) as info:
        call_command("queue_generation", "--dataset", "empty", "--base", "m", stdout=out, stderr=StringIO())
    job = GenerationJob.objects.get()
    assert str(info.value) == f'job {job.pk} failed: dataset "empty" has no prompts'
    assert out.getvalue().strip().splitlines()[-1] == str(job.pk)
    assert not send.called


@pytest.mark.django_db
def test_queue_generation_with_an_unknown_dataset_creates_nothing():
    with pytest.raises(CommandError, match=r'^--dataset: no dataset named "nope"$'):
        call_command(
            "queue_generation",
            "--dataset",
            "nope",
            "--base",
            "smollm2-demo",
            stdout=StringIO(),
            stderr=StringIO(),
        )
    assert not GenerationJob.objects.exists() and not ModelSpec.objects.exists()


@pytest.mark.django_db
def test_queue_generation_rejects_a_bad_setting():
    make_dataset()
    with pytest.raises(CommandError, match=r"^--max-new-tokens: must be a whole number from 1 to 8192$"):
        call_command(
            "queue_generation",
            "--dataset",
            "shop",
            "--base",
            "x",
            "--max-new-tokens",
            "0",
            stdout=StringIO(),
            stderr=StringIO(),
        )
    assert not GenerationJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_queue_generation_sends_one_task_per_chunk_after_commit_and_prints_the_id():
    make_dataset(n=3)
    out = StringIO()
    with mock.patch(SEND) as send:
        call_command(
            "queue_generation", "--dataset", "shop", "--base", "smollm2-demo", stdout=out, stderr=StringIO()
        )
    job = GenerationJob.objects.get()
    assert out.getvalue().strip().splitlines()[-1] == str(job.pk)
    assert [c.kwargs["args"] for c in send.call_args_list] == [[c.pk] for c in job.chunks.all()]
    assert {c.args for c in send.call_args_list} == {("generation.run_chunk",)}
    assert job.status == JobStatus.QUEUED


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_broker_fails_the_job_and_the_command_says_so():
    from kombu.exceptions import OperationalError

    make_dataset(n=3)
    out = StringIO()
    refused = OperationalError("Connection refused")
    with (
        mock.patch(SEND, side_effect=refused),
        pytest.raises(CommandError) as info,
    ):
        call_command(
            "queue_generation",
            "--dataset",
            "shop",
            "--base",
            "smollm2-demo",
            stdout=out,
            stderr=StringIO(),
        )
    job = GenerationJob.objects.get()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("broker unreachable (") and job.error.endswith(
        "OperationalError: Connection refused"
    )
    assert job.failure_kind == FailureKind.BROKER_UNREACHABLE
    assert str(info.value) == f"job {job.pk} failed: {job.error}"
    assert out.getvalue().strip().splitlines()[-1] == str(job.pk)


QUEUE_IN_A_WEB_PROCESS = """
import django, json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)
from annotations.models import User
from generation.models import Dataset, GenerationJob, Prompt
import evalsite.urls, generation.admin
dataset = Dataset.objects.create(name="shop")
Prompt.objects.create(dataset=dataset, external_id="p1", task="sentiment", text="Good?")
call_command("queue_generation", "--dataset", "shop", "--base", "smollm2-demo", stdout=open(os.devnull, "w"))
client = Client()
client.force_login(User.objects.create_user("adam", password="x", role="admin"))
posted = client.post("/api/jobs/", {"dataset": "shop", "base_model": "m"}, content_type="application/json")
heavy = ("torch", "transformers", "peft", "generation.ml", "generation.worker.tasks")
print(json.dumps({
    "statuses": [posted.status_code] + sorted(GenerationJob.objects.values_list("status", flat=True)),
    "imported": sorted(m for m in heavy if m in sys.modules),
}))
"""


def test_queueing_a_job_in_a_web_process_never_imports_torch_or_the_worker(tmp_path):
    """The web side sends tasks by name: queueing through the command and the API (both publish to
    the default filesystem broker here) imports neither the ML stack nor the worker's tasks."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "1",
        "EVALSITE_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "-c", QUEUE_IN_A_WEB_PROCESS],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts == {"statuses": [201, "queued", "queued"], "imported": []}
    assert len(list((tmp_path / "broker" / "queue").iterdir())) == 2  # one message per job's one chunk


# ---------------------------------------------------------------------------------------------
# The engine on a tiny model, in this process


@pytest.mark.slow
@pytest.mark.django_db
@override_settings(GENERATION_CHUNK_PROMPTS=3)
def test_a_job_answers_every_prompt_in_both_roles_with_token_counts(tiny_llama_dir, tiny_adapter_dir):
    job = job_create(
        dataset=make_dataset(n=5), base_model=str(tiny_llama_dir), adapter_path=str(tiny_adapter_dir), **TINY
    )
    job = run_job_here(job)
    assert job.status == JobStatus.SUCCEEDED, job.error
    answers = list(job.answers.all())
    assert len(answers) == job.total == 10
    assert {(a.prompt_id, a.role) for a in answers} == {
        (p, r) for p in job.dataset.prompts.values_list("id", flat=True) for r in ("pretrained", "finetuned")
    }
    for a in answers:
        assert a.prompt_tokens > 10 and 1 <= a.output_tokens <= 6
        assert a.latency_ms > 0 and a.batch_ms >= a.latency_ms
        assert a.device == "cpu" and a.seed == 0 and not a.fallback
        assert a.worker.endswith(f":{__import__('os').getpid()}")
    by_prompt: dict[int, dict[str, str]] = {}
    for a in answers:
        by_prompt.setdefault(a.prompt_id, {})[a.role] = a.text
    assert any(v["pretrained"] != v["finetuned"] for v in by_prompt.values()), "the adapter changed no answer"
    attempts = list(ModelLoadAttempt.objects.filter(job=job).values_list("kind", "success"))
    assert attempts == [("base", True), ("adapter", True)]  # once per job and worker process
    assert all(c.status == JobStatus.SUCCEEDED and c.finished_at for c in job.chunks.all())


@pytest.mark.slow
@pytest.mark.django_db
def test_running_a_chunk_again_makes_no_second_answer(tiny_llama_dir, tiny_adapter_dir):
    job = job_create(
        dataset=make_dataset(n=3), base_model=str(tiny_llama_dir), adapter_path=str(tiny_adapter_dir), **TINY
    )
    chunk = job.chunks.get()
    # A first delivery died after making one answer; the redelivered task makes only the other five.
    Answer.objects.create(
        job=job, prompt=job.dataset.prompts.first(), role="pretrained", text="from the first try"
    )
    GenerationChunk.objects.filter(pk=chunk.pk).update(status=JobStatus.RUNNING, attempts=1)
    chunk_run(chunk_id=chunk.pk)
    chunk_run(chunk_id=chunk.pk)  # a duplicate delivery after the job finished
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.answers.count() == 6
    assert job.answers.filter(text="from the first try").count() == 1
    chunk.refresh_from_db()
    assert chunk.attempts == 2 and chunk.status == JobStatus.SUCCEEDED


@pytest.mark.slow
@pytest.mark.django_db
def test_a_broken_adapter_falls_back_to_the_base_model(tiny_llama_dir, tmp_path):
    broken = tmp_path / "adapter"
    broken.mkdir()
    (broken / "adapter_config.json").write_text('{"peft_type": "LORA", "target_modules": ["q_proj"], "r": 4}')
    job = job_create(
        dataset=make_dataset(n=3), base_model=str(tiny_llama_dir), adapter_path=str(broken), **TINY
    )
    job = run_job_here(job)
    assert job.status == JobStatus.SUCCEEDED
    finetuned = job.answers.filter(role="finetuned")
    assert finetuned.count() == 3 and all(a.fallback for a in finetuned)
    assert not job.answers.filter(role="pretrained", fallback=True).exists()
    failed = ModelLoadAttempt.objects.get(job=job, kind="adapter")
    assert not failed.success and failed.error.startswith(f"cannot load adapter {broken}")
    assert ModelLoadAttempt.objects.filter(job=job, kind="base", success=True).exists()


@pytest.mark.slow
@pytest.mark.django_db
def test_a_missing_adapter_folder_falls_back_and_says_so(tiny_llama_dir, tmp_path):
    job = job_create(
        dataset=make_dataset(n=2), base_model=str(tiny_llama_dir), adapter_path=str(tmp_path / "gone"), **TINY
    )
    job = run_job_here(job)
    assert job.status == JobStatus.SUCCEEDED
    assert job.answers.filter(role="finetuned", fallback=True).count() == 2
    attempt = ModelLoadAttempt.objects.get(job=job, kind="adapter")
    assert (attempt.success, attempt.error) == (False, f"adapter folder not found: {tmp_path / 'gone'}")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("base", "error_start"),
    [
        (
            "no-such-org/no-such-model",
            "cannot load the base model: cannot load tokenizer of no-such-org/no-such-model",
        ),
        ("/no/such/folder", "cannot load the base model: model folder not found: /no/such/folder"),
    ],
)
def test_a_base_model_that_cannot_load_fails_the_job_with_its_reason(base, error_start):
    job = job_create(dataset=make_dataset(n=4), base_model=base, adapter_path="/x", **TINY)
    job = run_job_here(job)
    assert job.status == JobStatus.FAILED
    assert job.error.startswith(error_start), job.error
    assert "\n" not in job.error and not job.answers.exists()
    assert job.failure_kind == FailureKind.MODEL_LOAD
    assert {c.failure_kind for c in job.chunks.filter(status=JobStatus.FAILED)} == {FailureKind.MODEL_LOAD}
    attempt = ModelLoadAttempt.objects.get(job=job)
    assert (attempt.kind, attempt.success) == ("base", False)


@pytest.mark.slow
@pytest.mark.django_db
@override_settings(GENERATION_CHUNK_PROMPTS=2)
def test_a_cancelled_job_stops_and_keeps_its_status(tiny_llama_dir, tiny_adapter_dir):
    job = job_create(
        dataset=make_dataset(n=4), base_model=str(tiny_llama_dir), adapter_path=str(tiny_adapter_dir), **TINY
    )
    first, second = job.chunks.all()
    chunk_run(chunk_id=first.pk)
    assert job_cancel(job=job)
    chunk_run(chunk_id=second.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.answers.count() == 4  # the first chunk's answers stay; the second made none
    second.refresh_from_db()
    assert second.status == JobStatus.CANCELLED and second.error == "not run: the job had already cancelled"
    assert second.failure_kind == FailureKind.NOT_RUN
    assert not job_cancel(job=job)


@pytest.mark.slow
@pytest.mark.django_db
def test_without_an_adapter_the_base_answers_both_roles_marked_fallback(tiny_llama_dir):
    job = run_job_here(job_create(dataset=make_dataset(n=2), base_model=str(tiny_llama_dir), **TINY))
    assert job.status == JobStatus.SUCCEEDED
    assert job.answers.filter(role="finetuned", fallback=True).count() == 2
    assert not ModelLoadAttempt.objects.filter(job=job, kind="adapter").exists()


@pytest.mark.django_db
def test_a_chunk_that_fails_while_generating_makes_the_job_partially_failed(monkeypatch):
    job = job_create(dataset=make_dataset(n=2), base_model="/m", **TINY)
    Answer.objects.create(job=job, prompt=job.dataset.prompts.first(), role="pretrained", text="x")
    models = RoleModels(mock.Mock(), None, True)
    monkeypatch.setattr(chunks, "load_role_models", mock.Mock(return_value=models))
    with mock.patch("generation.ml.engine.generate", side_effect=RuntimeError("CUDA out of memory")):
        chunk_run(chunk_id=job.chunks.get().pk)
    job.refresh_from_db()
    assert job.status == JobStatus.PARTIALLY_FAILED
    assert job.error == "3 of 4 answers were not made: chunk 0: RuntimeError: CUDA out of memory"
    assert job.failure_kind == FailureKind.INCOMPLETE
    assert (job.chunks.get().status, job.chunks.get().failure_kind) == (JobStatus.FAILED, FailureKind.ERROR)


# ---------------------------------------------------------------------------------------------
# API and pages (admin only)


@pytest.mark.django_db(transaction=True)
def test_an_admin_queues_a_job_over_the_api_and_follows_it(client, admin_user):
    make_dataset(n=3)
    client.force_login(admin_user)
    with mock.patch(SEND) as send:
        response = client.post(
            "/api/jobs/",
            {"dataset": "shop", "base_model": "smollm2-demo", "adapter_path": "/a", "max_new_tokens": 8},
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    job = GenerationJob.objects.get()
    assert send.call_count == 1
    assert (body["id"], body["status"], body["done"], body["total"]) == (job.pk, "queued", 0, 6)
    assert job.settings["max_new_tokens"] == 8 and job.created_by == admin_user
    detail = client.get(f"/api/jobs/{job.pk}/").json()
    assert {k: detail[k] for k in ("status", "done", "total", "error", "tokens_per_s")} == {
        "status": "queued",
        "done": 0,
        "total": 6,
        "error": "",
        "tokens_per_s": None,
    }


@pytest.mark.django_db(transaction=True)
def test_the_api_answers_503_when_the_broker_is_unreachable(client, admin_user):
    from kombu.exceptions import OperationalError

    make_dataset(n=1)
    client.force_login(admin_user)
    with mock.patch(SEND, side_effect=OperationalError("refused")):
        response = client.post(
            "/api/jobs/", {"dataset": "shop", "base_model": "m"}, content_type="application/json"
        )
    assert response.status_code == 503
    assert response.json()["status"] == "failed" and response.json()["error"].startswith("broker unreachable")
    assert response.json()["failure_kind"] == "broker_unreachable"


@pytest.mark.django_db
def test_the_api_rejects_bad_input_with_field_errors(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        "/api/jobs/", {"dataset": "nope", "base_model": "m"}, content_type="application/json"
    )
    assert response.status_code == 400 and response.json() == {"dataset": ['no dataset named "nope"']}
    response = client.post(
        "/api/jobs/", {"dataset": "nope", "max_new_tokens": 0}, content_type="application/json"
    )
    assert response.status_code == 400 and set(response.json()) == {"max_new_tokens"}
    response = client.post("/api/jobs/", {"dataset": "nope"}, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"base_model": ["required unless finetune_run is given"]}
    assert not GenerationJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["annotator", "researcher", None])
def test_only_admins_reach_jobs(client, request, who):
    job = job_create(dataset=make_dataset(n=1), base_model="secret-model", adapter_path="/secret/adapter")
    if who:
        client.force_login(request.getfixturevalue(who))
    for response in (
        client.get(f"/api/jobs/{job.pk}/"),
        client.get("/api/jobs/"),
        client.post("/api/jobs/", {"dataset": "shop", "base_model": "m"}, content_type="application/json"),
    ):
        assert response.status_code == 403
        assert b"secret" not in response.content
    page = client.get(f"/jobs/{job.pk}/")
    assert page.status_code == (403 if who else 302)
    assert b"secret" not in page.content
    assert GenerationJob.objects.count() == 1


@pytest.mark.django_db
def test_admin_pages_show_jobs_with_a_self_refreshing_progress_bar(client, admin_user):
    job = job_create(dataset=make_dataset(n=2), base_model="some-model")
    client.force_login(admin_user)
    listing = client.get("/jobs/")
    detail = client.get(f"/jobs/{job.pk}/")
    assert listing.status_code == detail.status_code == 200
    for page in (listing, detail):
        html = page.content.decode()
        assert f'data-api="/api/jobs/{job.pk}/"' in html
        assert '<script src="/static/generation/job-progress.js" defer></script>' in html
        assert "<script>" not in html  # the site's CSP allows no inline script
        assert "script-src 'self'" in page["Content-Security-Policy"]
    assert client.get("/static/generation/job-progress.js").status_code == 200
    assert client.get("/api/jobs/999999/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_api_takes_every_generation_setting_and_checks_it(client, admin_user):
    make_dataset(n=3)
    client.force_login(admin_user)
    wanted = {
        "do_sample": True, "temperature": 0.7, "top_p": 0.9, "seed": 5, "batch_size": 8, "chunk_prompts": 2
    }
    with mock.patch(SEND) as send:
        response = client.post(
            "/api/jobs/", {"dataset": "shop", "base_model": "m", **wanted}, content_type="application/json"
        )
        refused = client.post(
            "/api/jobs/",
            {"dataset": "shop", "base_model": "m", "do_sample": True, "top_p": 1.5},
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    job = GenerationJob.objects.get()
    assert job.settings == {"max_new_tokens": 64, **wanted} == response.json()["settings"]
    assert send.call_count == 2 and response.json()["failure_kind"] == ""
    assert refused.status_code == 400 and refused.json() == {"top_p": ["must be in (0, 1]"]}
    assert GenerationJob.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_queue_again_in_the_django_admin_keeps_every_setting_of_the_old_job(client, admin_user, tmp_path):
    from generation.models import FinetuneRun

    admin_user.is_staff = admin_user.is_superuser = True  # as `create_user --role admin` makes them
    admin_user.save()
    client.force_login(admin_user)
    dataset = make_dataset(n=5)
    run = FinetuneRun.objects.create(
        base_model="/models/base", gguf_file="base.gguf", output_dir=str(tmp_path / "adapter"),
        status=JobStatus.SUCCEEDED,
    )  # fmt: skip
    settings = GenerationSettings(
        max_new_tokens=17, batch_size=6, seed=7, do_sample=True, temperature=0.7, top_p=0.9, chunk_prompts=2
    )
    old = job_create(dataset=dataset, base_model="", finetune_run_id=run.pk, settings=settings, name="mine")
    legacy = job_create(dataset=dataset, base_model="/models/other", adapter_path="/a", settings=settings)
    # a job made before jobs stored their chunk size: it is read from the job's chunks
    GenerationJob.objects.filter(pk=legacy.pk).update(
        settings={k: v for k, v in legacy.settings.items() if k != "chunk_prompts"}
    )
    legacy.refresh_from_db()
    with mock.patch(SEND) as send:
        response = client.post(
            "/admin/generation/generationjob/",
            {"action": "queue_again", "_selected_action": [old.pk, legacy.pk]},
        )
    assert response.status_code == 302
    for before in (old, legacy):
        again = GenerationJob.objects.exclude(pk__in=[old.pk, legacy.pk]).get(
            pretrained_model=before.pretrained_model
        )
        assert again.status == JobStatus.QUEUED and again.created_by == admin_user
        assert again.settings == {**settings.as_dict()}
        assert again.dataset_id == before.dataset_id and again.name == before.name
        assert (again.pretrained_model_id, again.finetuned_model_id, again.finetune_run_id) == (
            before.pretrained_model_id,
            before.finetuned_model_id,
            before.finetune_run_id,
        )
        assert [c.prompt_ids for c in again.chunks.all()] == [c.prompt_ids for c in before.chunks.all()]
    assert old.finetune_run_id == run.pk and old.pretrained_model.gguf_file == "base.gguf"
    assert old.finetuned_model.adapter_path == str(tmp_path / "adapter")
    assert send.call_count == 6  # each new job has three chunks (2, 2 and 1 prompts)


@pytest.mark.django_db(transaction=True)
def test_the_job_form_queues_a_job(client, admin_user):
    make_dataset(n=2)
    client.force_login(admin_user)
    with mock.patch(SEND):
        response = client.post("/jobs/", {"dataset": "shop", "base_model": "m", "max_new_tokens": "12"})
    job = GenerationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.settings["max_new_tokens"] == 12
    response = client.post(f"/jobs/{job.pk}/cancel/")
    job.refresh_from_db()
    assert response.status_code == 302 and job.status == JobStatus.CANCELLED


@pytest.mark.django_db
def test_the_job_page_lists_answers_load_attempts_and_chunks(client, admin_user):
    job = job_create(dataset=make_dataset(n=1), base_model="some-model", adapter_path="/a")
    prompt = job.dataset.prompts.get()
    Answer.objects.create(
        job=job, prompt=prompt, role="finetuned", text="<b>tuned</b>", fallback=True, latency_ms=12.5
    )
    ModelLoadAttempt.objects.create(
        job=job, kind="adapter", target="/a", success=False, error="adapter folder not found: /a"
    )
    client.force_login(admin_user)
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "&lt;b&gt;tuned&lt;/b&gt;" in html and "<b>tuned</b>" not in html
    assert "finetuned (fallback)" in html
    assert "adapter folder not found: /a" in html
    assert "Cancel job" in html


@pytest.mark.django_db(transaction=True)
def test_queue_generation_with_a_prompt_limit_answers_only_the_first_prompts():
    make_dataset(n=5, name="shop")
    out = StringIO()
    with mock.patch(SEND):
        call_command(
            "queue_generation", "--dataset", "shop", "--base", "smollm2-demo", "--prompt-limit", "2",
            stdout=out, stderr=StringIO(),
        )  # fmt: skip
    job = GenerationJob.objects.get(pk=int(out.getvalue().strip().splitlines()[-1]))
    assert job.total == 4 and job.settings["prompt_limit"] == 2
    with pytest.raises(CommandError, match=r"^--prompt-limit"):
        call_command(
            "queue_generation", "--dataset", "shop", "--base", "smollm2-demo", "--prompt-limit", "0",
            stdout=StringIO(), stderr=StringIO(),
        )  # fmt: skip
    assert GenerationJob.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_api_queues_a_job_over_the_first_prompts_only(client, admin_user):
    make_dataset(n=5)
    client.force_login(admin_user)
    with mock.patch(SEND):
        response = client.post(
            "/api/jobs/", {"dataset": "shop", "base_model": "m", "prompt_limit": 3}, content_type="application/json"
        )
    assert response.status_code == 201, response.json()
    job = GenerationJob.objects.get(pk=response.json()["id"])
    assert job.total == 6 and job.settings["prompt_limit"] == 3
    bad = client.post(
        "/api/jobs/", {"dataset": "shop", "base_model": "m", "prompt_limit": 0}, content_type="application/json"
    )
    assert bad.status_code == 400 and "prompt_limit" in bad.json()
    assert GenerationJob.objects.count() == 1
