"""Celery entry points of the worker. Start a worker (one per GPU) with:

    .venv/bin/celery -A evalsite worker --pool solo --concurrency 1 -l info

(or `python manage.py worker`; `make serve` starts one per GPU from the Procfile, named worker.N@host,
with CUDA_VISIBLE_DEVICES=N-1). Each worker writes a heartbeat row while it runs (signal handlers at
the end of this module), which is how the site knows a worker is listening. Celery finds this module
by autodiscovery (generation.worker is an installed app) when a worker starts; the web side sends
tasks by name ("generation.run_chunk", "generation.run_finetune", see generation/publishing.py) and
never imports it. The broker is settings.CELERY_BROKER_URL: by default kombu's filesystem transport
under $EVALSITE_VAR_DIR/broker (no server; the worker and the web process must share that folder), or
`CELERY_BROKER_URL=redis://host:6379/0` in production. The worker needs the same DATABASE_URL as the
site. The solo pool runs tasks in the worker's main process, so a model loaded by the first chunk
stays loaded for the next ones and CUDA is never initialised before a fork.

Worker environment: EVALSITE_DEVICE (cuda, cuda:1, cpu; default cuda when available), EVALSITE_DTYPE
(default bfloat16 on cuda, float32 on cpu), EVALSITE_TORCH_THREADS (CPU threads), HF_HUB_OFFLINE
(default 1 here; set 0 where workers reach the model hub).

Every chunk's message is delivered at least once
------------------------------------------------
A chunk's message (the chunk id only) is acknowledged late (`acks_late`, `reject_on_worker_lost`,
prefetch 1), after chunk_run has returned. A worker SIGKILLed mid-chunk never acknowledges it: on
Redis the message stays in kombu's `unacked` set and any live worker puts it back on the queue once it
is older than the visibility timeout (CELERY_VISIBILITY_TIMEOUT, 4 h by default: set it longer than
the longest chunk, or a chunk still running is delivered a second time too; kombu sweeps for such
messages every `unacked_restore_interval` x `unacked_restore_throttle` seconds). A worker that restarts
sweeps at once. The server-less filesystem broker (the demo's) removes a message's file when a worker
takes it, so there a SIGKILLed worker's chunk is lost and its job stays running: use Redis wherever
workers can be killed. Redis itself must keep an append-only file (`appendonly yes`, `appendfsync
always` or `everysec`): a Redis without persistence that restarts forgets every queued message, and
nothing here sends a lost chunk again. With it, a Redis killed while chunks run loses nothing: the
running chunks' messages are in the `unacked` hash, which the append-only file keeps; the solo worker
notices the lost connection when its chunk ends (its ack fails: "Couldn't ack ... ConnectionError"),
reconnects (broker_connection_retry), and restores its unacknowledged messages; the extra delivery
finds the chunk finished and does nothing. That every answer is made at most once is the database's
work: see generation/worker/chunks.py. tests/reliability/test_worker_faults.py checks both with real
workers on Redis: one SIGKILLed mid-chunk, every message sent twice to two workers, a job queued
before its (append-only) Redis is killed and restarted, and Redis killed and restarted while a job's
chunks are running.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from celery.signals import after_setup_logger, worker_ready, worker_shutdown
from django.conf import settings
from django.db import InterfaceError, OperationalError

from evalsite.logformat import JsonFormatter

from .chunks import chunk_run
from .heartbeat import heartbeat_start, heartbeat_stop
from .reaping import StaleRunReaper, fail_runs_left_by_this_worker
from .training import finetune_run_start

logger = logging.getLogger(__name__)


# Only a database that went away for a moment is worth retrying (with backoff, a few times); every
# other failure is recorded on the chunk by chunk_run itself and the job goes on.
@shared_task(
    name="generation.run_chunk",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=5,
)
def run_chunk(self: Task, chunk_id: int) -> None:
    """Answer one chunk of a job (both roles). Takes an id only; re-running it is harmless."""
    # a planned retry is a new delivery too: it must not count against the crash limit
    chunk_run(chunk_id=chunk_id, retries=int(getattr(self.request, "retries", 0) or 0))


# A fine-tuning run is one long task. acks_late: a worker killed mid-run leaves the message to be
# delivered again, and that delivery finds the run no longer queued and does nothing (the run itself
# is failed by the restarted worker or by the reaper). Nothing is retried automatically: a failed run
# says why, and an admin queues it again.
@shared_task(name="generation.run_finetune", bind=True, acks_late=True, ignore_result=True)
def run_finetune(self: Task, run_id: int) -> None:
    """Train one queued FinetuneRun (id only). A deleted or already claimed run is left alone."""
    finetune_run_start(run_id=run_id, worker=getattr(self.request, "hostname", None) or "")


def on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    """celery `worker_ready`: fail the runs a previous life of this worker left running and every
    stale run, then keep failing stale runs periodically while the worker runs."""
    try:
        fail_runs_left_by_this_worker(getattr(sender, "hostname", "") or "")
    except Exception:  # never keep a worker from starting over this
        logger.exception("could not check for fine-tuning runs left running")
    StaleRunReaper().start()


worker_ready.connect(on_worker_ready, weak=False)


def start_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    """celery `worker_ready`: write this worker's heartbeat now and every few seconds from a thread
    (generation/worker/heartbeat.py), so /healthz and the job pages know a worker is listening."""
    heartbeat_start(getattr(sender, "hostname", "") or "celery@unknown")


def stop_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    """celery `worker_shutdown` (a warm shutdown, after the last task): record the stop, so the worker
    counts as gone at once instead of after the liveness limit."""
    heartbeat_stop()


def use_log_format(logger: logging.Logger | None = None, **kwargs: Any) -> None:
    """celery `after_setup_logger`: Celery replaces the root logger's handlers with its own text format;
    with LOG_FORMAT=json the worker writes one JSON object per line, like the web processes."""
    if logger is not None and getattr(settings, "LOG_FORMAT", "text") == "json":
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())


worker_ready.connect(start_heartbeat, weak=False)
worker_shutdown.connect(stop_heartbeat, weak=False)
after_setup_logger.connect(use_log_format, weak=False)
