"""Whether a generation worker is live, as the site reads it from the workers' heartbeat rows: /healthz,
the job API and the job pages. The rows here are written directly; tests/worker/test_heartbeat.py
checks that workers write them, tests/production/ that a real worker started by `make serve` does and
that a killed one shows as gone."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generation.jobs import job_create
from generation.management.commands.queue_generation import progress_line
from generation.models import GenerationJob, JobStatus, WorkerHeartbeat
from generation.selectors import job_progress
from generation.workers import worker_census
from tests.support.generation_data import make_dataset

pytestmark = pytest.mark.django_db

NO_WORKER_NOTE = "No live worker: nothing answers this job until a worker starts."
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def heartbeat(name: str, *, seen_ago: float = 0.0, stopped: bool = False) -> WorkerHeartbeat:
    """A worker's row as it would have written it, last seen `seen_ago` seconds ago."""
    now = timezone.now()
    return WorkerHeartbeat.objects.create(
        name=name,
        hostname=name.split("@")[-1],
        pid=4242,
        device="cuda (CUDA_VISIBLE_DEVICES=0)",
        started_at=now - timedelta(hours=1),
        seen_at=now - timedelta(seconds=seen_ago),
        stopped_at=now if stopped else None,
    )


def queued_job(dataset: str = "shop") -> GenerationJob:
    return job_create(dataset=make_dataset(dataset, n=2), base_model="some-model")


def test_a_worker_is_live_until_it_stops_or_misses_the_liveness_limit(settings):
    settings.WORKER_LIVENESS_SECONDS = 30
    heartbeat("worker.1@gpu1", seen_ago=2)
    heartbeat("worker.2@gpu1", seen_ago=31)  # killed or hung: silent for longer than the limit
    heartbeat("worker.3@gpu1", seen_ago=1, stopped=True)  # a warm shutdown
    heartbeat("worker.1@old-box", seen_ago=3 * 24 * 3600)  # gone long ago: no longer listed
    census = worker_census()
    assert [w.name for w in census.live] == ["worker.1@gpu1"]
    assert [w.name for w in census.gone] == ["worker.3@gpu1", "worker.2@gpu1"]
    assert census.live_count == 1 and census.liveness_seconds == 30


# ---------------------------------------------------------------------------------------------
# /healthz


def test_plain_healthz_is_the_web_node_check_and_ignores_workers(client):
    for path in ("/healthz", "/healthz?workers=0"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


def test_healthz_with_workers_answers_503_while_no_worker_is_live(client, settings):
    settings.WORKER_LIVENESS_SECONDS = 30
    heartbeat("worker.1@gpu1", seen_ago=45)
    response = client.get("/healthz?workers=1")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "ok",
        "broker": "ok",
        "workers": {"live": 0, "liveness_seconds": 30},
        "problems": {"workers": "no live worker: none has written its heartbeat in the last 30 s"},
    }


def test_healthz_with_workers_answers_200_with_the_live_count_and_no_host_names(client):
    heartbeat("worker.1@gpu1", seen_ago=1)
    heartbeat("worker.2@gpu1", seen_ago=1)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/healthz?workers=1")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "broker": "ok",
        "workers": {"live": 2, "liveness_seconds": 30},
    }
    assert b"gpu1" not in response.content  # anonymous callers learn counts, not machines
    assert not [q["sql"] for q in queries.captured_queries if WRITE.match(q["sql"])]


def test_a_worker_that_stops_beating_turns_healthz_to_503_once_the_limit_has_passed(client, settings):
    settings.WORKER_LIVENESS_SECONDS = 30
    worker = heartbeat("worker.1@gpu1", seen_ago=29)
    assert client.get("/healthz?workers=1").status_code == 200
    WorkerHeartbeat.objects.filter(pk=worker.pk).update(seen_at=timezone.now() - timedelta(seconds=31))
    assert client.get("/healthz?workers=1").status_code == 503


def test_healthz_rejects_a_workers_value_it_does_not_know(client):
    response = client.get("/healthz?workers=yes")
    assert response.status_code == 400
    assert response.json() == {"detail": "workers must be 1 (also check the workers) or 0"}


# ---------------------------------------------------------------------------------------------
# The job API and pages


def test_the_job_api_says_a_queued_job_waits_for_a_worker_while_none_is_live(client, admin_user):
    job = queued_job()
    client.force_login(admin_user)
    body = client.get(f"/api/jobs/{job.pk}/").json()
    assert (body["status"], body["workers_live"], body["waiting_for_worker"]) == ("queued", 0, True)
    assert client.get("/api/jobs/").json()[0]["waiting_for_worker"] is True

    heartbeat("worker.1@gpu1", seen_ago=1)
    body = client.get(f"/api/jobs/{job.pk}/").json()
    assert (body["workers_live"], body["waiting_for_worker"]) == (1, False)


def test_a_running_job_whose_worker_died_waits_and_a_finished_one_does_not(client, admin_user, settings):
    settings.WORKER_LIVENESS_SECONDS = 30
    running, finished = queued_job("one"), queued_job("two")
    GenerationJob.objects.filter(pk=running.pk).update(status=JobStatus.RUNNING)
    GenerationJob.objects.filter(pk=finished.pk).update(status=JobStatus.SUCCEEDED)
    worker = heartbeat("worker.1@gpu1", seen_ago=1)
    client.force_login(admin_user)
    assert client.get(f"/api/jobs/{running.pk}/").json()["waiting_for_worker"] is False
    WorkerHeartbeat.objects.filter(pk=worker.pk).update(seen_at=timezone.now() - timedelta(seconds=40))
    assert client.get(f"/api/jobs/{running.pk}/").json()["waiting_for_worker"] is True
    assert client.get(f"/api/jobs/{finished.pk}/").json()["waiting_for_worker"] is False
    assert NO_WORKER_NOTE in client.get(f"/jobs/{running.pk}/").content.decode()
    assert NO_WORKER_NOTE not in client.get(f"/jobs/{finished.pk}/").content.decode()


def test_the_job_pages_say_no_live_worker_and_list_the_workers(client, admin_user):
    job = queued_job()
    client.force_login(admin_user)
    detail = client.get(f"/jobs/{job.pk}/").content.decode()
    listing = client.get("/jobs/").content.decode()
    assert NO_WORKER_NOTE in detail and NO_WORKER_NOTE in listing
    assert "<strong>No live worker</strong>: queued jobs wait until one starts." in listing

    heartbeat("worker.1@gpu1", seen_ago=1)
    heartbeat("worker.2@gpu1", seen_ago=1, stopped=True)
    detail = client.get(f"/jobs/{job.pk}/").content.decode()
    listing = client.get("/jobs/").content.decode()
    assert "No live worker" not in detail and "No live worker" not in listing
    assert "1 live:" in listing and "<code>worker.1@gpu1</code> on cuda (CUDA_VISIBLE_DEVICES=0)" in listing
    assert "<code>worker.2@gpu1</code> (stopped " in listing
    assert "<code>worker.1@gpu1</code>" in detail


def test_queue_generation_waits_saying_no_live_worker_until_one_is():
    job = queued_job()
    assert progress_line(job_progress(job, census=worker_census())).endswith("queued  (no live worker)")
    heartbeat("worker.1@gpu1", seen_ago=1)
    assert progress_line(job_progress(job, census=worker_census())).endswith("  queued")
