"""A worker's heartbeat: written when Celery says the worker is ready, every few seconds from a thread of
its own, and marked stopped on a warm shutdown; the worker's log lines in JSON with LOG_FORMAT=json.
Real processes started by `make serve`: tests/production/."""

from __future__ import annotations

import json
import logging
import time
import weakref
from datetime import timedelta
from types import SimpleNamespace

import pytest
from celery.signals import after_setup_logger, worker_ready, worker_shutdown
from django.utils import timezone

from evalsite.logformat import JsonFormatter
from generation.models import WorkerHeartbeat
from generation.worker import heartbeat as heartbeat_module
from generation.worker.heartbeat import HeartbeatThread, worker_device
from generation.worker.tasks import start_heartbeat, stop_heartbeat, use_log_format
from generation.workers import worker_census
from tests.support.threads import settled


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not settled(condition):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_the_thread_beats_until_stopped_and_then_records_the_stop():
    thread = HeartbeatThread("worker.1@gpu1", "cpu", interval=0.05)
    thread.start()
    try:
        wait_until(lambda: WorkerHeartbeat.objects.filter(name="worker.1@gpu1").exists())
        first = settled(lambda: WorkerHeartbeat.objects.get(name="worker.1@gpu1"))
        assert (first.device, first.stopped_at) == ("cpu", None) and first.pid > 0
        wait_until(lambda: WorkerHeartbeat.objects.get(name="worker.1@gpu1").seen_at > first.seen_at)
        assert [w.name for w in settled(worker_census).live] == ["worker.1@gpu1"]
    finally:
        thread.stop()
    assert thread.daemon and not thread.is_alive()
    row = WorkerHeartbeat.objects.get(name="worker.1@gpu1")
    assert row.stopped_at is not None and row.started_at == first.started_at
    assert worker_census().live == []
    time.sleep(0.2)  # nothing beats any more: the row stays stopped
    assert WorkerHeartbeat.objects.get(name="worker.1@gpu1").seen_at == row.seen_at


@pytest.mark.django_db(transaction=True)
def test_a_restarted_worker_takes_its_row_back_and_a_deleted_row_is_written_again():
    long_ago = timezone.now() - timedelta(days=400)
    WorkerHeartbeat.objects.create(
        name="worker.1@gpu1", started_at=long_ago, seen_at=long_ago, stopped_at=long_ago
    )
    thread = HeartbeatThread("worker.1@gpu1", "cpu", interval=0.05)
    thread.start()
    try:
        wait_until(lambda: worker_census().live_count == 1)
        settled(WorkerHeartbeat.objects.all().delete)  # e.g. an admin cleaned the table up
        wait_until(lambda: worker_census().live_count == 1)
    finally:
        thread.stop()
    assert WorkerHeartbeat.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_celery_signals_start_and_stop_the_heartbeat(settings):
    settings.WORKER_HEARTBEAT_SECONDS = 0.05
    start_heartbeat(sender=SimpleNamespace(hostname="worker.2@gpu1"))  # what celery calls when ready
    try:
        wait_until(lambda: worker_census().live_count == 1)
        assert heartbeat_module._running is not None and heartbeat_module._running.interval == 0.05
    finally:
        stop_heartbeat(sender=None)  # celery's worker_shutdown, after the last task of a warm shutdown
    assert heartbeat_module._running is None
    assert WorkerHeartbeat.objects.get(name="worker.2@gpu1").stopped_at is not None
    for signal, handler in (
        (worker_ready, start_heartbeat),
        (worker_shutdown, stop_heartbeat),
        (after_setup_logger, use_log_format),
    ):
        receivers = [r() if isinstance(r, weakref.ReferenceType) else r for _, r in signal.receivers]
        assert handler in receivers


def test_the_device_names_the_gpu_the_worker_was_given(monkeypatch):
    monkeypatch.setenv("EVALSITE_DEVICE", "cpu")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert worker_device() == "cpu"
    monkeypatch.setenv("EVALSITE_DEVICE", "cuda")
    assert worker_device() == "cuda (CUDA_VISIBLE_DEVICES=1)"


def test_with_log_format_json_the_worker_logs_one_json_object_per_line(settings):
    handler = logging.StreamHandler()
    root = logging.getLogger("evalsite-test-root")
    root.addHandler(handler)
    try:
        settings.LOG_FORMAT = "text"
        use_log_format(logger=root)
        assert not isinstance(handler.formatter, JsonFormatter)
        settings.LOG_FORMAT = "json"
        use_log_format(logger=root)  # what celery calls once it has installed its handlers
        assert isinstance(handler.formatter, JsonFormatter)
    finally:
        root.removeHandler(handler)
    record = logging.LogRecord("generation.worker.chunks", logging.INFO, __file__, 1, "job %s %s:\nline 2",
                               (7, "succeeded"), None)  # fmt: skip
    record.job_id, record.status = 7, "succeeded"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "job 7 succeeded:\nline 2"
    assert (entry["level"], entry["logger"], entry["job_id"], entry["status"]) == (
        "INFO", "generation.worker.chunks", 7, "succeeded"
    )
    assert entry["time"].endswith("+00:00") and "args" not in entry and "msg" not in entry
