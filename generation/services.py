"""Generation jobs: creating, queueing, running chunks on workers, finishing, cancelling.

A job is split into chunks of prompts; each chunk is one Celery task (`generation.tasks.run_chunk`)
that takes the chunk id only, re-reads its rows and makes only the answers still missing, so a
redelivered task (acks_late, a worker killed mid-chunk) is harmless: the (job, prompt, role) unique
constraint plus `bulk_create(ignore_conflicts=True)` keeps every answer exactly once. State changes
are conditional UPDATEs, so two workers racing on the same job cannot both win.

Importing this module does not import torch; only `chunk_run` (worker side) reaches the ML stack.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .configs import DEFAULT_BATCH_SIZE
from .models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    Answer,
    Dataset,
    FinetuneRun,
    GenerationChunk,
    GenerationJob,
    JobStatus,
    ModelLoadAttempt,
    ModelSpec,
    Prompt,
    Role,
)

logger = logging.getLogger(__name__)

DEFAULT_SETTINGS: dict[str, Any] = {
    "max_new_tokens": 64,
    "batch_size": DEFAULT_BATCH_SIZE,
    "seed": 0,
    "do_sample": False,
}
LIMITS = {"max_new_tokens": (1, 8192), "batch_size": (1, 4096)}


def chunk_prompts() -> int:
    """Prompts per chunk (one Celery task): small enough that a lost worker costs little work, and half
    the default batch size, so a chunk's answers in both roles fill one batch."""
    return int(getattr(settings, "GENERATION_CHUNK_PROMPTS", DEFAULT_SETTINGS["batch_size"] // 2))


class JobInputError(Exception):
    """Bad arguments for a new job (unknown dataset, bad settings); nothing was created."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# ---------------------------------------------------------------------------------------------
# Creating and queueing


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


def _finished_lora_run(run_id: int, *, adapter_path: str = "") -> FinetuneRun:
    run = FinetuneRun.objects.filter(pk=run_id).first()
    if run is None:
        raise JobInputError("finetune_run", f"no fine-tuning run {run_id}")
    if run.status != JobStatus.SUCCEEDED:
        raise JobInputError("finetune_run", f"run {run_id} has not succeeded (status: {run.status})")
    if run.mode != FinetuneRun.Mode.LORA:
        raise JobInputError(
            "finetune_run", f"run {run_id} is a full fine-tune, not an adapter: use its folder as --base"
        )
    if adapter_path and Path(adapter_path).expanduser().resolve() != Path(run.output_dir).expanduser().resolve():
        raise JobInputError("adapter_path", f"differs from the output folder of run {run_id}")
    return run


def _check_setting(name: str, value: Any) -> int:
    low, high = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise JobInputError(name, f"must be a whole number from {low} to {high}")
    return value


def job_create(
    *,
    dataset: Dataset,
    base_model: str,
    gguf_file: str = "",
    adapter_path: str = "",
    max_new_tokens: int = DEFAULT_SETTINGS["max_new_tokens"],
    batch_size: int = DEFAULT_SETTINGS["batch_size"],
    seed: int = DEFAULT_SETTINGS["seed"],
    do_sample: bool = False,
    name: str = "",
    created_by: Any = None,
    finetune_run: Any = None,
    finetune_run_id: int | None = None,
    chunk_size: int | None = None,
) -> GenerationJob:
    """A new job over every prompt the dataset has now, in chunks; not queued yet (see job_queue).

    Without an adapter the fine-tuned role is answered by the base model, with fallback=True.
    An empty dataset gives a job that has already failed, saying why. `finetune_run_id` picks a
    finished LoRA run: its adapter answers the fine-tuned role (and its base model is the default)."""
    if finetune_run_id is not None:
        finetune_run = _finished_lora_run(finetune_run_id, adapter_path=adapter_path)
        adapter_path = finetune_run.output_dir
        base_model = base_model or finetune_run.base_model
        gguf_file = gguf_file or finetune_run.gguf_file
    base_model = (base_model or "").strip()
    if not base_model:
        raise JobInputError("base_model", "required")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise JobInputError("chunk_prompts", "must be a whole number of at least 1")
    job_settings = {
        "max_new_tokens": _check_setting("max_new_tokens", max_new_tokens),
        "batch_size": _check_setting("batch_size", batch_size),
        "seed": int(seed),
        "do_sample": bool(do_sample),
    }
    gguf_file = (gguf_file or "").strip()
    adapter_path = (adapter_path or "").strip()
    with transaction.atomic():
        pretrained = model_spec_get_or_create(base_model=base_model, gguf_file=gguf_file)
        finetuned = model_spec_get_or_create(
            base_model=base_model, gguf_file=gguf_file, adapter_path=adapter_path
        )
        prompt_ids = list(Prompt.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True))
        if finetune_run is None:
            finetune_run = finetune_run_for_adapter(adapter_path)
        job = GenerationJob.objects.create(
            name=(name or f"{dataset.name} / {pretrained.name}")[:200],
            dataset=dataset,
            pretrained_model=pretrained,
            finetuned_model=finetuned,
            finetune_run=finetune_run,
            settings=job_settings,
            total=2 * len(prompt_ids),
            created_by=created_by,
        )
        if not prompt_ids:
            GenerationJob.objects.filter(pk=job.pk).update(
                status=JobStatus.FAILED,
                error=f'dataset "{dataset.name}" has no prompts',
                finished_at=timezone.now(),
            )
            job.refresh_from_db()
            return job
        size = chunk_size or chunk_prompts()
        GenerationChunk.objects.bulk_create(
            [
                GenerationChunk(job=job, index=n, prompt_ids=prompt_ids[start : start + size])
                for n, start in enumerate(range(0, len(prompt_ids), size))
            ]
        )
    return job


def _broker_label() -> str:
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(settings.CELERY_BROKER_URL))


def _send_chunks(job_id: int) -> None:
    """Publish one task per unfinished chunk. Runs after the job's transaction has committed."""
    from kombu.exceptions import OperationalError

    from .tasks import run_chunk

    chunk_ids = list(
        GenerationChunk.objects.filter(job_id=job_id, finished_at__isnull=True)
        .order_by("index")
        .values_list("id", flat=True)
    )
    for chunk_id in chunk_ids:
        try:
            run_chunk.apply_async(
                args=[chunk_id],
                retry=True,
                retry_policy={
                    "max_retries": 2,
                    "interval_start": 0.2,
                    "interval_step": 0.5,
                    "interval_max": 1.0,
                },
            )
        except (OperationalError, OSError) as exc:
            # Never fall back to running inline: the job fails and says why.
            message = f"broker unreachable ({_broker_label()}): {type(exc).__name__}: {exc}"
            logger.error("job %s: %s", job_id, message)
            job_fail(job_id=job_id, error=" ".join(message.split()))
            return


def job_queue(job: GenerationJob) -> None:
    """Send the job's chunks to the workers once the current transaction commits.

    If the broker cannot be reached the job ends up failed with an error saying so; callers re-read
    the job after their transaction to report it."""
    if job.status != JobStatus.QUEUED:
        return
    job_id = job.pk
    transaction.on_commit(lambda: _send_chunks(job_id))


def job_fail(*, job_id: int, error: str) -> bool:
    """Mark a job failed unless it has already finished. True when this call made the change."""
    updated = GenerationJob.objects.filter(pk=job_id, status__in=ACTIVE_STATUSES).update(
        status=JobStatus.FAILED, error=error, finished_at=timezone.now()
    )
    return updated == 1


def job_cancel(*, job: GenerationJob) -> bool:
    """Cancel a queued or running job. Chunks notice between batches and stop; answers made so far stay."""
    updated = GenerationJob.objects.filter(pk=job.pk, status__in=ACTIVE_STATUSES).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return updated == 1


# ---------------------------------------------------------------------------------------------
# Running a chunk (worker side)

# Per worker process: which (job, kind, target) loads were already recorded, and which adapters
# failed for which job, so a job's later chunks fall back at once instead of retrying every chunk.
# Jobs are keyed by id and creation time: ids come back after a database is reset (or rolled back).
_recorded_loads: set[tuple[tuple[int, str], str, str]] = set()
_failed_adapters: dict[tuple[tuple[int, str], str], str] = {}


def _job_key(job: GenerationJob) -> tuple[int, str]:
    return (job.pk, job.created_at.isoformat())


def _record_load(
    job: GenerationJob,
    *,
    kind: str,
    target: str,
    success: bool,
    seconds: float | None,
    error: str = "",
    from_cache: bool = False,
    worker: str,
) -> None:
    key = (_job_key(job), kind, target)
    if success and key in _recorded_loads:
        return
    _recorded_loads.add(key)
    ModelLoadAttempt.objects.create(
        job=job,
        kind=kind,
        target=target[:1000],
        success=success,
        error=error,
        seconds=seconds,
        worker=worker,
        from_cache=from_cache,
    )


@dataclass
class RoleModels:
    entry: Any  # engine.LoadedModel
    adapter: str | None  # peft adapter name for the fine-tuned role; None = answered by the base
    fallback: bool


def _load_models(job: GenerationJob, worker: str) -> RoleModels:
    """Load (or reuse) the base and attach the adapter, recording every attempt.

    Raises ModelLoadError when the base cannot be loaded; an adapter that fails means fallback."""
    from .ml import engine
    from .ml.modeling import ModelLoadError, resolve_base

    spec = job.pretrained_model
    assert spec is not None
    target = f"{spec.base_model} [{spec.gguf_file}]" if spec.gguf_file else spec.base_model
    device = job.settings.get("device") or None
    dtype = job.settings.get("dtype") or None

    def load_base() -> Any:
        try:
            ref = resolve_base(spec.base_model, spec.gguf_file)
            entry, info = engine.load_base(ref, device=device, dtype=dtype)
        except Exception as exc:  # ModelLoadError, or e.g. out of memory while moving it to the device
            error = str(exc) if isinstance(exc, ModelLoadError) else f"{type(exc).__name__}: {exc}"
            _record_load(
                job, kind="base", target=target, success=False, seconds=None, error=error, worker=worker
            )
            raise ModelLoadError(error) from exc
        _record_load(
            job,
            kind="base",
            target=target,
            success=True,
            seconds=round(info.seconds, 3),
            from_cache=info.from_cache,
            worker=worker,
        )
        return entry

    entry = load_base()
    adapter_path = job.finetuned_model.adapter_path if job.finetuned_model else ""
    if not adapter_path:
        return RoleModels(entry, None, fallback=True)
    if (_job_key(job), adapter_path) in _failed_adapters:
        return RoleModels(entry, None, fallback=True)
    started = time.perf_counter()
    try:
        name, info = engine.load_adapter(entry, adapter_path)
    except engine.AdapterLoadError as exc:
        _failed_adapters[(_job_key(job), adapter_path)] = str(exc)
        _record_load(
            job,
            kind="adapter",
            target=adapter_path,
            success=False,
            seconds=round(time.perf_counter() - started, 3),
            error=str(exc),
            worker=worker,
        )
        logger.warning("job %s: %s; the pre-trained model answers for the fine-tuned role", job.pk, exc)
        if exc.base_damaged:
            engine.forget(entry)
            _recorded_loads.discard((_job_key(job), "base", target))
            entry = load_base()
        return RoleModels(entry, None, fallback=True)
    _record_load(
        job,
        kind="adapter",
        target=adapter_path,
        success=True,
        seconds=round(info.seconds, 3),
        from_cache=info.from_cache,
        worker=worker,
    )
    return RoleModels(entry, name, fallback=False)


def _finish_chunk(chunk_id: int, job_id: int, status: str, error: str = "") -> None:
    GenerationChunk.objects.filter(pk=chunk_id, finished_at__isnull=True).update(
        status=status, error=" ".join(error.split())[:5000], finished_at=timezone.now()
    )
    job_finish_if_done(job_id=job_id)


def job_finish_if_done(*, job_id: int) -> str | None:
    """Set the final status once every chunk has finished; returns it (None if not finished now).

    Every chunk calls this after marking itself finished (a committed UPDATE), so the last one to do
    so sees no unfinished chunk; if two see it at once the conditional UPDATE lets only one win."""
    if GenerationChunk.objects.filter(job_id=job_id, finished_at__isnull=True).exists():
        return None
    job = GenerationJob.objects.get(pk=job_id)
    done = Answer.objects.filter(job_id=job_id).count()
    if job.total and done >= job.total:
        status, error = JobStatus.SUCCEEDED, ""
    else:
        status = JobStatus.FAILED if done == 0 else JobStatus.PARTIALLY_FAILED
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
        status=status, error=error[:10000], finished_at=timezone.now()
    )
    return status if updated else None


def _job_status(job_id: int) -> str | None:
    return GenerationJob.objects.filter(pk=job_id).values_list("status", flat=True).first()


def chunk_max_attempts() -> int:
    """Deliveries of one chunk that may start before it is given up (a worker died each time)."""
    return max(1, int(getattr(settings, "GENERATION_CHUNK_MAX_ATTEMPTS", 3)))


def _chunk_claim(chunk_id: int, worker: str, retries: int = 0) -> tuple[GenerationChunk | None, bool]:
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
                status=JobStatus.CANCELLED, error=why, finished_at=now
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
                status=JobStatus.FAILED, error=why, finished_at=now
            )
            return None, True
        if chunk.status == JobStatus.RUNNING:
            logger.warning(
                "job %s chunk %s: attempt %s by %s did not finish; %s takes it over (attempt %s of %s)",
                job.pk, chunk.index, chunk.attempts, chunk.worker, worker, chunk.attempts + 1, limit,
            )
        GenerationJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=now
        )
        GenerationChunk.objects.filter(pk=chunk.pk).update(
            status=JobStatus.RUNNING, worker=worker, attempts=F("attempts") + 1, started_at=now
        )
        chunk.attempts += 1
        chunk.status, chunk.worker, chunk.started_at = JobStatus.RUNNING, worker, now
        return chunk, False


