"""Running a fine-tuning run on a worker (or inline from the `finetune` command): the dataset's
prompts in, the trained adapter (or model) and the FinetuneRun row's status and metrics out.

The training itself is generation.ml.finetune's; this module owns the row: it claims a queued run,
fails it with the reason when the inputs cannot be used, keeps its heartbeat and live metrics fresh
while training, and ends it succeeded or failed. The output folder receives files only on success,
so a failed run never leaves a half-written adapter next to an older one.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from generation.configs import ConfigError, FinetuneConfig
from generation.ml.finetune import (
    TRAINING_JSON,
    EpochProgress,
    Example,
    FinetuneError,
    build_examples,
    check_target_modules,
    data_hash,
    split_examples,
    train,
    write_json,
)
from generation.ml.loading import use_offline_hub
from generation.ml.modeling import BaseModelRef, ModelLoadError, load_base_model, resolve_base
from generation.models import Dataset, FailureKind, FinetuneRun, JobStatus, Prompt
from generation.paths import check_output_folder
from generation.jobs import JobInputError
from generation.runs import (
    HEARTBEAT_EVERY_SECONDS,
    finetune_run_claim,
    finetune_run_fail,
    finetune_run_heartbeat,
)

from .runtime import worker_name

logger = logging.getLogger(__name__)

Evaluate = Callable[[Any, int], float]


def finetune_run_start(*, run_id: int, worker: str = "") -> FinetuneRun | None:
    """Worker side of "generation.run_finetune": claim the queued run and train it. Safe to deliver twice.

    Returns None when the run is gone or another delivery already claimed (or finished) it. Failures
    are recorded on the row and not raised: the task has nothing to retry."""
    worker = (worker or worker_name())[:200]
    if not finetune_run_claim(run_id=run_id, worker=worker):
        return None  # deleted, or a duplicate delivery: the first one owns the run
    run = FinetuneRun.objects.select_related("dataset").get(pk=run_id)
    try:
        if run.dataset is None:
            raise JobInputError("dataset", "the run's dataset was deleted")
        return finetune_run_execute(
            dataset_name=run.dataset.name,
            base_model=run.base_model,
            gguf_file=run.gguf_file,
            output_dir=run.output_dir,
            config=FinetuneConfig.from_options(run.config or {}),
            run=run,
            worker=worker,
        )
    except Exception as exc:
        logger.exception("fine-tuning run %s failed", run_id)
        # finetune_run_execute has usually recorded it already (then this changes nothing)
        kind = FailureKind.BAD_INPUT if isinstance(exc, ConfigError) else FailureKind.ERROR
        finetune_run_fail(run_id=run_id, error=" ".join(f"{type(exc).__name__}: {exc}".split()), kind=kind)
        run.refresh_from_db()
        return run


def finetune_run_execute(
    *,
    dataset_name: str,
    base_model: str,
    gguf_file: str = "",
    output_dir: str | Path,
    config: FinetuneConfig,
    on_epoch: Callable[[EpochProgress], None] | None = None,
    evaluate: Evaluate | None = None,
    run: FinetuneRun | None = None,
    worker: str = "",
) -> FinetuneRun:
    """Fine-tune `base_model` on `dataset_name` and write the best adapter (or model) to `output_dir`.

    Bad inputs (unknown or empty dataset, no references, unloadable model) raise FinetuneError or
    ModelLoadError before anything is written or any row is created. Given an existing `run` row
    (a queued Celery run), that row is used and marked failed on bad inputs too. Once training has
    started, the FinetuneRun row is `running` and always ends `succeeded` or `failed` (with the error)."""
    output = Path(output_dir).expanduser()
    wall_started = time.perf_counter()
    try:
        inputs = prepare_training(
            dataset_name=dataset_name,
            base_model=base_model,
            gguf_file=gguf_file,
            output=output,
            config=config,
        )
    except (FinetuneError, ModelLoadError) as exc:
        if run is not None:
            kind = FailureKind.MODEL_LOAD if isinstance(exc, ModelLoadError) else FailureKind.BAD_INPUT
            finetune_run_fail(run_id=run.pk, error=str(exc), kind=kind)
        raise
    run = _mark_running(
        run, inputs, base_model=base_model, gguf_file=gguf_file, output=output, config=config, worker=worker
    )
    metrics = _train_into(
        run, inputs, config, output, on_epoch=on_epoch, evaluate=evaluate, wall_started=wall_started
    )
    FinetuneRun.objects.filter(pk=run.pk).update(
        status=JobStatus.SUCCEEDED, failure_kind="", metrics=metrics, finished_at=timezone.now()
    )
    run.refresh_from_db()
    logger.info("fine-tuning run %s succeeded: best epoch %s of %s", run.pk, metrics.get("best_epoch"),
                metrics.get("epochs_run"), extra={"run_id": run.pk, "status": run.status})  # fmt: skip
    return run


# ---------------------------------------------------------------------------------------------
# Before training: everything that can be wrong with the inputs


@dataclass
class TrainingInputs:
    dataset: Dataset
    ref: BaseModelRef
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    device: str
    train_set: list[Example]
    val_set: list[Example]
    counts: dict[str, int]


def load_training_prompts(dataset_name: str) -> tuple[Dataset, list[Prompt]]:
    """The Dataset and its prompts with a reference; FinetuneError when there is nothing to learn."""
    dataset = Dataset.objects.filter(name=dataset_name).first()
    if dataset is None:
        raise FinetuneError(f"unknown dataset {dataset_name!r}")
    prompts = list(dataset.prompts.order_by("id"))
    if not prompts:
        raise FinetuneError(f"dataset {dataset_name!r} has no prompts")
    with_reference = [p for p in prompts if p.reference.strip()]
    if not with_reference:
        raise FinetuneError(f"dataset {dataset_name!r} has no prompt with a reference answer to train on")
    return dataset, with_reference


def prepare_training(
    *, dataset_name: str, base_model: str, gguf_file: str, output: Path, config: FinetuneConfig
) -> TrainingInputs:
    """The prompts, the loaded model and the train/validation examples; FinetuneError or
    ModelLoadError, having written nothing, when the inputs cannot be used."""
    try:  # inside EVALSITE_MODEL_ROOTS and new or empty, checked again when the files are moved in
        check_output_folder(str(output))
    except ConfigError as exc:
        raise FinetuneError(f"--output: {exc.message}") from None
    dataset, prompts = load_training_prompts(dataset_name)
    if config.max_examples is not None:
        prompts = prompts[: config.max_examples]
    use_offline_hub()
    ref = resolve_base(base_model, gguf_file, model_dir=Path(settings.EVALSITE_MODEL_DIR))
    model, tokenizer = load_base_model(ref, device=config.device, dtype="float32")
    check_target_modules(model, config)
    examples, counts = build_examples(tokenizer, prompts, config.max_length)
    if len(examples) < 2:
        raise FinetuneError(
            f"dataset {dataset_name!r} has {len(examples)} usable example(s) within --max-length "
            f"{config.max_length} ({counts['dropped_too_long']} too long); need at least 2"
        )
    train_set, val_set = split_examples(examples, config.val_fraction, config.seed)
    device = str(next(model.parameters()).device)
    return TrainingInputs(dataset, ref, model, tokenizer, device, train_set, val_set, counts)


def _mark_running(
    run: FinetuneRun | None,
    inputs: TrainingInputs,
    *,
    base_model: str,
    gguf_file: str,
    output: Path,
    config: FinetuneConfig,
    worker: str,
) -> FinetuneRun:
    """The run's row, running now: the queued row given, or a new one for an inline run."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "dataset": inputs.dataset,
        "base_model": base_model,
        "gguf_file": gguf_file,
        "output_dir": str(output),
        "mode": config.mode,
        "config": config.as_dict(),
        "status": JobStatus.RUNNING,
        "error": "",
        "failure_kind": "",
        "started_at": now,
        "finished_at": None,
        "heartbeat_at": now,
    }
    if worker or run is None:
        fields["worker"] = (worker or worker_name())[:200]
    if run is None:
        run = FinetuneRun.objects.create(**fields)
        logger.info("fine-tuning run %s running inline on %s", run.pk, run.worker, extra={"run_id": run.pk})
        return run
    FinetuneRun.objects.filter(pk=run.pk).update(**fields)
    return run


