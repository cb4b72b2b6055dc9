"""Celery entry points for generation. Start a worker (one per GPU) with:

    .venv/bin/celery -A evalsite worker --pool solo --concurrency 1 -l info

(or `python manage.py worker`). The broker is settings.CELERY_BROKER_URL: by default kombu's
filesystem transport under $EVALSITE_VAR_DIR/broker (no server; the worker and the web process must
share that folder), or `CELERY_BROKER_URL=redis://host:6379/0` in production. The worker needs the
same DATABASE_URL as the site. The solo pool runs tasks in the worker's main process, so a model
loaded by the first chunk stays loaded for the next ones and CUDA is never initialised before a fork.

Worker environment: EVALSITE_DEVICE (cuda, cuda:1, cpu; default cuda when available), EVALSITE_DTYPE
(default bfloat16 on cuda, float32 on cpu), EVALSITE_TORCH_THREADS (CPU threads), HF_HUB_OFFLINE
(default 1 here; set 0 where workers reach the model hub).

How every (job, prompt, role) answer exists exactly once
---------------------------------------------------------
At least once: a chunk's message (`run_chunk`, the chunk id only) is acknowledged late (`acks_late`,
`reject_on_worker_lost`, prefetch 1), after chunk_run has returned. A worker SIGKILLed mid-chunk
never acknowledges it: on Redis the message stays in kombu's `unacked` set and any live worker puts it
back on the queue once it is older than the visibility timeout (CELERY_VISIBILITY_TIMEOUT, 4 h by
default: set it longer than the longest chunk, or a chunk still running is delivered a second time
too; kombu sweeps for such messages every `unacked_restore_interval` x `unacked_restore_throttle`
seconds, 100 by default). A worker that restarts sweeps at once. The server-less filesystem broker
(the demo's) removes a message's file when a worker takes it, so there a SIGKILLed worker's chunk is
lost and its job stays running: use Redis wherever workers can be killed. Redis itself must keep an
append-only file (`appendonly yes`, `appendfsync always` or `everysec`): a Redis without persistence
that restarts forgets every queued message, and nothing here sends a lost chunk again. With it, a
Redis killed while chunks run loses nothing: the running chunks' messages are in the `unacked` hash,
which the append-only file keeps; the solo worker notices the lost connection when its chunk ends (its
ack fails: "Couldn't ack ... ConnectionError"), reconnects (broker_connection_retry), and restores its
unacknowledged messages; the extra delivery finds the chunk finished and does nothing.

At most once: the database decides, not the broker.
- `Answer` has a unique constraint on (job, prompt, role) and answers are written with
  `bulk_create(ignore_conflicts=True)` after each batch, so two deliveries of one chunk running at the
  same time, or one after the other, can never store a second answer; each delivery first reads which
  answers exist and generates only the missing ones (a redelivery after a kill redoes at most the
  batch that was being generated).
- A delivery claims its chunk under a row lock (`services._chunk_claim`): a finished chunk means a
  duplicate message and nothing happens; a chunk marked running by an earlier attempt (its worker died)
  is taken over and `attempts` counts up; after GENERATION_CHUNK_MAX_ATTEMPTS (default 3) starts that
  never finished, plus the task's own retries, the chunk is failed ("given up after N attempts") so a
  chunk that kills its worker every time never loops forever.
- Status changes are conditional UPDATEs: a chunk's `finished_at` is set once
  (`finished_at IS NULL`), and the job's final status is set once (`status IN (queued, running)`) by
  whichever chunk finishes last, so no job is left running once every chunk has finished.
tests/test_worker_faults.py checks this with real workers on Redis: one SIGKILLed mid-chunk, every
message sent twice to two workers, a job queued before its (append-only) Redis is killed and restarted,
and Redis killed and restarted while a job's chunks are running.
"""

from __future__ import annotations

import logging
import os

from celery import shared_task
from celery.signals import worker_ready
from django.db import InterfaceError, OperationalError

# Before anything imports huggingface_hub: no machine here reaches the hub, and without this a
# mistyped hub id spends ~50 s in network retries. Export HF_HUB_OFFLINE=0 where workers reach it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

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
def run_chunk(self, chunk_id: int) -> None:
    """Answer one chunk of a job (both roles). Takes an id only; re-running it is harmless."""
    from .services import chunk_run

    # a planned retry is a new delivery too: it must not count against the crash limit
    chunk_run(chunk_id=chunk_id, retries=int(getattr(self.request, "retries", 0) or 0))


# A fine-tuning run is one long task. acks_late: a worker killed mid-run leaves the message to be
# delivered again, and that delivery finds the run no longer queued and does nothing (the run itself
# is failed by the restarted worker or by the stale-heartbeat check). Nothing is retried automatically:
# a failed run says why, and an admin queues it again.
@shared_task(name="generation.run_finetune", bind=True, acks_late=True, ignore_result=True)
def run_finetune(self, run_id: int) -> None:
    """Train one queued FinetuneRun (id only). A deleted or already claimed run is left alone."""
    from .services import finetune_run_start

    finetune_run_start(run_id=run_id, worker=getattr(self.request, "hostname", None) or "")


def fail_runs_left_by_this_worker(sender=None, **kwargs) -> None:
    """celery `worker_ready`: runs still marked running under this worker's name were killed with its
    previous process; runs whose heartbeat stopped anywhere are failed too."""
    from .services import finetune_runs_fail_for_worker, finetune_runs_fail_stale

    hostname = getattr(sender, "hostname", "") or ""
    try:
        lost = finetune_runs_fail_for_worker(hostname) + finetune_runs_fail_stale()
    except Exception:  # never keep a worker from starting over this
        logger.exception("could not check for fine-tuning runs left running")
        return
    if lost:
        logger.warning("fine-tuning runs %s were left running by a lost worker: marked failed", lost)


worker_ready.connect(fail_runs_left_by_this_worker, weak=False)
