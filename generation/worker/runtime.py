"""What one worker process keeps between tasks, in one object: the models it holds and what it has
already recorded about loading them.

Celery runs the worker with the solo pool, one process per GPU, so a model loaded by a job's first
chunk is still there for its next chunks (and for the next job on the same base). Tests make their
own WorkerRuntime so that no state leaks from one test into another.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from generation.ml.loading import ModelHost
from generation.models import GenerationJob

# A job as this process knows it: its id and creation time, because ids come back after a database
# is reset (or a test rolled back), and a new job must not inherit an old one's records.
JobKey = tuple[int, str]


def worker_name() -> str:
    """host:pid: who made an answer, a load attempt or an inline fine-tuning run."""
    return f"{socket.gethostname()}:{os.getpid()}"


def job_key(job: GenerationJob) -> JobKey:
    return (job.pk, job.created_at.isoformat())


@dataclass
class WorkerRuntime:
    """The process's models (`host`), the (job, kind, target) loads already written as
    ModelLoadAttempt rows (a job's later chunks reuse the model without a new row), and the adapters
    that failed for a job (its later chunks fall back at once instead of trying again)."""

    host: ModelHost = field(default_factory=ModelHost)
    recorded_loads: set[tuple[JobKey, str, str]] = field(default_factory=set)
    failed_adapters: dict[tuple[JobKey, str], str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return worker_name()


_current: WorkerRuntime | None = None


def current_runtime() -> WorkerRuntime:
    """This process's runtime, made on first use (in the worker: by its first task)."""
    global _current
    if _current is None:
        _current = WorkerRuntime()
    return _current
