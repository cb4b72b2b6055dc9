"""Generation jobs on the web side: creating, submitting to the workers, cancelling, failing.

A job answers every prompt its dataset has when it is created (or its first `prompt_limit`), with each
of its systems — pre-trained, fine-tuned and any further adapters (generation/job_systems.py: given as
`systems`, or `kept_epochs` for every kept epoch of its fine-tuning run) — split into chunks of
prompts; each chunk is one Celery task ("generation.run_chunk", the chunk id only) that a worker
answers (generation/worker/chunks.py). Every way of queueing a job — the API, the job page, the Django
admin and `queue_generation` — goes through `job_submit`; the admin's "Queue again" through
`job_submit_again`, which keeps every setting and system of the old job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from .configs import DEFAULT_BATCH_SIZE, ConfigError, GenerationSettings
from .job_systems import SystemSpec, check_systems, kept_epoch_specs, specs_of, system_spec, systems_create
from .models import (
    ACTIVE_STATUSES,
    Dataset,
    FailureKind,
    FinetuneRun,
    GenerationChunk,
    GenerationJob,
    JobStatus,
    ModelSpec,
    Prompt,
)
from .paths import check_model_paths, inside_roots
from .publishing import RUN_CHUNK, publish_on_commit

logger = logging.getLogger(__name__)

# what job_create takes as one further system: a SystemSpec, {"name", "adapter_path"} or (name, path)
SystemInput = SystemSpec | Mapping[str, Any] | Sequence[Any]


class JobInputError(ConfigError):
    """Bad input for a new job or run (unknown dataset, unusable model or folder); nothing was created.

    A ConfigError, so callers catch one type for bad settings and bad inputs alike and read `field`."""


def chunk_prompts() -> int:
    """Prompts per chunk (one Celery task) unless a job says otherwise: small enough that a lost worker
    costs little work, and half the default batch size, so a chunk's answers in both roles fill one
    batch."""
    return int(getattr(django_settings, "GENERATION_CHUNK_PROMPTS", DEFAULT_BATCH_SIZE // 2))


def jobs_for_display() -> QuerySet[GenerationJob]:
    """Jobs with the rows their pages and API answers show."""
    return GenerationJob.objects.select_related(
        "dataset", "pretrained_model", "finetuned_model", "finetune_run"
    )


# ---------------------------------------------------------------------------------------------
# What a job runs on


def dataset_get(ref: str | int) -> Dataset:
    """A dataset by name, or by id when given a number that names no dataset."""
    text = str(ref).strip()
    dataset = Dataset.objects.filter(name=text).first()
    if dataset is None and text.isdigit():
        dataset = Dataset.objects.filter(pk=int(text)).first()
    if dataset is None:
        raise JobInputError("dataset", f'no dataset named "{text}"')
    return dataset


def _spec_name(base_model: str, gguf_file: str, adapter_path: str) -> str:
    label = f"{base_model} [{gguf_file}]" if gguf_file else base_model
    if adapter_path:
        label = f"{label} + {adapter_path}"
    if len(label) > 180:
        label = f"...{label[-170:]}"
    return label


def model_spec_get_or_create(*, base_model: str, gguf_file: str = "", adapter_path: str = "") -> ModelSpec:
    """The spec with exactly these fields, made if no job used them before."""
    spec = ModelSpec.objects.filter(
        base_model=base_model, gguf_file=gguf_file, adapter_path=adapter_path
    ).first()
    if spec is not None:
        return spec
    name = _spec_name(base_model, gguf_file, adapter_path)
    if ModelSpec.objects.filter(name=name).exists():  # a shortened name collided: make it unique
        digest = hashlib.sha256(f"{base_model}\0{gguf_file}\0{adapter_path}".encode()).hexdigest()[:8]
        name = f"{name[:190]} #{digest}"
    return ModelSpec.objects.create(
        name=name, base_model=base_model, gguf_file=gguf_file, adapter_path=adapter_path
    )


def finetune_run_for_adapter(adapter_path: str) -> FinetuneRun | None:
    """The fine-tuning run that made this adapter, so the campaign report can show its training figures.

    A run recorded here with that output folder, else one recorded from the folder's training.json (an
    adapter trained elsewhere, such as the committed demo adapter); None when neither exists."""
    if not adapter_path:
        return None
    folder = Path(adapter_path).expanduser()
    names = {adapter_path, str(folder), str(folder.resolve())}
    run = (
        FinetuneRun.objects.filter(output_dir__in=names, status=JobStatus.SUCCEEDED).order_by("-id").first()
    )
    if run is not None:
        return run
    if not inside_roots(folder):  # a crafted training.json elsewhere must not become a run's figures
        return None
    try:
        metrics = json.loads((folder / "training.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict):
        return None
    mode = metrics.get("mode")
    return FinetuneRun.objects.create(
        base_model=str(metrics.get("base_model") or "")[:1000],
        output_dir=str(folder.resolve())[:1000],
        mode=mode if mode in FinetuneRun.Mode.values else FinetuneRun.Mode.LORA,
        config=metrics.get("config") if isinstance(metrics.get("config"), dict) else {},
        status=JobStatus.SUCCEEDED,
        metrics=metrics,
    )


def finished_lora_run(run_id: int, *, adapter_path: str = "") -> FinetuneRun:
    """The run a user picked for the fine-tuned role: it must have succeeded and made an adapter."""
    run = FinetuneRun.objects.filter(pk=run_id).first()
    if run is None:
        raise JobInputError("finetune_run", f"no fine-tuning run {run_id}")
    if run.status != JobStatus.SUCCEEDED:
        raise JobInputError("finetune_run", f"run {run_id} has not succeeded (status: {run.status})")
    if run.mode != FinetuneRun.Mode.LORA:
        raise JobInputError(
            "finetune_run", f"run {run_id} is a full fine-tune, not an adapter: use its folder as --base"
        )
    folder = Path(run.output_dir).expanduser().resolve()
    if adapter_path and Path(adapter_path).expanduser().resolve() != folder:
        raise JobInputError("adapter_path", f"differs from the output folder of run {run_id}")
    return run


def check_job_paths(*, base_model: str, gguf_file: str = "", adapter_path: str = "") -> None:
    """JobInputError ("not allowed", nothing about what is there) for a local model, GGUF file or
    adapter outside EVALSITE_MODEL_ROOTS (generation.paths); hub ids pass."""
    try:
        check_model_paths(base_model=base_model, gguf_file=gguf_file, adapter_path=adapter_path)
    except ConfigError as exc:
        raise JobInputError(exc.field, exc.message) from None


def further_systems(
    systems: Sequence[SystemInput], *, kept_epochs: bool, finetune_run: FinetuneRun | None
) -> list[SystemSpec]:
    """A job's further systems, checked: the run's kept epochs (with `kept_epochs`), then `systems`.
    JobInputError ("systems" or "kept_epochs") for anything unusable."""
    try:
        specs = [system_spec(value, n) for n, value in enumerate(systems, 1)]
        if kept_epochs:
            if finetune_run is None:
                raise JobInputError("kept_epochs", "needs a fine-tuning run (finetune_run)")
            specs = [*kept_epoch_specs(finetune_run), *specs]
        return check_systems(specs)
    except ConfigError as exc:
        raise JobInputError(exc.field, exc.message) from None


# ---------------------------------------------------------------------------------------------
# Creating and submitting


def job_create(
    *,
    dataset: Dataset,
    base_model: str,
    gguf_file: str = "",
    adapter_path: str = "",
    settings: GenerationSettings | None = None,
    name: str = "",
    created_by: AbstractBaseUser | None = None,
    finetune_run: FinetuneRun | None = None,
    finetune_run_id: int | None = None,
    systems: Sequence[SystemInput] = (),
    kept_epochs: bool = False,
) -> GenerationJob:
    """A new job over every prompt the dataset has now (its first `settings.prompt_limit` when set),
    in chunks; not queued (see job_submit).

    Without an adapter the fine-tuned role is answered by the base model, with fallback=True. An empty
    dataset gives a job that has already failed, saying why. `finetune_run_id` picks a finished LoRA
    run (checked): its adapter answers the fine-tuned role and its base model is the default;
    `finetune_run` links a run already known to have made this adapter. `systems` are further adapters
    on the same base, each a JobSystem; `kept_epochs` adds one per kept epoch of the run (before
    `systems`; generation.job_systems). `total` counts every system's answers. The stored settings name
    the chunk size used, so the job can be repeated exactly. Bad input creates nothing."""
    if finetune_run_id is not None:
        finetune_run = finished_lora_run(finetune_run_id, adapter_path=adapter_path)
        adapter_path = finetune_run.output_dir
        base_model = base_model or finetune_run.base_model
        gguf_file = gguf_file or finetune_run.gguf_file
    base_model = (base_model or "").strip()
    if not base_model:
        raise JobInputError("base_model", "required")
    settings = settings or GenerationSettings()
    settings = dataclasses.replace(settings, chunk_prompts=settings.chunk_prompts or chunk_prompts())
    gguf_file = (gguf_file or "").strip()
    adapter_path = (adapter_path or "").strip()
    check_job_paths(base_model=base_model, gguf_file=gguf_file, adapter_path=adapter_path)
    specs = further_systems(systems, kept_epochs=kept_epochs, finetune_run=finetune_run)
    with transaction.atomic():
        pretrained = model_spec_get_or_create(base_model=base_model, gguf_file=gguf_file)
        finetuned = model_spec_get_or_create(
            base_model=base_model, gguf_file=gguf_file, adapter_path=adapter_path
        )
        prompt_ids = list(Prompt.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True))
        if settings.prompt_limit is not None:
            prompt_ids = prompt_ids[: settings.prompt_limit]
        job = GenerationJob.objects.create(
            name=(name or f"{dataset.name} / {pretrained.name}")[:200],
            dataset=dataset,
            pretrained_model=pretrained,
            finetuned_model=finetuned,
            finetune_run=finetune_run or finetune_run_for_adapter(adapter_path),
            settings=settings.as_dict(),
            total=(2 + len(specs)) * len(prompt_ids),
            created_by=created_by,
        )
        systems_create(job, specs)
        if not prompt_ids:
            GenerationJob.fail_unless_finished(
                job.pk, error=f'dataset "{dataset.name}" has no prompts', kind=FailureKind.NO_PROMPTS
            )
            job.refresh_from_db()
            return job
        size = settings.chunk_prompts
        GenerationChunk.objects.bulk_create(
            [
                GenerationChunk(job=job, index=n, prompt_ids=prompt_ids[start : start + size])
                for n, start in enumerate(range(0, len(prompt_ids), size))
            ]
        )
    return job


def _unfinished_chunk_ids(job_id: int) -> list[int]:
    return list(
        GenerationChunk.objects.filter(job_id=job_id, finished_at__isnull=True)
        .order_by("index")
        .values_list("id", flat=True)
    )


def job_queue(job: GenerationJob) -> None:
    """Send the job's unfinished chunks to the workers once the current transaction commits; a broker
    that cannot be reached fails the job (see generation.publishing)."""
    job_id = job.pk
    publish_on_commit(RUN_CHUNK, job, lambda: _unfinished_chunk_ids(job_id))


def job_submit(
    *,
    dataset: Dataset | str | int,
    base_model: str,
    gguf_file: str = "",
    adapter_path: str = "",
    finetune_run_id: int | None = None,
    finetune_run: FinetuneRun | None = None,
    settings: GenerationSettings | None = None,
    name: str = "",
    created_by: AbstractBaseUser | None = None,
    systems: Sequence[SystemInput] = (),
    kept_epochs: bool = False,
) -> GenerationJob:
    """Create a job and queue it after the commit; the one way every caller queues a job.

    Raises ConfigError (JobInputError included), having created nothing, for bad input. Returns the
    job re-read after the commit, so a broker failure while queueing shows in its status, error and
    failure_kind (BROKER_UNREACHABLE). Inside an outer transaction the job is queued when that commits."""
    with transaction.atomic():
        job = job_create(
            dataset=dataset if isinstance(dataset, Dataset) else dataset_get(dataset),
            base_model=base_model,
            gguf_file=gguf_file,
            adapter_path=adapter_path,
            settings=settings,
            name=name,
            created_by=created_by,
            finetune_run=finetune_run,
            finetune_run_id=finetune_run_id,
            systems=systems,
            kept_epochs=kept_epochs,
        )
        job_queue(job)
    job = jobs_for_display().get(pk=job.pk)
    logger.log(
        logging.WARNING if job.failure_kind else logging.INFO,
        "job %s %s: %s answers of dataset %r%s", job.pk, job.status, job.total, job.dataset.name,
        f" ({job.failure_kind}: {job.error})" if job.failure_kind else "",
        extra={"job_id": job.pk, "status": job.status, "failure_kind": job.failure_kind},
    )  # fmt: skip
    return job


def job_submit_again(*, job: GenerationJob, created_by: AbstractBaseUser | None = None) -> GenerationJob:
    """A new job like `job`: same dataset, models, adapter, further adapter systems, linked run and
    every setting (sampling, seed, batch and chunk sizes...). Raises JobInputError for a job with no
    model (imported answers), or when a system's adapter folder is no longer usable."""
    if job.pretrained_model is None:
        raise JobInputError("job", f"Job {job.pk} has no model (imported answers)")
    old = job.settings or {}
    if "chunk_prompts" not in old:  # made before jobs stored it: the size its chunks were cut to
        sizes = [len(ids) for ids in job.chunks.values_list("prompt_ids", flat=True)]
        old = {**old, "chunk_prompts": max(sizes) if sizes else None}
    return job_submit(
        dataset=job.dataset,
        base_model=job.pretrained_model.base_model,
        gguf_file=job.pretrained_model.gguf_file,
        adapter_path=job.finetuned_model.adapter_path if job.finetuned_model else "",
        finetune_run=job.finetune_run,
        settings=GenerationSettings.from_dict(old),
        name=job.name,
        created_by=created_by,
        systems=specs_of(job),
    )


# ---------------------------------------------------------------------------------------------
# Ending


def job_fail(*, job_id: int, error: str, kind: FailureKind) -> bool:
    """Mark a job failed unless it has already finished. True when this call made the change."""
    changed = GenerationJob.fail_unless_finished(job_id, error=error, kind=kind)
    if changed:
        extra = {"job_id": job_id, "status": JobStatus.FAILED, "failure_kind": kind}
        logger.warning("job %s failed (%s): %s", job_id, kind, error, extra=extra)
    return changed


def job_cancel(*, job: GenerationJob) -> bool:
    """Cancel a queued or running job. Chunks notice between batches and stop; answers made so far stay."""
    updated = GenerationJob.objects.filter(pk=job.pk, status__in=ACTIVE_STATUSES).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now()
    )
    job.refresh_from_db()
    if updated:
        logger.info("job %s cancelled", job.pk, extra={"job_id": job.pk, "status": JobStatus.CANCELLED})
    return updated == 1