# ---------------------------------------------------------------------------------------------
# Training


class Heartbeat:
    """Refreshes the run's heartbeat at most once per HEARTBEAT_EVERY_SECONDS, however short the
    training steps are (the reaper fails runs whose heartbeat stops)."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.last = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self.last >= HEARTBEAT_EVERY_SECONDS:
            finetune_run_heartbeat(self.run_id)
            self.last = time.monotonic()

    def written(self) -> None:
        """The heartbeat was just written with the epoch's metrics."""
        self.last = time.monotonic()


def _train_into(
    run: FinetuneRun,
    inputs: TrainingInputs,
    config: FinetuneConfig,
    output: Path,
    *,
    on_epoch: Callable[[EpochProgress], None] | None,
    evaluate: Evaluate | None,
    wall_started: float,
) -> dict[str, Any]:
    """Train in a staging folder next to `output` and move the result into `output`; returns the
    metrics (training.json's). On any failure the row is failed with the error and the staging
    folder removed."""
    stage = output.parent / f".{output.name}.partial-{run.pk}"
    heartbeat = Heartbeat(run.pk)

    def report(progress: EpochProgress) -> None:
        FinetuneRun.objects.filter(pk=run.pk).update(metrics=progress.metrics, heartbeat_at=timezone.now())
        heartbeat.written()
        if on_epoch is not None:
            on_epoch(progress)

    base_label = run.base_model if not run.gguf_file else f"{run.base_model}/{run.gguf_file}"
    base_metrics = {
        "base_model": base_label,
        "base_model_source": inputs.ref.label,
        "dataset": inputs.dataset.name,
        "data_sha256": data_hash(inputs.train_set, inputs.val_set),
        "examples_truncated": inputs.counts["truncated"],
        "examples_dropped_too_long": inputs.counts["dropped_too_long"],
    }
    try:
        shutil.rmtree(stage, ignore_errors=True)
        result = train(
            inputs.model,
            inputs.tokenizer,
            inputs.train_set,
            inputs.val_set,
            config,
            device=inputs.device,
            stage_dir=stage,
            base_metrics=base_metrics,
            on_epoch=report,
            evaluate=evaluate,
            on_step=heartbeat,
        )
        metrics = result.metrics
        # the whole run, model loading and saving included (the loop's own is wall_seconds)
        metrics["run_wall_seconds"] = round(time.perf_counter() - wall_started, 3)
        _publish(stage, output, metrics)
    except BaseException as exc:
        _record_failure(run, exc)
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return metrics


