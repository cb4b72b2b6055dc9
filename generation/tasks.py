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
"""

from __future__ import annotations

import os

from celery import shared_task
from django.db import InterfaceError, OperationalError

# Before anything imports huggingface_hub: no machine here reaches the hub, and without this a
# mistyped hub id spends ~50 s in network retries. Export HF_HUB_OFFLINE=0 where workers reach it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# Only a database that went away for a moment is worth retrying (with backoff, a few times); every
# other failure is recorded on the chunk by chunk_run itself and the job goes on.
@shared_task(
    name="generation.run_chunk",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=5,
)
def run_chunk(chunk_id: int) -> None:
    """Answer one chunk of a job (both roles). Takes an id only; re-running it is harmless."""
    from .services import chunk_run

    chunk_run(chunk_id=chunk_id)