def chunk_run(*, chunk_id: int, retries: int = 0) -> None:
    """Make the missing answers of one chunk (both roles). Safe to run twice, or at once on two workers.

    Whatever happens, the chunk ends finished (succeeded, failed or cancelled) so the job never
    stays running; only a lost database connection (retried by the task) or a killed worker (the
    message is delivered again: see generation.tasks) can leave it for a later delivery to finish."""
    from .ml import engine
    from .ml.modeling import ModelLoadError

    worker = engine.worker_name()
    chunk, ended = _chunk_claim(chunk_id, worker, retries)
    if chunk is None:
        if ended:  # committed: now the job may be finished too
            job_id = GenerationChunk.objects.filter(pk=chunk_id).values_list("job_id", flat=True).first()
            if job_id is not None:
                job_finish_if_done(job_id=job_id)
        return
    job = chunk.job
    prompts = list(Prompt.objects.filter(pk__in=chunk.prompt_ids).order_by("id"))
    existing = set(Answer.objects.filter(job=job, prompt__in=prompts).values_list("prompt_id", "role"))
    missing = [(p, role) for p in prompts for role in Role.values if (p.pk, role) not in existing]
    if not missing:
        _finish_chunk(chunk.pk, job.pk, JobStatus.SUCCEEDED)
        return

    try:
        finished_as = _answer_missing(job, missing, worker)
    except ModelLoadError as exc:
        # Every chunk would fail the same way: fail the job now so the others stop at once.
        message = " ".join(f"cannot load the base model: {exc}".split())
        job_fail(job_id=job.pk, error=message)
        _finish_chunk(chunk.pk, job.pk, JobStatus.FAILED, message)
        return
    except Exception as exc:  # e.g. out of memory: this chunk fails, the job reports it, others go on
        logger.exception("job %s chunk %s failed", job.pk, chunk.index)
        _finish_chunk(chunk.pk, job.pk, JobStatus.FAILED, f"chunk {chunk.index}: {type(exc).__name__}: {exc}")
        return
    if finished_as == JobStatus.CANCELLED:
        _finish_chunk(chunk.pk, job.pk, JobStatus.CANCELLED, "job cancelled")
        return
    _finish_chunk(chunk.pk, job.pk, JobStatus.SUCCEEDED)


