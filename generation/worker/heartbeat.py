"""A worker says it is alive: its `WorkerHeartbeat` row, read by /healthz, the job pages and the job API
(generation/workers.py).

The row is keyed by the Celery node name (`worker.1@gpu-host` under `make serve`), so a worker that
restarts under the same name takes its row back. It is written when the worker is ready, then every
WORKER_HEARTBEAT_SECONDS by a daemon thread of its own (a busy solo worker runs its task on the main
thread; this thread keeps beating while a long chunk or training runs), and `stopped_at` is set on a
warm shutdown. A worker that is killed, hangs or loses its machine simply stops beating and counts as
gone once WORKER_LIVENESS_SECONDS have passed. Times are the database's (`Now()`), so workers and web
processes on machines whose clocks differ agree on who is live.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from django.conf import settings
from django.db import connection
from django.db.models.functions import Now

from generation.ml.modeling import pick_device
from generation.models import WorkerHeartbeat

logger = logging.getLogger(__name__)


def heartbeat_seconds() -> float:
    return float(getattr(settings, "WORKER_HEARTBEAT_SECONDS", 5.0))


def worker_device() -> str:
    """The device this worker's models go to, and which GPU it was given, e.g. `cuda
    (CUDA_VISIBLE_DEVICES=1)`; decided without loading anything."""
    device = pick_device(os.environ.get("EVALSITE_DEVICE") or None)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if device.startswith("cuda") and visible is not None:
        return f"{device} (CUDA_VISIBLE_DEVICES={visible})"[:100]
    return device[:100]


def heartbeat_started(name: str, device: str) -> None:
    """The worker is ready: (re)write its row as started now, not stopped."""
    WorkerHeartbeat.objects.update_or_create(
        name=name[:200],
        defaults={
            "hostname": socket.gethostname()[:200],
            "pid": os.getpid(),
            "device": device,
            "started_at": Now(),
            "seen_at": Now(),
            "stopped_at": None,
        },
    )


def heartbeat_seen(name: str, device: str) -> None:
    """Still alive: move `seen_at` on. A row that is missing (the database was away when the worker
    started, or someone deleted it) is written again as started now."""
    if not WorkerHeartbeat.objects.filter(name=name[:200], stopped_at__isnull=True).update(seen_at=Now()):
        heartbeat_started(name, device)


def heartbeat_stopped(name: str) -> None:
    WorkerHeartbeat.objects.filter(name=name[:200]).update(seen_at=Now(), stopped_at=Now())


class HeartbeatThread(threading.Thread):
    """Writes the worker's heartbeat every `interval` seconds until `stop()`, which writes `stopped_at`.

    It keeps its database connection between beats (one UPDATE every few seconds) and closes it after
    an error, so a database that restarted is connected to again at the next beat."""

    def __init__(self, name: str, device: str, interval: float | None = None) -> None:
        super().__init__(name="evalsite-worker-heartbeat", daemon=True)
        self.worker = name
        self.device = device
        self.interval = interval if interval is not None else heartbeat_seconds()
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            self.beat(started=True)
            while not self._stopped.wait(self.interval):
                self.beat()
        finally:
            connection.close()

    def beat(self, *, started: bool = False) -> bool:
        try:
            if started:
                heartbeat_started(self.worker, self.device)
            else:
                heartbeat_seen(self.worker, self.device)
            return True
        except Exception:  # the database may be away for a moment: the next beat tries again
            logger.warning("worker %s: could not write its heartbeat", self.worker, exc_info=True)
            connection.close()
            return False

    def stop(self) -> None:
        """Stop beating, wait for a beat in progress, then record the warm stop (from this thread's
        caller, with its own connection)."""
        self._stopped.set()
        if self.is_alive():
            self.join(timeout=max(5.0, 2 * self.interval))
        try:
            heartbeat_stopped(self.worker)
        except Exception:  # the row then goes stale instead: the worker still counts as gone in time
            logger.warning("worker %s: could not record its stop", self.worker, exc_info=True)


_running: HeartbeatThread | None = None


def heartbeat_start(name: str) -> HeartbeatThread:
    """Start this process's heartbeat thread (celery `worker_ready`); the first beat is written at once."""
    global _running
    if _running is not None:
        _running.stop()
    _running = HeartbeatThread(name, worker_device())
    _running.start()
    logger.info(
        "worker %s ready on %s: heartbeat every %ss",
        name, _running.device, _running.interval, extra={"worker": name, "device": _running.device},
    )  # fmt: skip
    return _running


def heartbeat_stop() -> None:
    """Stop the heartbeat and record the stop (celery `worker_shutdown`, after the last task ended)."""
    global _running
    if _running is None:
        return
    running, _running = _running, None
    running.stop()
    logger.info("worker %s stopped", running.worker, extra={"worker": running.worker})
