"""Reads for pages and the API: a job's progress and a fine-tuning run's live figures.

Nothing here writes: a run whose worker went silent is failed by the worker side's reaper, not by a
page that reads it. Whether any worker is live comes from generation/workers.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from .job_systems import best_epoch_and_loss
from .models import ACTIVE_STATUSES, Answer, FinetuneRun, GenerationJob, JobSystem, Role
from .workers import WorkerCensus


@dataclass
class Progress:
    status: str
    done: int
    total: int
    output_tokens: int
    elapsed_s: float | None
    tokens_per_s: float | None
    eta_s: float | None
    fallback: int
    error: str
    # queued or running while no worker is live: nothing answers it until one starts
    waiting_for_worker: bool = False


def job_progress(job: GenerationJob, census: WorkerCensus | None = None) -> Progress:
    """Answers made so far, output tokens per second of wall time since the job started, and an ETA
    from the answer rate so far (None until there is something to go on). With the workers' `census`
    (read once per page or API answer), whether the job waits for a worker."""
    stats = Answer.objects.filter(job=job).aggregate(tokens=Sum("output_tokens"))
    made = Answer.objects.filter(job=job)
    if not job.imported:  # `total` counts what the workers generate: not a system's imported answers
        imported = JobSystem.objects.filter(job=job, kind=JobSystem.Kind.IMPORTED).values("name")
        made = made.exclude(role__in=imported)
    done = made.count()
    fallback = Answer.objects.filter(job=job, fallback=True).count()
    tokens = int(stats["tokens"] or 0)
    elapsed = None
    if job.started_at and not job.imported:
        end = job.finished_at or timezone.now()
        elapsed = max((end - job.started_at).total_seconds(), 0.0)
    tokens_per_s = round(tokens / elapsed, 2) if elapsed and tokens else None
    eta = None
    if job.status in ACTIVE_STATUSES and elapsed and done:
        eta = round((job.total - done) * elapsed / done, 1)
    return Progress(
        status=job.status,
        done=done,
        total=job.total,
        output_tokens=tokens,
        elapsed_s=elapsed,
        tokens_per_s=tokens_per_s,
        eta_s=eta,
        fallback=fallback,
        error=job.error,
        waiting_for_worker=census is not None and census.waiting_for_worker(job.status),
    )


@dataclass
class SystemRow:
    """One system of a job as pages and the API show it. `kind`: "base" (the pre-trained system),
    "adapter" (the fine-tuned one and further adapters) or "imported" (answers brought in)."""

    name: str
    kind: str
    adapter_path: str
    epoch: int | None
    val_loss: float | None
    answers: int
    fallback: int


def job_systems(job: GenerationJob) -> list[SystemRow]:
    """Every system of the job in its order (pre-trained, fine-tuned, then its JobSystems by id), with
    the answers each has made so far. The fine-tuned system's epoch and validation loss are its run's
    best, when the job has a run."""
    return jobs_systems([job])[job.pk]


def jobs_systems(jobs: Sequence[GenerationJob]) -> dict[int, list[SystemRow]]:
    """`job_systems` of several jobs (a page of the job list) in two queries: {job id: rows}."""
    ids = [job.pk for job in jobs]
    counts = {
        (row["job_id"], row["role"]): row
        for row in Answer.objects.filter(job_id__in=ids)
        .values("job_id", "role")
        .annotate(n=Count("id"), fallback=Count("id", filter=Q(fallback=True)))
    }
    further: dict[int, list[JobSystem]] = {pk: [] for pk in ids}
    for system in JobSystem.objects.filter(job_id__in=ids).order_by("id"):
        further[system.job_id].append(system)
    return {job.pk: _systems_of(job, further[job.pk], counts) for job in jobs}


def _systems_of(
    job: GenerationJob, further: list[JobSystem], counts: dict[tuple[int, str], dict[str, Any]]
) -> list[SystemRow]:
    def row(name: str, kind: str, path: str, epoch: Any = None, val_loss: Any = None) -> SystemRow:
        made = counts.get((job.pk, name), {})
        return SystemRow(name, kind, path, epoch, val_loss, made.get("n", 0), made.get("fallback", 0))

    best_epoch, best_loss = best_epoch_and_loss(job.finetune_run if job.finetune_run_id else None)
    own = "imported" if job.imported else None
    return [
        row(Role.PRETRAINED.value, own or "base", ""),
        row(
            Role.FINETUNED.value,
            own or JobSystem.Kind.ADAPTER.value,
            job.finetuned_model.adapter_path if job.finetuned_model else "",
            best_epoch,
            best_loss,
        ),
        *(row(s.name, s.kind, s.adapter_path, s.epoch, s.val_loss) for s in further),
    ]


def finetune_run_progress(run: FinetuneRun) -> dict[str, Any]:
    """What the run page and the API show: the live metrics with safe defaults."""
    m = run.metrics or {}
    epochs = (run.config or {}).get("epochs")
    wall = m.get("run_wall_seconds") or m.get("wall_seconds")
    if wall is None and run.started_at and run.status in ACTIVE_STATUSES:
        wall = round((timezone.now() - run.started_at).total_seconds(), 1)
    return {
        "status": run.status,
        "epochs": epochs,
        "epochs_run": int(m.get("epochs_run") or 0),
        "best_epoch": m.get("best_epoch"),
        "best_val_loss": m.get("best_val_loss"),
        "early_stopped": bool(m.get("early_stopped")),
        "train_loss": list(m.get("train_loss") or []),
        "val_loss": list(m.get("val_loss") or []),
        "val_loss_before_training": m.get("val_loss_before_training"),
        "trainable_params": m.get("trainable_params"),
        "total_params": m.get("total_params"),
        "trainable_pct": m.get("trainable_pct"),
        "peak_memory_bytes": m.get("peak_memory_bytes"),
        "peak_memory_kind": m.get("peak_memory_kind"),
        "wall_seconds": wall,
        "tokens_per_s": m.get("tokens_per_s"),
        "device": m.get("device"),
        "error": run.error.splitlines()[0] if run.error else "",
    }