def _answer_missing(job: GenerationJob, missing: list[tuple[Prompt, str]], worker: str) -> str:
    """Generate and save the missing answers batch by batch; stops early if the job is cancelled."""
    from .ml import engine
    from .ml.prompting import render_prompt

    models = _load_models(job, worker)
    entry = models.entry
    settings_ = {**DEFAULT_SETTINGS, **job.settings}
    requests = [
        engine.Request(
            key=(prompt.pk, role),
            prompt_text=render_prompt(entry.tokenizer, prompt),
            adapter=models.adapter if role == Role.FINETUNED else None,
        )
        for prompt, role in missing
    ]
    seed = int(settings_["seed"])
    for results in engine.generate(
        entry,
        requests,
        max_new_tokens=int(settings_["max_new_tokens"]),
        batch_size=int(settings_["batch_size"]),
        do_sample=bool(settings_["do_sample"]),
        seed=seed,
        temperature=settings_.get("temperature"),
        top_p=settings_.get("top_p"),
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
                    worker=worker,
                    device=entry.device,
                    seed=seed,
                    fallback=models.fallback and r.key[1] == Role.FINETUNED,
                )
                for r in results
            ],
            ignore_conflicts=True,  # another delivery of this chunk may have made some already
        )
        if _job_status(job.pk) == JobStatus.CANCELLED:
            return JobStatus.CANCELLED
    return JobStatus.SUCCEEDED


