"""Sending work to the Celery workers: the one place that talks to the broker from the web side.

Messages are published after the transaction that created their rows has committed (a worker must
never look for a row that is not there yet), by task name through the Celery app, so web code never
imports the worker package (which imports torch). A broker that does not answer after a few quick
retries is never worked around by running the task inline: the row fails, its `failure_kind` says
BROKER_UNREACHABLE and its error names the broker; callers re-read the row to report it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url

from evalsite.celery import app

from .models import FailureKind, FinetuneRun, GenerationJob, JobStatus

logger = logging.getLogger(__name__)

RUN_CHUNK = "generation.run_chunk"
RUN_FINETUNE = "generation.run_finetune"

# How hard to try before giving up on the broker: three attempts within about two seconds, so a web
# request that queues work never hangs on a broker that is down.
RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}


def broker_label() -> str:
    """The broker URL without its password, as error messages show it."""
    return str(maybe_sanitize_url(settings.CELERY_BROKER_URL))


def publish_on_commit(
    task_name: str, row: GenerationJob | FinetuneRun, message_ids: Callable[[], Iterable[int]]
) -> None:
    """Once the current transaction commits, send `task_name` one message per id that `message_ids()`
    returns then (each message carries one id). Nothing is sent for a row that is not queued.

    If the broker cannot be reached the row is failed (unless it has finished meanwhile) with
    failure_kind BROKER_UNREACHABLE and an error saying so; the remaining messages are not sent."""
    if row.status != JobStatus.QUEUED:
        return
    model, pk = type(row), row.pk
    transaction.on_commit(lambda: _publish(task_name, model, pk, message_ids()))


def _publish(
    task_name: str, model: type[GenerationJob] | type[FinetuneRun], pk: int, ids: Iterable[int]
) -> None:
    for message_id in ids:
        try:
            app.send_task(task_name, args=[message_id], retry=True, retry_policy=RETRY_POLICY)
        except (OperationalError, OSError) as exc:
            message = " ".join(f"broker unreachable ({broker_label()}): {type(exc).__name__}: {exc}".split())
            logger.error("%s %s: %s", model._meta.verbose_name, pk, message)
            model.fail_unless_finished(pk, error=message, kind=FailureKind.BROKER_UNREACHABLE)
            return
