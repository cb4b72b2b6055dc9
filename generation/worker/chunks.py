"""Answering one chunk of a job on a worker, exactly once per (job, prompt, role).

A chunk's prompts are answered by every system a worker generates for the job: pre-trained, fine-tuned
and each further system of kind "adapter" (generation/job_systems.py); an answer's `role` is the name
of its system.

A chunk's task ("generation.run_chunk") carries the chunk id only. Its delivery is at least once:
the message is acknowledged late, so a worker killed mid-chunk leaves it to be delivered again
(see generation/worker/tasks.py). The database makes every answer exist at most once:

- a delivery claims its chunk under a row lock (`chunk_claim`): a finished chunk means a duplicate
  message and nothing happens; a chunk marked running by an earlier attempt (its worker died) is taken
  over and `attempts` counts up; after GENERATION_CHUNK_MAX_ATTEMPTS starts that never finished (plus
  the task's own planned retries) the chunk is failed, so one that kills its worker every time never
  loops forever;
- each delivery reads which answers exist and makes only the missing ones, saving each batch with
  `bulk_create(ignore_conflicts=True)` over the (job, prompt, role) unique constraint, so two
  deliveries running at once, or one after the other, never store a second answer;
- status changes are conditional UPDATEs: a chunk's `finished_at` is set once, and the job's final
  status is set once, by whichever chunk finishes last, so two workers racing cannot both win and no
  job stays running once every chunk has finished.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from generation.configs import GenerationSettings
from generation.job_systems import generated_system_names
from generation.jobs import job_fail
from generation.ml import engine, prompting
from generation.ml.modeling import ModelLoadError
from generation.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    Answer,
    FailureKind,
    GenerationChunk,
    GenerationJob,
    JobStatus,
    Prompt,
)

from .role_models import load_role_models
from .runtime import WorkerRuntime, current_runtime
from .serving import serving_measure

logger = logging.getLogger(__name__)


def chunk_max_attempts() -> int:
    """Deliveries of one chunk that may start before it is given up (a worker died each time)."""
    return max(1, int(getattr(settings, "GENERATION_CHUNK_MAX_ATTEMPTS", 3)))


def chunk_run(*, chunk_id: int, retries: int = 0, runtime: WorkerRuntime | None = None) -> None:
    """Make the missing answers of one chunk (every system the workers generate for its job). Safe to
    run twice, or at once on two workers.

    Whatever happens, the chunk ends finished (succeeded, failed or cancelled) so the job never
    stays running; only a lost database connection (retried by the task) or a killed worker (the
    message is delivered again) can leave it for a later delivery to finish."""
    runtime = runtime or current_runtime()
    chunk, ended = chunk_claim(chunk_id, runtime.name, retries)
    if chunk is None:
        if ended:  # committed: now the job may be finished too
            job_id = GenerationChunk.objects.filter(pk=chunk_id).values_list("job_id", flat=True).first()
            if job_id is not None:
                job_finish_if_done(job_id=job_id)
        return
    job = chunk.job
    prompts = list(Prompt.objects.filter(pk__in=chunk.prompt_ids).order_by("id"))
    existing = set(Answer.objects.filter(job=job, prompt__in=prompts).values_list("prompt_id", "role"))
    systems = generated_system_names(job)
    missing = [(p, role) for p in prompts for role in systems if (p.pk, role) not in existing]
    if not missing:
        chunk_finish(chunk.pk, job.pk, JobStatus.SUCCEEDED)
        return
    try:
        finished_as = answer_missing(runtime, job, missing)
    except ModelLoadError as exc:
        # Every chunk would fail the same way: fail the job now so the others stop at once.
        message = " ".join(f"cannot load the base model: {exc}".split())
        job_fail(job_id=job.pk, error=message, kind=FailureKind.MODEL_LOAD)
        chunk_finish(chunk.pk, job.pk, JobStatus.FAILED, message, kind=FailureKind.MODEL_LOAD)
        return
    except Exception as exc:  # e.g. out of memory: this chunk fails, the job reports it, others go on
        logger.exception("job %s chunk %s failed", job.pk, chunk.index)
        error = f"chunk {chunk.index}: {type(exc).__name__}: {exc}"
        chunk_finish(chunk.pk, job.pk, JobStatus.FAILED, error, kind=FailureKind.ERROR)
        return
    if finished_as == JobStatus.CANCELLED:
        chunk_finish(chunk.pk, job.pk, JobStatus.CANCELLED, "job cancelled")
        return
    if chunk.index == 0:  # the job's serving latency, once, on a warm model (generation/worker/serving.py)
        serving_measure(runtime=runtime, job=job)
    chunk_finish(chunk.pk, job.pk, JobStatus.SUCCEEDED)


def chunk_claim(chunk_id: int, worker: str, retries: int = 0) -> tuple[GenerationChunk | None, bool]:
    """Take the chunk for this delivery, under a row lock: (chunk, False) when it is ours to run.

    Otherwise (None, ended): the chunk is gone or already finished (a duplicate delivery: nothing to
    do), or this call ended it (ended=True) because its job has finished or because it has been
    started `chunk_max_attempts()` times without finishing (a poison chunk that kills its worker
    every time): it is failed here so it never loops forever. `retries` (the task's planned retries
    after a transient database error, each a new delivery) raise that limit by as many.
    A chunk marked running by an earlier attempt is taken over: that attempt's worker died (or its
    message outlived the visibility timeout); only the answers still missing are made."""
    with transaction.atomic():
        chunk = (
            GenerationChunk.objects.select_for_update(of=("self",))
            .select_related("job__pretrained_model", "job__finetuned_model")
            .filter(pk=chunk_id)
            .first()
        )
        if chunk is None or chunk.finished_at is not None:
            return None, False  # the job was deleted after queueing, or a duplicate delivery
        job = chunk.job
        now = timezone.now()
        if job.status in FINISHED_STATUSES:
            why = f"not run: the job had already {job.status}"
            GenerationChunk.objects.filter(pk=chunk.pk).update(
                status=JobStatus.CANCELLED, error=why, failure_kind=FailureKind.NOT_RUN, finished_at=now
            )
            return None, True
        limit = chunk_max_attempts() + max(0, int(retries))
        if chunk.attempts >= limit:
            why = (
                f"chunk {chunk.index}: given up after {chunk.attempts} attempts that never finished "
                f"(last on {chunk.worker or 'an unknown worker'})"
            )
            logger.error("job %s %s", job.pk, why)
            GenerationChunk.objects.filter(pk=chunk.pk).update(
                status=JobStatus.FAILED, error=why, failure_kind=FailureKind.GAVE_UP, finished_at=now
            )
            return None, True
        if chunk.status == JobStatus.RUNNING:
            logger.warning(
                "job %s chunk %s: attempt %s by %s did not finish; %s takes it over (attempt %s of %s)",
                job.pk, chunk.index, chunk.attempts, chunk.worker, worker, chunk.attempts + 1, limit,
            )  # fmt: skip
        if GenerationJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=now
        ):
            extra = {"job_id": job.pk, "status": JobStatus.RUNNING, "worker": worker}
            logger.info("job %s running", job.pk, extra=extra)
        logger.debug("job %s chunk %s claimed by %s", job.pk, chunk.index, worker, extra={"job_id": job.pk})
        GenerationChunk.objects.filter(pk=chunk.pk).update(
            status=JobStatus.RUNNING, worker=worker, attempts=F("attempts") + 1, started_at=now
        )
        chunk.attempts += 1
        chunk.status, chunk.worker, chunk.started_at = JobStatus.RUNNING, worker, now
        return chunk, False


def answer_missing(runtime: WorkerRuntime, job: GenerationJob, missing: list[tuple[Prompt, str]]) -> str:
    """Generate and save the missing answers batch by batch; stops early if the job is cancelled.
    Returns the status the chunk finished as (SUCCEEDED or CANCELLED)."""
    models = load_role_models(runtime, job)
    entry = models.entry
    job_settings = GenerationSettings.from_dict(job.settings or {})
    texts: dict[int, str] = {}
    for prompt, _ in missing:
        if prompt.pk not in texts:
            texts[prompt.pk] = prompting.render_prompt(entry.tokenizer, prompt)
    requests = [
        engine.Request(key=(p.pk, role), prompt_text=texts[p.pk], adapter=models.system(role).adapter)
        for p, role in missing
    ]
    for results in engine.generate(
        entry,
        requests,
        max_new_tokens=job_settings.max_new_tokens,
        batch_size=job_settings.batch_size,
        do_sample=job_settings.do_sample,
        seed=job_settings.seed,
        temperature=job_settings.temperature,
        top_p=job_settings.top_p,
    ):
        Answer.objects.bulk_create(
            [
                Answer(
                    job=job,
                    prompt_id=r.key[0],
                    role=r.key[1],
                    # a model can emit U+0000 (any byte-level vocabulary has it); PostgreSQL text
                    # refuses it, and it is never meaningful in an answer
                    text=r.text.replace("\x00", ""),
                    prompt_tokens=r.prompt_tokens,
                    output_tokens=r.output_tokens,
                    latency_ms=round(r.latency_ms, 3),
                    batch_ms=round(r.batch_ms, 3),
                    worker=runtime.name,
                    device=entry.device,
                    seed=job_settings.seed,
                    fallback=models.system(r.key[1]).fallback,
                )
                for r in results
            ],
            ignore_conflicts=True,  # another delivery of this chunk may have made some already
        )
        if _job_status(job.pk) == JobStatus.CANCELLED:
            return JobStatus.CANCELLED
    return JobStatus.SUCCEEDED


def _job_status(job_id: int) -> str | None:
    return GenerationJob.objects.filter(pk=job_id).values_list("status", flat=True).first()


def chunk_finish(chunk_id: int, job_id: int, status: str, error: str = "", *, kind: str = "") -> None:
    """Mark the chunk finished (once: a conditional UPDATE), then finish the job if it was the last."""
    if GenerationChunk.objects.filter(pk=chunk_id, finished_at__isnull=True).update(
        status=status, error=" ".join(error.split())[:5000], failure_kind=kind, finished_at=timezone.now()
    ):
        extra = {"job_id": job_id, "chunk_id": chunk_id, "status": status}
        logger.info("job %s chunk id=%s %s", job_id, chunk_id, status, extra=extra)
    job_finish_if_done(job_id=job_id)


def job_finish_if_done(*, job_id: int) -> str | None:
    """Set the final status once every chunk has finished; returns it (None if not finished now).

    Every chunk calls this after marking itself finished (a committed UPDATE), so the last one to do
    so sees no unfinished chunk; if two see it at once the conditional UPDATE lets only one win."""
    if GenerationChunk.objects.filter(job_id=job_id, finished_at__isnull=True).exists():
        return None
    job = GenerationJob.objects.get(pk=job_id)
    done = Answer.objects.filter(job_id=job_id, role__in=generated_system_names(job_id)).count()
    if job.total and done >= job.total:
        status, error, kind = JobStatus.SUCCEEDED, "", ""
    else:
        status = JobStatus.FAILED if done == 0 else JobStatus.PARTIALLY_FAILED
        kind = FailureKind.INCOMPLETE
        errors = list(
            dict.fromkeys(
                GenerationChunk.objects.filter(job_id=job_id, status=JobStatus.FAILED)
                .exclude(error="")
                .values_list("error", flat=True)
            )
        )
        error = f"{job.total - done} of {job.total} answers were not made"
        if errors:
            error = f"{error}: {'; '.join(errors)}"
    updated = GenerationJob.objects.filter(pk=job_id, status__in=ACTIVE_STATUSES).update(
        status=status, error=error[:10000], failure_kind=kind, finished_at=timezone.now()
    )
    if updated:
        extra = {"job_id": job_id, "status": status, "failure_kind": kind}
        level = logging.INFO if status == JobStatus.SUCCEEDED else logging.WARNING
        logger.log(level, "job %s %s: %s/%s answers%s", job_id, status, done, job.total,
                   f" ({kind}: {error})" if kind else "", extra=extra)  # fmt: skip
    return status if updated else None