def _publish(stage: Path, output: Path, metrics: dict[str, Any]) -> None:
    """Write training.json into the staging folder, then move every file into `output`, which must
    still be new or empty: files that appeared there while the run trained are never replaced (the run
    fails instead, and its staging folder is removed)."""
    write_json(stage / TRAINING_JSON, metrics)
    output.mkdir(parents=True, exist_ok=True)
    if next(output.iterdir(), None) is not None:
        raise FinetuneError(f"--output {output} is no longer empty: nothing was overwritten")
    for item in sorted(stage.iterdir()):
        os.replace(item, output / item.name)
    stage.rmdir()


def _record_failure(run: FinetuneRun, exc: BaseException) -> None:
    """The run failed while training: keep the metrics so far, and the error with its traceback."""
    error = f"{type(exc).__name__}: {exc}".strip()
    progress = FinetuneRun.objects.filter(pk=run.pk).values_list("metrics", flat=True).first() or {}
    FinetuneRun.objects.filter(pk=run.pk).update(
        status=JobStatus.FAILED,
        error=f"{error}\n{traceback.format_exc(limit=5)}"[:10000],
        failure_kind=FailureKind.ERROR,
        metrics={**progress, "status": "failed", "error": error},
        finished_at=timezone.now(),
    )
    extra = {"run_id": run.pk, "status": JobStatus.FAILED, "failure_kind": FailureKind.ERROR}
    logger.warning("fine-tuning run %s failed (error): %s", run.pk, error, extra=extra)
