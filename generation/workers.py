"""Which generation workers are live, read from the heartbeats they write (generation/worker/heartbeat.py).

A worker writes its `WorkerHeartbeat` row when it starts, every WORKER_HEARTBEAT_SECONDS while it runs
and once more (`stopped_at`) on a warm shutdown. It is live when it has not stopped and was seen within
WORKER_LIVENESS_SECONDS, so a worker that was killed, hangs or lost its machine counts as gone at most
that long after its last heartbeat. Both sides use the database's clock (`Now()`), so machines whose
clocks differ still agree. This works with every broker: the demo's filesystem broker has no broadcast,
so Celery's own `control.ping` is not an option.

Read only: /healthz, the job pages and the job API call this; nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import DateTimeField, ExpressionWrapper, QuerySet, Value
from django.db.models.functions import Now

from .models import ACTIVE_STATUSES, WorkerHeartbeat

# workers gone for longer than this are no longer listed on the jobs page
RECENTLY_GONE = timedelta(days=1)


def worker_liveness_seconds() -> float:
    return float(getattr(settings, "WORKER_LIVENESS_SECONDS", 30.0))


def _database_now_minus(delta: timedelta) -> ExpressionWrapper:
    return ExpressionWrapper(Now() - Value(delta), output_field=DateTimeField())


def live_workers() -> QuerySet[WorkerHeartbeat]:
    """Workers that have not stopped and were seen within the liveness limit (by the database's clock)."""
    cutoff = _database_now_minus(timedelta(seconds=worker_liveness_seconds()))
    return WorkerHeartbeat.objects.filter(stopped_at__isnull=True, seen_at__gte=cutoff)


@dataclass(frozen=True)
class WorkerCensus:
    """The live workers' node names, the workers gone within the last day (stopped, or silent for longer
    than the liveness limit), and the limit itself."""

    live: list[WorkerHeartbeat]
    gone: list[WorkerHeartbeat]
    liveness_seconds: float

    @property
    def live_count(self) -> int:
        return len(self.live)

    def waiting_for_worker(self, status: str) -> bool:
        """A queued or running job with no live worker: nothing will answer it until one starts."""
        return status in ACTIVE_STATUSES and not self.live

    def as_health(self) -> dict[str, object]:
        """What /healthz tells anonymous callers: counts only, no host names."""
        return {"live": self.live_count, "liveness_seconds": self.liveness_seconds}


def worker_census() -> WorkerCensus:
    """The workers as the pages and the API show them (two queries)."""
    live = list(live_workers())
    live_ids = [w.pk for w in live]
    recent = _database_now_minus(RECENTLY_GONE)
    gone = WorkerHeartbeat.objects.filter(seen_at__gte=recent).exclude(pk__in=live_ids)
    gone_list = list(gone.order_by("-seen_at"))
    return WorkerCensus(live=live, gone=gone_list, liveness_seconds=worker_liveness_seconds())