# ---------------------------------------------------------------------------------------------
# Fine-tuning runs as jobs: create, queue, run on a worker, and never leave one "running" forever
#
# A run is one Celery task (`generation.tasks.run_finetune`, the run id only). The task moves the row
# queued -> running with a conditional UPDATE, so a second delivery of the same message does nothing.
# While it trains, the worker refreshes `heartbeat_at`; a run whose heartbeat is older than
# FINETUNE_STALE_SECONDS (its worker was killed, lost power, ran out of memory) is marked failed
# whenever runs are read, and a worker that starts again fails the runs it left behind.

HEARTBEAT_EVERY_SECONDS = 30.0
FINETUNE_OPTION_FIELDS = (
    "mode",
    "epochs",
    "patience",
    "lr",
    "batch_size",
    "max_length",
    "seed",
    "val_fraction",
    "r",
    "alpha",
    "dropout",
    "target_modules",
    "gradient_checkpointing",
    "max_examples",
    "weight_decay",
    "device",
    "threads",
)


def finetune_stale_seconds() -> float:
    return float(getattr(settings, "FINETUNE_STALE_SECONDS", 1800))


def _config_field(message: str) -> str:
    """The option a FinetuneConfig message is about ("--epochs must be..." -> "epochs")."""
    import re

    found = re.match(r"--([a-z-]+)", message)
    if found:
        return found.group(1).replace("-", "_")
    return "mode" if "mode" in message else "non_field_errors"


