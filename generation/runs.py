"""Fine-tuning runs as jobs: create, submit, claim, heartbeat, fail, and never leave one running forever.

A run is one Celery task ("generation.run_finetune", the run id only) that a worker trains
(generation/worker/training.py). The worker moves the row queued -> running with a conditional
UPDATE (`finetune_run_claim`), so a second delivery of the same message does nothing. While it trains
it refreshes `heartbeat_at`; the worker side's reaper fails a run whose heartbeat is older than
FINETUNE_STALE_SECONDS (its worker was killed, lost power, ran out of memory), and a worker that starts
again fails the runs it left behind. Pages and the API only read runs.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from .configs import ConfigError, FinetuneConfig
from .jobs import JobInputError, dataset_get
from .models import ACTIVE_STATUSES, Dataset, FailureKind, FinetuneRun, JobStatus, Prompt
from .paths import check_model_paths, check_output_folder
from .publishing import RUN_FINETUNE, publish_on_commit

logger = logging.getLogger(__name__)

# How often a training worker writes its heartbeat at most (one UPDATE per interval, however short
# its steps are); far below FINETUNE_STALE_SECONDS, so a slow epoch never looks like a dead worker.
HEARTBEAT_EVERY_SECONDS = 30.0


def finetune_stale_seconds() -> float:
    return float(getattr(django_settings, "FINETUNE_STALE_SECONDS", 1800))


def runs_for_display() -> QuerySet[FinetuneRun]:
    return FinetuneRun.objects.select_related("dataset")


# ---------------------------------------------------------------------------------------------
# Creating and submitting


def finetune_run_check(
    *, dataset: Dataset, base_model: str, output_dir: str, gguf_file: str = ""
) -> tuple[str, Path]:
    """(base model, output folder) after the checks every way of queueing a run shares; JobInputError."""
    base_model = (base_model or "").strip()
    if not base_model:
        raise JobInputError("base_model", "required")
    output_dir = (output_dir or "").strip()
    if not output_dir:
        raise JobInputError("output_dir", "required")
    try:  # inside EVALSITE_MODEL_ROOTS, new or empty: a run never writes over files it did not make
        check_model_paths(base_model=base_model, gguf_file=gguf_file)
        check_output_folder(output_dir)
    except ConfigError as exc:
        raise JobInputError(exc.field, exc.message) from None
    output = Path(output_dir).expanduser()
    if not Prompt.objects.filter(dataset=dataset).exclude(reference="").exists():
        raise JobInputError(
            "dataset", f'dataset "{dataset.name}" has no prompt with a reference answer to train on'
        )
    busy = (
        FinetuneRun.objects.filter(output_dir__in={output_dir, str(output)}, status__in=ACTIVE_STATUSES)
        .values_list("pk", flat=True)
        .first()
    )
    if busy is not None:
        raise JobInputError("output_dir", f"run {busy} (not finished) already writes to {output_dir}")
    return base_model, output


def finetune_run_create(
    *,
    dataset: Dataset | str | int,
    base_model: str,
    output_dir: str,
    gguf_file: str = "",
    config: FinetuneConfig | None = None,
    created_by: AbstractBaseUser | None = None,
) -> FinetuneRun:
    """A queued FinetuneRun row (not sent yet: see finetune_run_submit). Raises JobInputError, having
    created nothing, for an unknown dataset or one without reference answers, or an output folder
    that is a file or that another unfinished run already writes to."""
    if not isinstance(dataset, Dataset):
        dataset = dataset_get(dataset)
    config = config or FinetuneConfig()
    base_model, output = finetune_run_check(
        dataset=dataset, base_model=base_model, output_dir=output_dir, gguf_file=gguf_file
    )
    return FinetuneRun.objects.create(
        dataset=dataset,
        base_model=base_model,
        gguf_file=(gguf_file or "").strip(),
        output_dir=str(output),
        mode=config.mode,
        config=config.as_dict(),
        status=JobStatus.QUEUED,
        created_by=created_by,
    )


def finetune_run_queue(run: FinetuneRun) -> None:
    """Send the run to a worker once the current transaction commits; a broker that cannot be
    reached fails the run (see generation.publishing). A run that is not queued is not sent."""
    run_id = run.pk
    publish_on_commit(RUN_FINETUNE, run, lambda: [run_id])


def finetune_run_submit(
    *,
    dataset: Dataset | str | int,
    base_model: str,
    output_dir: str,
    gguf_file: str = "",
    config: FinetuneConfig | None = None,
    created_by: AbstractBaseUser | None = None,
) -> FinetuneRun:
    """Create a run and queue it after the commit; the one way every caller queues a run.

    Raises JobInputError, having created nothing. Returns the run re-read after the commit, so a
    broker failure while queueing shows in its status, error and failure_kind."""
    with transaction.atomic():
        run = finetune_run_create(
            dataset=dataset,
            base_model=base_model,
            output_dir=output_dir,
            gguf_file=gguf_file,
            config=config,
            created_by=created_by,
        )
        finetune_run_queue(run)
    run = runs_for_display().get(pk=run.pk)
    extra = {"run_id": run.pk, "status": run.status, "failure_kind": run.failure_kind}
    why = f" ({run.failure_kind}: {run.error})" if run.failure_kind else ""
    level = logging.WARNING if run.failure_kind else logging.INFO
    logger.log(level, "fine-tuning run %s %s%s", run.pk, run.status, why, extra=extra)
    return run


def finetune_run_submit_again(*, run: FinetuneRun, created_by: AbstractBaseUser | None = None) -> FinetuneRun:
    """A new run like `run`: same dataset, base model, output folder and every training option."""
    if run.dataset is None:
        raise JobInputError("dataset", f"Run {run.pk}: its dataset was deleted")
    return finetune_run_submit(
        dataset=run.dataset,
        base_model=run.base_model,
        gguf_file=run.gguf_file,
        output_dir=run.output_dir,
        config=FinetuneConfig.from_options(run.config or {}),
        created_by=created_by,
    )


# ---------------------------------------------------------------------------------------------
# While a worker trains it


def finetune_run_claim(*, run_id: int, worker: str) -> bool:
    """Move a queued run to running for `worker`. False when the run is gone or another delivery of
    its message already claimed (or finished) it: that delivery owns the run."""
    now = timezone.now()
    claimed = FinetuneRun.objects.filter(pk=run_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, worker=worker[:200], started_at=now, heartbeat_at=now, error=""
    )
    if claimed:
        extra = {"run_id": run_id, "status": JobStatus.RUNNING, "worker": worker}
        logger.info("fine-tuning run %s running on %s", run_id, worker, extra=extra)
    return claimed == 1


def finetune_run_heartbeat(run_id: int) -> None:
    FinetuneRun.objects.filter(pk=run_id, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())


def finetune_run_fail(*, run_id: int, error: str, kind: FailureKind) -> bool:
    """Mark a run failed unless it has already finished. True when this call made the change."""
    changed = FinetuneRun.fail_unless_finished(run_id, error=error, kind=kind)
    if changed:
        extra = {"run_id": run_id, "status": JobStatus.FAILED, "failure_kind": kind}
        logger.warning("fine-tuning run %s failed (%s): %s", run_id, kind, error, extra=extra)
    return changed


# ---------------------------------------------------------------------------------------------
# Runs whose worker is gone (called by the worker side, never by a page)


def finetune_runs_fail_stale(*, now: datetime | None = None) -> list[int]:
    """Fail every running run whose heartbeat (or start, if it never beat) is older than
    FINETUNE_STALE_SECONDS: its worker is gone. Returns the ids it failed."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=finetune_stale_seconds())
    stale = FinetuneRun.objects.filter(status=JobStatus.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff)
        | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
        | Q(heartbeat_at__isnull=True, started_at__isnull=True, created_at__lt=cutoff)
    )
    failed = []
    for run_id, beat, started, created in stale.values_list("pk", "heartbeat_at", "started_at", "created_at"):
        last = beat or started or created
        # conditional on the heartbeat read: a worker that beats right now keeps its run
        updated = FinetuneRun.objects.filter(pk=run_id, status=JobStatus.RUNNING, heartbeat_at=beat).update(
            status=JobStatus.FAILED,
            error=f"worker lost (no heartbeat since {last.isoformat(timespec='seconds')})",
            failure_kind=FailureKind.WORKER_LOST,
            finished_at=now,
        )
        if updated:
            extra = {"run_id": run_id, "status": JobStatus.FAILED, "failure_kind": FailureKind.WORKER_LOST}
            logger.warning("fine-tuning run %s: worker lost, marked failed", run_id, extra=extra)
            failed.append(run_id)
    return failed


def finetune_runs_fail_for_worker(worker: str) -> list[int]:
    """A worker that (re)starts runs nothing yet: runs still marked running under its name were left
    by its previous life (killed, crashed). Fail them now instead of waiting for the stale limit."""
    if not worker:
        return []
    now = timezone.now()
    failed = []
    for run_id in FinetuneRun.objects.filter(status=JobStatus.RUNNING, worker=worker).values_list(
        "pk", flat=True
    ):
        if FinetuneRun.objects.filter(pk=run_id, status=JobStatus.RUNNING, worker=worker).update(
            status=JobStatus.FAILED,
            error=f"worker lost ({worker} restarted while this run was running)",
            failure_kind=FailureKind.WORKER_LOST,
            finished_at=now,
        ):
            failed.append(run_id)
    return failed
