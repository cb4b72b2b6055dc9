"""Fine-tuning runs as jobs: queueing (API, admin, command), the Celery task, heartbeats and lost
workers, permissions. The run pages with their loss curves: tests/reports/test_run_pages.py."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from generation.configs import FinetuneConfig
from generation.jobs import JobInputError
from generation.models import Dataset, FailureKind, FinetuneRun, JobStatus, Prompt
from generation.runs import finetune_run_create, finetune_run_queue, finetune_runs_fail_stale
from generation.worker import training
from generation.worker.reaping import fail_runs_left_by_this_worker
from generation.worker.tasks import on_worker_ready, run_finetune
from tests.support.threads import settled

pytestmark = pytest.mark.django_db

SEND = "generation.publishing.app.send_task"  # every message to the workers goes through it, by name


def make_dataset(name: str = "reviews", n: int = 12, *, references: bool = True) -> Dataset:
    dataset = Dataset.objects.create(name=name)
    Prompt.objects.bulk_create(
        Prompt(
            dataset=dataset,
            external_id=f"p{i:03d}",
            task="sentiment",
            context=f"Review {i}: the kettle {'works' if i % 2 else 'broke'}.",
            text="What is the sentiment?",
            reference=("Positive." if i % 2 else "Negative.") if references else "",
        )
        for i in range(n)
    )
    return dataset


def payload(tmp_path, **overrides) -> dict:
    data = {
        "dataset": "reviews",
        "base_model": "smollm2-demo",
        "output_dir": str(tmp_path / "adapter"),
        "mode": "lora",
        "epochs": 3,
        "patience": 2,
        "lr": 0.005,
        "r": 8,
        "alpha": 16,
    }
    data.update(overrides)
    return data


def tiny_options(**overrides) -> FinetuneConfig:
    values = {
        "epochs": 2,
        "patience": 2,
        "batch_size": 4,
        "max_length": 128,
        "lr": 5e-3,
        "r": 4,
        "alpha": 8,
        "device": "cpu",
        "threads": 1,
    }
    values.update(overrides)
    return FinetuneConfig(**values)


# --- queueing -------------------------------------------------------------------------------------


def test_an_admin_queues_a_run_over_the_api_and_the_task_is_sent_after_commit(
    client, admin_user, tmp_path, django_capture_on_commit_callbacks
):
    make_dataset()
    client.force_login(admin_user)
    with mock.patch(SEND) as send, django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/api/finetune-runs/", payload(tmp_path), content_type="application/json")
        assert send.call_count == 0  # nothing goes to the broker before the row is committed
    assert response.status_code == 201, response.content
    run = FinetuneRun.objects.get()
    assert len(callbacks) == 1
    assert [c.kwargs["args"] for c in send.call_args_list] == [[run.pk]]
    assert send.call_args.args == ("generation.run_finetune",)
    body = response.json()
    assert body["id"] == run.pk and body["status"] == "queued" and body["epochs_run"] == 0
    assert run.status == JobStatus.QUEUED and run.created_by == admin_user
    assert run.config["epochs"] == 3 and run.config["r"] == 8 and run.config["lr"] == 0.005
    assert run.output_dir == str(tmp_path / "adapter") and run.mode == "lora"

    detail = client.get(f"/api/finetune-runs/{run.pk}/").json()
    for key in ("status", "epochs_run", "train_loss", "val_loss", "best_epoch", "error"):
        assert key in detail
    assert client.get("/api/finetune-runs/").json()[0]["id"] == run.pk


def test_bad_input_gets_400_with_field_errors_and_creates_nothing(client, admin_user, tmp_path):
    make_dataset()
    make_dataset("no-refs", references=False)
    (tmp_path / "a-file").write_text("x")
    client.force_login(admin_user)
    cases = [
        ({"epochs": 0}, "epochs"),
        ({"mode": "half"}, "mode"),
        ({"dataset": "nope"}, "dataset"),
        ({"dataset": "no-refs"}, "dataset"),
        ({"output_dir": ""}, "output_dir"),
        ({"output_dir": str(tmp_path / "a-file")}, "output_dir"),
        ({"val_fraction": 1.5}, "val_fraction"),
        ({"lr": -1}, "lr"),
        ({"target_modules": []}, "target_modules"),
    ]
    with mock.patch(SEND) as send:
        for change, field in cases:
            response = client.post(
                "/api/finetune-runs/", payload(tmp_path, **change), content_type="application/json"
            )
            assert response.status_code == 400, (change, response.content)
            assert field in response.json(), (change, response.json())
    assert not FinetuneRun.objects.exists() and send.call_count == 0


def test_an_output_folder_another_unfinished_run_writes_to_is_refused(tmp_path):
    make_dataset()
    first = finetune_run_create(dataset="reviews", base_model="m", output_dir=str(tmp_path / "out"))
    with pytest.raises(JobInputError) as info:
        finetune_run_create(dataset="reviews", base_model="m", output_dir=str(tmp_path / "out"))
    assert info.value.field == "output_dir" and f"run {first.pk}" in info.value.message


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_broker_fails_the_run_with_a_clear_message(client, admin_user, tmp_path):
    from kombu.exceptions import OperationalError

    make_dataset()
    client.force_login(admin_user)
    with mock.patch(SEND, side_effect=OperationalError("Connection refused")):
        response = client.post("/api/finetune-runs/", payload(tmp_path), content_type="application/json")
    assert response.status_code == 503
    run = FinetuneRun.objects.get()
    assert run.status == JobStatus.FAILED and run.finished_at is not None
    assert run.error.startswith("broker unreachable (") and run.error.endswith("Connection refused")
    assert run.failure_kind == FailureKind.BROKER_UNREACHABLE
    assert response.json()["status"] == "failed" and response.json()["error"] == run.error
    assert response.json()["failure_kind"] == "broker_unreachable"


def test_the_command_queues_with_queue_and_prints_the_run_id_last(
    tmp_path, django_capture_on_commit_callbacks
):
    make_dataset()
    out = StringIO()
    with mock.patch(SEND) as send, django_capture_on_commit_callbacks(execute=True):
        call_command(
            "finetune",
            "--dataset",
            "reviews",
            "--base",
            "smollm2-demo",
            "--output",
            str(tmp_path / "o"),
            "--epochs",
            "4",
            "--queue",
            stdout=out,
        )
    run = FinetuneRun.objects.get()
    assert out.getvalue().strip().splitlines()[-1] == str(run.pk)
    assert run.status == JobStatus.QUEUED and run.config["epochs"] == 4
    assert [c.kwargs["args"] for c in send.call_args_list] == [[run.pk]]

    with pytest.raises(CommandError, match="--dataset: no dataset named"):
        call_command(
            "finetune",
            "--dataset",
            "x",
            "--base",
            "m",
            "--output",
            str(tmp_path / "p"),
            "--queue",
            stdout=StringIO(),
        )
    assert FinetuneRun.objects.count() == 1


def test_the_django_admin_add_form_queues_a_run(
    client, admin_user, tmp_path, django_capture_on_commit_callbacks
):
    dataset = make_dataset()
    admin_user.is_staff = admin_user.is_superuser = True  # as `create_user --role admin` makes them
    admin_user.save()
    client.force_login(admin_user)
    form = {
        "dataset": dataset.pk,
        "base_model": "smollm2-demo",
        "gguf_file": "",
        "output_dir": str(tmp_path / "x"),
        "mode": "lora",
        "epochs": 5,
        "patience": 2,
        "lr": "",
        "r": 16,
        "alpha": 32,
        "dropout": 0.05,
        "target_modules": "q_proj,v_proj",
        "batch_size": 8,
        "max_length": 256,
        "seed": 1,
    }
    with mock.patch(SEND) as send, django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/generation/finetunerun/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    run = FinetuneRun.objects.get()
    assert response["Location"] == f"/runs/{run.pk}/"
    assert run.status == JobStatus.QUEUED and run.config["target_modules"] == ["q_proj", "v_proj"]
    assert run.config["epochs"] == 5 and run.config["lr"] == 2e-4
    assert send.call_count == 1

    bad = client.post(
        "/admin/generation/finetunerun/add/", {**form, "epochs": 0, "output_dir": str(tmp_path / "y")}
    )
    assert bad.status_code == 200 and FinetuneRun.objects.count() == 1


def test_queue_again_in_the_django_admin_keeps_every_option_of_the_old_run(
    client, admin_user, tmp_path, django_capture_on_commit_callbacks
):
    make_dataset()
    config = FinetuneConfig(
        mode="full", epochs=7, patience=3, lr=0.001, batch_size=2, max_length=96, seed=9, val_fraction=0.25,
        r=4, alpha=8, dropout=0.1, target_modules=("q_proj",), gradient_checkpointing=True, max_examples=6,
        weight_decay=0.01, device="cpu", threads=1,
    )  # fmt: skip
    old = finetune_run_create(
        dataset="reviews", base_model="/models/b", gguf_file="b.gguf", output_dir=str(tmp_path / "o"),
        config=config,
    )  # fmt: skip
    FinetuneRun.objects.filter(pk=old.pk).update(status=JobStatus.FAILED)
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    with mock.patch(SEND) as send, django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/generation/finetunerun/", {"action": "queue_again", "_selected_action": [old.pk]}
        )
    assert response.status_code == 302
    again = FinetuneRun.objects.exclude(pk=old.pk).get()
    assert again.status == JobStatus.QUEUED and again.created_by == admin_user
    assert again.config == old.config == config.as_dict()
    assert (again.dataset_id, again.base_model, again.gguf_file, again.output_dir, again.mode) == (
        old.dataset_id, old.base_model, old.gguf_file, old.output_dir, "full"
    )  # fmt: skip
    assert [c.kwargs["args"] for c in send.call_args_list] == [[again.pk]]


# --- permissions ----------------------------------------------------------------------------------


def test_annotators_get_403_researchers_read_only_and_admins_queue(
    client, annotator, researcher, admin_user, tmp_path
):
    make_dataset()
    run = finetune_run_create(dataset="reviews", base_model="m", output_dir=str(tmp_path / "o"))
    urls = ["/api/finetune-runs/", f"/api/finetune-runs/{run.pk}/", "/runs/", f"/runs/{run.pk}/"]

    client.force_login(annotator)
    for url in urls:
        assert client.get(url).status_code == 403, url
    assert (
        client.post("/api/finetune-runs/", payload(tmp_path), content_type="application/json").status_code
        == 403
    )

    client.force_login(researcher)
    for url in urls:
        assert client.get(url).status_code == 200, url
    with mock.patch(SEND) as send:
        response = client.post("/api/finetune-runs/", payload(tmp_path), content_type="application/json")
    assert response.status_code == 403 and send.call_count == 0 and FinetuneRun.objects.count() == 1

    client.logout()
    assert client.get("/api/finetune-runs/").status_code in (401, 403)
    assert client.get("/runs/").status_code == 302  # to the login page


# --- the task -------------------------------------------------------------------------------------


def test_the_task_trains_the_queued_run_on_the_tiny_model_and_a_second_delivery_does_nothing(
    tiny_llama_dir, tmp_path
):
    make_dataset()
    run = finetune_run_create(
        dataset="reviews",
        base_model=str(tiny_llama_dir),
        output_dir=str(tmp_path / "adapter"),
        config=tiny_options(),
    )
    with (
        mock.patch.object(training, "HEARTBEAT_EVERY_SECONDS", 0.0),
        mock.patch.object(
            training, "finetune_run_heartbeat", wraps=training.finetune_run_heartbeat
        ) as heartbeat,
    ):
        run_finetune(run.pk)  # what the worker does with the message (in process)
    assert heartbeat.call_count >= 2 * 3  # every training step beats (12 prompts: 3 steps of 4 a epoch)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    written = json.loads((tmp_path / "adapter" / "training.json").read_text())
    assert written["epochs_run"] == 2 and len(written["val_loss"]) == 2 and written["mode"] == "lora"
    assert run.metrics["trainable_params"] == written["trainable_params"] > 0
    assert run.worker and run.heartbeat_at is not None and run.started_at <= run.heartbeat_at

    with mock.patch.object(training, "finetune_run_execute") as execute:
        run_finetune(run.pk)  # a duplicate delivery
    assert execute.call_count == 0
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED


def test_a_duplicate_delivery_of_a_running_run_and_a_deleted_run_do_nothing(tmp_path):
    make_dataset()
    run = finetune_run_create(dataset="reviews", base_model="m", output_dir=str(tmp_path / "o"))
    FinetuneRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, worker="celery@a")
    with mock.patch.object(training, "finetune_run_execute") as execute:
        run_finetune(run.pk)
        run_finetune(run.pk + 1000)  # gone
    assert execute.call_count == 0
    run.refresh_from_db()
    assert run.status == JobStatus.RUNNING and run.worker == "celery@a"


def test_a_run_whose_model_cannot_load_ends_failed_with_the_reason(tmp_path):
    make_dataset()
    run = finetune_run_create(
        dataset="reviews",
        base_model=str(tmp_path / "missing-model"),
        output_dir=str(tmp_path / "o"),
        config=tiny_options(),
    )
    run_finetune(run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and run.finished_at is not None
    assert run.error and "missing-model" in run.error
    assert run.failure_kind == FailureKind.MODEL_LOAD
    assert not (tmp_path / "o").exists()


# --- lost workers ---------------------------------------------------------------------------------


def test_a_run_left_running_by_a_dead_process_is_failed_by_the_reaper_and_reads_never_write(
    client, researcher, admin_user, tmp_path, settings
):
    settings.FINETUNE_STALE_SECONDS = 600
    make_dataset()
    dead = finetune_run_create(dataset="reviews", base_model="m", output_dir=str(tmp_path / "a"))
    alive = finetune_run_create(dataset="reviews", base_model="m", output_dir=str(tmp_path / "b"))
    long_ago = timezone.now() - timedelta(hours=2)
    FinetuneRun.objects.filter(pk=dead.pk).update(
        status=JobStatus.RUNNING, worker="host:4242", started_at=long_ago, heartbeat_at=long_ago
    )
    FinetuneRun.objects.filter(pk=alive.pk).update(
        status=JobStatus.RUNNING, worker="host:4343", started_at=long_ago, heartbeat_at=timezone.now()
    )
    rows_before = list(FinetuneRun.objects.order_by("pk").values())
    client.force_login(researcher)
    reads = [f"/api/finetune-runs/{dead.pk}/", "/api/finetune-runs/", f"/runs/{dead.pk}/", "/runs/"]
    assert [client.get(url).status_code for url in reads] == [200] * 4
    client.force_login(admin_user)
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    assert client.get("/admin/generation/finetunerun/").status_code == 200
    assert list(FinetuneRun.objects.order_by("pk").values()) == rows_before  # no GET wrote anything
    assert client.get(f"/api/finetune-runs/{dead.pk}/").json()["status"] == "running"

    assert finetune_runs_fail_stale() == [dead.pk]  # what the workers' reaper does
    body = client.get(f"/api/finetune-runs/{dead.pk}/").json()
    assert body["status"] == "failed" and body["failure_kind"] == "worker_lost"
    assert body["error"].startswith("worker lost (no heartbeat since ")
    dead.refresh_from_db()
    assert dead.finished_at is not None
    assert client.get(f"/api/finetune-runs/{alive.pk}/").json()["status"] == "running"
    assert finetune_runs_fail_stale() == []  # nothing left to fail


def test_the_admins_fail_stale_action_is_a_post_that_fails_stale_runs(client, admin_user, tmp_path, settings):
    settings.FINETUNE_STALE_SECONDS = 600
    make_dataset()
    dead = finetune_run_create(dataset="reviews", base_model="m", output_dir=str(tmp_path / "a"))
    long_ago = timezone.now() - timedelta(hours=2)
    FinetuneRun.objects.filter(pk=dead.pk).update(status=JobStatus.RUNNING, heartbeat_at=long_ago)
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    response = client.post(
        "/admin/generation/finetunerun/", {"action": "fail_stale", "_selected_action": [dead.pk]}
    )
    assert response.status_code == 302
    dead.refresh_from_db()
    assert (dead.status, dead.failure_kind) == (JobStatus.FAILED, FailureKind.WORKER_LOST)


@pytest.mark.django_db(transaction=True)
def test_the_worker_reaps_stale_runs_periodically_on_a_thread_of_its_own(tmp_path, settings):
    from generation.worker.reaping import StaleRunReaper, reap_interval

    settings.FINETUNE_STALE_SECONDS = 1800
    assert reap_interval() == 60.0  # a quarter of the stale limit, at most a minute
    settings.FINETUNE_STALE_SECONDS = 40
    assert reap_interval() == 10.0
    make_dataset()
    dead = finetune_run_create(dataset="reviews", base_model="m", output_dir=str(tmp_path / "a"))
    FinetuneRun.objects.filter(pk=dead.pk).update(
        status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=2)
    )
    reaper = StaleRunReaper(interval=0.05)
    reaper.start()
    try:
        deadline = time.monotonic() + 20
        while settled(lambda: FinetuneRun.objects.get(pk=dead.pk).status) == JobStatus.RUNNING:
            assert time.monotonic() < deadline, "the reaper never failed the stale run"
            time.sleep(0.05)
    finally:
        reaper.stop()
        reaper.join(timeout=10)
    assert reaper.daemon and not reaper.is_alive()
    dead.refresh_from_db()
    assert dead.failure_kind == FailureKind.WORKER_LOST


def test_a_restarted_worker_fails_the_runs_it_left_running(tmp_path):
    make_dataset()
    mine = finetune_run_create(dataset="reviews", base_model="m", output_dir=str(tmp_path / "a"))
    other = finetune_run_create(dataset="reviews", base_model="m", output_dir=str(tmp_path / "b"))
    now = timezone.now()
    FinetuneRun.objects.filter(pk=mine.pk).update(
        status=JobStatus.RUNNING, worker="celery@gpu1", heartbeat_at=now
    )
    FinetuneRun.objects.filter(pk=other.pk).update(
        status=JobStatus.RUNNING, worker="celery@gpu2", heartbeat_at=now
    )
    with mock.patch("generation.worker.tasks.StaleRunReaper") as reaper:
        on_worker_ready(sender=SimpleNamespace(hostname="celery@gpu1"))  # what celery calls
    assert reaper.return_value.start.call_count == 1  # and the periodic reaper starts
    mine.refresh_from_db()
    other.refresh_from_db()
    assert (
        mine.status == JobStatus.FAILED
        and "celery@gpu1" in mine.error
        and mine.error.startswith("worker lost")
        and mine.failure_kind == FailureKind.WORKER_LOST
    )
    assert other.status == JobStatus.RUNNING
    assert fail_runs_left_by_this_worker("celery@gpu2") == [other.pk]


def test_the_worker_ready_signal_is_connected():
    import weakref

    from celery.signals import worker_ready

    receivers = [r() if isinstance(r, weakref.ReferenceType) else r for _, r in worker_ready.receivers]
    assert on_worker_ready in receivers


def test_run_queue_does_nothing_for_a_run_that_is_not_queued(tmp_path, django_capture_on_commit_callbacks):
    make_dataset()
    run = finetune_run_create(dataset="reviews", base_model="m", output_dir=str(tmp_path / "o"))
    run.status = JobStatus.FAILED
    with mock.patch(SEND) as send, django_capture_on_commit_callbacks(execute=True):
        finetune_run_queue(run)
    assert send.call_count == 0