def finetune_config_build(options: dict[str, Any]) -> Any:
    """A validated FinetuneConfig from option values (None/missing = default); JobInputError otherwise."""
    from .ml.finetune import FinetuneConfig, FinetuneError

    values = {k: v for k, v in options.items() if k in FINETUNE_OPTION_FIELDS and v is not None}
    if "target_modules" in values and isinstance(values["target_modules"], str):
        values["target_modules"] = [m.strip() for m in values["target_modules"].split(",") if m.strip()]
    if values.get("device") == "":
        values.pop("device")
    try:
        return FinetuneConfig(**values)
    except FinetuneError as exc:
        field = _config_field(str(exc))
        raise JobInputError(field, str(exc).replace(f"--{field.replace('_', '-')} ", "", 1)) from exc


def finetune_run_check(*, dataset: Dataset, base_model: str, output_dir: str) -> tuple[str, Path]:
    """(base model, output folder) after the checks every way of queueing a run shares; JobInputError."""
    base_model = (base_model or "").strip()
    if not base_model:
        raise JobInputError("base_model", "required")
    output_dir = (output_dir or "").strip()
    if not output_dir:
        raise JobInputError("output_dir", "required")
    output = Path(output_dir).expanduser()
    if output.exists() and not output.is_dir():
        raise JobInputError("output_dir", f"{output_dir} exists and is not a folder")
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
    config: Any = None,
    created_by: Any = None,
) -> FinetuneRun:
    """A queued FinetuneRun row (not sent yet: see finetune_run_queue). Raises JobInputError, having
    created nothing, for an unknown dataset or one without reference answers, a bad option, or an
    output folder that is a file or that another unfinished run already writes to."""
    from .ml.finetune import FinetuneConfig

    if not isinstance(dataset, Dataset):
        dataset = dataset_get(dataset)
    if config is None:
        config = FinetuneConfig()
    elif isinstance(config, dict):
        config = finetune_config_build(config)
    base_model, output = finetune_run_check(dataset=dataset, base_model=base_model, output_dir=output_dir)
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


