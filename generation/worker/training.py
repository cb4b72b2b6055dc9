"""Running a fine-tuning run on a worker (or inline from the `finetune` command): the dataset's
prompts in, the trained adapter and the FinetuneRun row's status and metrics out."""

from __future__ import annotations

import os
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from generation.ml.finetune import (
    TRAINING_JSON,
    EpochProgress,
    FinetuneConfig,
    FinetuneError,
    _write_json,
    build_examples,
    check_target_modules,
    data_hash,
    split_examples,
    train,
)



def load_training_prompts(dataset_name: str) -> tuple[Any, list[Any]]:
    """The Dataset and its prompts with a reference; FinetuneError when there is nothing to learn."""
    from generation.models import Dataset

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


def finetune_run_execute(
    *,
    dataset_name: str,
    base_model: str,
    gguf_file: str = "",
    output_dir: str | Path,
    config: FinetuneConfig,
    on_epoch: Callable[[EpochProgress], None] | None = None,
    evaluate: Callable[[Any, int], float] | None = None,
    run: Any | None = None,
    worker: str = "",
) -> Any:
    """Fine-tune `base_model` on `dataset_name` and write the best adapter (or model) to `output_dir`.

    Bad inputs (unknown or empty dataset, no references, unloadable model) raise FinetuneError or
    ModelLoadError before anything is written or any row is created. Given an existing `run` row
    (a queued Celery run), that row is used and marked failed on bad inputs too. Once training has
    started, the FinetuneRun row is `running` and always ends `succeeded` or `failed` (with the error);
    the output folder receives files only on success, so a failed run never leaves a half-written
    adapter next to an older one."""
    from django.utils import timezone

    from generation.ml.modeling import ModelLoadError, load_base_model, resolve_base
    from generation.models import FinetuneRun, JobStatus
    from generation.services import HEARTBEAT_EVERY_SECONDS, finetune_run_heartbeat

    output = Path(output_dir).expanduser()
    wall_started = time.perf_counter()
    try:
        if output.exists() and not output.is_dir():
            raise FinetuneError(f"--output {output} exists and is not a folder")
        dataset, prompts = load_training_prompts(dataset_name)
        if config.max_examples is not None:
            prompts = prompts[: config.max_examples]
        ref = resolve_base(base_model, gguf_file)
        model, tokenizer = load_base_model(ref, device=config.device, dtype="float32")
        device = str(next(model.parameters()).device)
        check_target_modules(model, config)
        examples, counts = build_examples(tokenizer, prompts, config.max_length)
        if len(examples) < 2:
            raise FinetuneError(
                f"dataset {dataset_name!r} has {len(examples)} usable example(s) within --max-length "
                f"{config.max_length} ({counts['dropped_too_long']} too long); need at least 2"
            )
        train_set, val_set = split_examples(examples, config.val_fraction, config.seed)
    except (FinetuneError, ModelLoadError) as exc:
        if run is not None:
            FinetuneRun.objects.filter(pk=run.pk).update(
                status=JobStatus.FAILED, error=str(exc), finished_at=timezone.now()
            )
        raise

    base_label = base_model if not gguf_file else f"{base_model}/{gguf_file}"
    base_metrics = {
        "base_model": base_label,
        "base_model_source": ref.label,
        "dataset": dataset.name,
        "data_sha256": data_hash(train_set, val_set),
        "examples_truncated": counts["truncated"],
        "examples_dropped_too_long": counts["dropped_too_long"],
    }
    fields = {
        "dataset": dataset,
        "base_model": base_model,
        "gguf_file": gguf_file,
        "output_dir": str(output),
        "mode": config.mode,
        "config": config.as_dict(),
        "status": JobStatus.RUNNING,
        "error": "",
        "started_at": timezone.now(),
        "finished_at": None,
        "heartbeat_at": timezone.now(),
    }
    if worker or run is None:
        from generation.ml.engine import worker_name

        fields["worker"] = (worker or worker_name())[:200]
    if run is None:
        run = FinetuneRun.objects.create(**fields)
    else:
        FinetuneRun.objects.filter(pk=run.pk).update(**fields)
    stage = output.parent / f".{output.name}.partial-{run.pk}"

    last_beat = time.monotonic()

    def beat() -> None:  # at most one UPDATE per HEARTBEAT_EVERY_SECONDS, however short the steps
        nonlocal last_beat
        if time.monotonic() - last_beat >= HEARTBEAT_EVERY_SECONDS:
            finetune_run_heartbeat(run.pk)
            last_beat = time.monotonic()

    def report(progress: EpochProgress) -> None:
        nonlocal last_beat
        FinetuneRun.objects.filter(pk=run.pk).update(metrics=progress.metrics, heartbeat_at=timezone.now())
        last_beat = time.monotonic()
        if on_epoch is not None:
            on_epoch(progress)

    try:
        shutil.rmtree(stage, ignore_errors=True)
        result = train(
            model,
            tokenizer,
            train_set,
            val_set,
            config,
            device=device,
            stage_dir=stage,
            base_metrics=base_metrics,
            on_epoch=report,
            evaluate=evaluate,
            on_step=beat,
        )
        metrics = result.metrics
        # the whole run, model loading and saving included (training.json's own is the loop's)
        metrics["run_wall_seconds"] = round(time.perf_counter() - wall_started, 3)
        _write_json(stage / TRAINING_JSON, metrics)
        output.mkdir(parents=True, exist_ok=True)
        for item in sorted(stage.iterdir()):
            os.replace(item, output / item.name)
        stage.rmdir()
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}".strip()
        progress = FinetuneRun.objects.filter(pk=run.pk).values_list("metrics", flat=True).first() or {}
        progress = {**progress, "status": "failed", "error": error}
        FinetuneRun.objects.filter(pk=run.pk).update(
            status=JobStatus.FAILED,
            error=f"{error}\n{traceback.format_exc(limit=5)}"[:10000],
            metrics=progress,
            finished_at=timezone.now(),
        )
        shutil.rmtree(stage, ignore_errors=True)
        raise
    FinetuneRun.objects.filter(pk=run.pk).update(
        status=JobStatus.SUCCEEDED, metrics=metrics, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run