def finetune_run_fail(*, run_id: int, error: str) -> bool:
    """Mark a run failed unless it has already finished. True when this call made the change."""
    updated = FinetuneRun.objects.filter(pk=run_id, status__in=ACTIVE_STATUSES).update(
        status=JobStatus.FAILED, error=error[:10000], finished_at=timezone.now()
    )
    return updated == 1


def _send_finetune(run_id: int) -> None:
    """Publish the run's task. Runs after the run's transaction has committed."""
    from kombu.exceptions import OperationalError

    from .tasks import run_finetune

    try:
        run_finetune.apply_async(
            args=[run_id],
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0},
        )
    except (OperationalError, OSError) as exc:
        # Never train inline in a web process: the run fails and says why.
        message = " ".join(f"broker unreachable ({_broker_label()}): {type(exc).__name__}: {exc}".split())
        logger.error("fine-tuning run %s: %s", run_id, message)
        finetune_run_fail(run_id=run_id, error=message)


def finetune_run_queue(run: FinetuneRun) -> None:
    """Send the run to a worker once the current transaction commits; if the broker cannot be
    reached the run ends up failed, saying so (re-read the row after the transaction to see it)."""
    if run.status != JobStatus.QUEUED:
        return
    run_id = run.pk
    transaction.on_commit(lambda: _send_finetune(run_id))


def finetune_run_heartbeat(run_id: int) -> None:
    FinetuneRun.objects.filter(pk=run_id, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())


def finetune_runs_fail_stale(*, now: Any = None) -> list[int]:
    """Fail every running run whose heartbeat (or start, if it never beat) is older than
    FINETUNE_STALE_SECONDS: its worker is gone. Returns the ids it failed."""
    from datetime import timedelta

    from django.db.models import Q

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
            finished_at=now,
        )
        if updated:
            logger.warning("fine-tuning run %s: worker lost, marked failed", run_id)
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
            finished_at=now,
        ):
            failed.append(run_id)
    return failed


def finetune_run_start(*, run_id: int, worker: str = "") -> FinetuneRun | None:
    """Worker side of `run_finetune`: claim the queued run and train it. Safe to deliver twice.

    Returns None when the run is gone or another delivery already claimed (or finished) it. Failures
    are recorded on the row by finetune_run_execute and not raised: the task has nothing to retry."""
    from .ml import engine

    worker = (worker or engine.worker_name())[:200]
    now = timezone.now()
    claimed = FinetuneRun.objects.filter(pk=run_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, worker=worker, started_at=now, heartbeat_at=now, error=""
    )
    if not claimed:
        return None  # deleted, or a duplicate delivery: the first one owns the run
    run = FinetuneRun.objects.select_related("dataset").get(pk=run_id)
    try:
        from .worker.training import finetune_run_execute

        if run.dataset is None:
            raise JobInputError("dataset", "the run's dataset was deleted")
        config = finetune_config_build({k: v for k, v in run.config.items() if k in FINETUNE_OPTION_FIELDS})
        return finetune_run_execute(
            dataset_name=run.dataset.name,
            base_model=run.base_model,
            gguf_file=run.gguf_file,
            output_dir=run.output_dir,
            config=config,
            run=run,
            worker=worker,
        )
    except Exception as exc:
        logger.exception("fine-tuning run %s failed", run_id)
        # finetune_run_execute has usually recorded it already; this catches what it could not
        finetune_run_fail(run_id=run_id, error=" ".join(f"{type(exc).__name__}: {exc}".split()))
        run.refresh_from_db()
        return run
