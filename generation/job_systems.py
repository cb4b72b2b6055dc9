"""A job's further systems (issue 17): what a user asks for, checked, and the rows made from it.

Every job answers with "pretrained" (the base) and "finetuned" (the base with the job's adapter). A job
may name more adapters on the same base, each a `JobSystem` whose name is the `role` of its answers:
given one by one (`systems`: name and adapter folder), or every kept epoch of the job's fine-tuning
run (`kept_epochs`: its training.json's `kept_epochs`, the run's best epoch left out since that is the
fine-tuned system already). Workers generate the answers of "pretrained", "finetuned" and every
system of kind "adapter"; systems of kind "imported" bring their answers with them.

Bad input raises ConfigError naming the input ("systems" or "kept_epochs"); nothing here writes
until `systems_create`, which the job's own transaction wraps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db.models import QuerySet

from .configs import ConfigError
from .models import TWO_SYSTEMS, FinetuneRun, GenerationJob, JobSystem
from .paths import check_model_paths

SYSTEMS, KEPT_EPOCHS = "systems", "kept_epochs"
NAME_LENGTH = 64
SLUG = re.compile(r"[-a-zA-Z0-9_]+")


@dataclass(frozen=True)
class SystemSpec:
    """One further system a job is asked to answer with: an adapter folder on the job's base."""

    name: str
    adapter_path: str
    finetune_run: FinetuneRun | None = None
    epoch: int | None = None
    val_loss: float | None = None


def system_spec(value: SystemSpec | Mapping[str, Any] | Sequence[Any], n: int) -> SystemSpec:
    """A spec from what a caller gave: a SystemSpec, a mapping with `name` and `adapter_path`, or a
    (name, adapter_path) pair. `n` counts from 1 for the error message."""
    if isinstance(value, SystemSpec):
        return value
    if isinstance(value, Mapping):
        fields = {k: value.get(k) for k in ("name", "adapter_path", "finetune_run", "epoch", "val_loss")}
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        fields = {"name": value[0], "adapter_path": value[1]}
    else:
        raise ConfigError(SYSTEMS, f"system {n}: give a name and an adapter folder")
    name, path = fields.get("name"), fields.get("adapter_path")
    if not isinstance(name, str) or not isinstance(path, str):
        raise ConfigError(SYSTEMS, f"system {n}: the name and the adapter folder must be text")
    run, epoch, loss = fields.get("finetune_run"), fields.get("epoch"), fields.get("val_loss")
    if run is not None and not isinstance(run, FinetuneRun):
        raise ConfigError(SYSTEMS, f"system {n}: finetune_run must be a fine-tuning run")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0):
        raise ConfigError(SYSTEMS, f"system {n}: epoch must be a whole number of at least 0")
    if loss is not None and (isinstance(loss, bool) or not isinstance(loss, int | float)):
        raise ConfigError(SYSTEMS, f"system {n}: val_loss must be a number")
    return SystemSpec(
        name=name.strip(),
        adapter_path=path.strip(),
        finetune_run=run,
        epoch=epoch,
        val_loss=float(loss) if loss is not None else None,
    )


def best_epoch_and_loss(run: FinetuneRun | None) -> tuple[int | None, float | None]:
    """A run's best epoch (the weights of its adapter: a job's fine-tuned system) and that epoch's
    validation loss, from training.json's `best_epoch` and `val_loss` (one per epoch; `best_val_loss`
    where the list is short). None for what the run does not record."""
    metrics = run.metrics if run is not None and isinstance(run.metrics, dict) else {}
    best = metrics.get("best_epoch")
    if isinstance(best, bool) or not isinstance(best, int) or best < 1:
        return None, None
    losses = metrics.get("val_loss")
    loss = losses[best - 1] if isinstance(losses, list) and len(losses) >= best else metrics.get("best_val_loss")
    if isinstance(loss, bool) or not isinstance(loss, int | float):
        return best, None
    return best, float(loss)


def epoch_system_name(epoch: int) -> str:
    return f"epoch-{epoch:03d}"


def kept_epoch_specs(run: FinetuneRun) -> list[SystemSpec]:
    """A system per kept epoch of `run` (its metrics' `kept_epochs`), in epoch order, except the best
    epoch, which is the job's fine-tuned system already. ConfigError when that leaves none."""
    metrics = run.metrics if isinstance(run.metrics, dict) else {}
    kept = metrics.get("kept_epochs")
    if not isinstance(kept, list) or not kept:
        raise ConfigError(
            KEPT_EPOCHS,
            f"run {run.pk} kept no epochs (fine-tune with --keep-epochs or --keep-every to keep some)",
        )
    best = metrics.get("best_epoch")
    specs = []
    for item in kept:
        epoch = item.get("epoch") if isinstance(item, dict) else None
        folder = item.get("folder") if isinstance(item, dict) else None
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not isinstance(folder, str) or not folder:
            raise ConfigError(KEPT_EPOCHS, f"run {run.pk} lists a kept epoch without an epoch and a folder")
        if epoch == best:
            continue
        val_loss = item.get("val_loss")
        specs.append(
            SystemSpec(
                name=epoch_system_name(epoch),
                adapter_path=str(Path(run.output_dir) / folder),
                finetune_run=run,
                epoch=epoch,
                val_loss=float(val_loss) if isinstance(val_loss, int | float) else None,
            )
        )
    if not specs:
        raise ConfigError(
            KEPT_EPOCHS, f"run {run.pk} kept only its best epoch ({best}), which is the fine-tuned system"
        )
    return sorted(specs, key=lambda spec: spec.epoch or 0)


def check_systems(specs: Iterable[SystemSpec]) -> list[SystemSpec]:
    """The specs, unless one is unusable: a name that is not a slug, is taken (by "pretrained",
    "finetuned" or another system) or too long; an adapter folder outside EVALSITE_MODEL_ROOTS
    ("not allowed", whatever is there) or not there. ConfigError("systems", ...) naming the system."""
    checked: list[SystemSpec] = []
    seen: set[str] = set()
    for n, spec in enumerate(specs, 1):
        name = spec.name
        where = f'system {n} "{name}"' if name else f"system {n}"
        if not name:
            raise ConfigError(SYSTEMS, f"{where}: a name is required")
        if len(name) > NAME_LENGTH or not SLUG.fullmatch(name):
            raise ConfigError(
                SYSTEMS, f'{where}: a name is letters, digits, "-" and "_", at most {NAME_LENGTH}'
            )
        if name in TWO_SYSTEMS:
            raise ConfigError(SYSTEMS, f"{where}: every job has this system already; pick another name")
        if name in seen:
            raise ConfigError(SYSTEMS, f"{where}: the name is used twice")
        seen.add(name)
        if not spec.adapter_path:
            raise ConfigError(SYSTEMS, f"{where}: an adapter folder is required")
        try:
            check_model_paths(base_model="", adapter_path=spec.adapter_path)
        except ConfigError as exc:
            raise ConfigError(SYSTEMS, f"{where}: {exc.message}") from None
        if not Path(spec.adapter_path).expanduser().is_dir():
            raise ConfigError(SYSTEMS, f"{where}: adapter folder not found: {spec.adapter_path}")
        checked.append(spec)
    return checked


def systems_create(job: GenerationJob, specs: Iterable[SystemSpec]) -> list[JobSystem]:
    """The job's JobSystem rows (kind "adapter"), in the given order (ids ascend: the job's order)."""
    return [
        JobSystem.objects.create(
            job=job,
            name=spec.name,
            kind=JobSystem.Kind.ADAPTER,
            adapter_path=spec.adapter_path[:1000],
            finetune_run=spec.finetune_run,
            epoch=spec.epoch,
            val_loss=spec.val_loss,
        )
        for spec in specs
    ]


def specs_of(job: GenerationJob) -> list[SystemSpec]:
    """A job's adapter systems as specs, to queue the same job again."""
    return [
        SystemSpec(s.name, s.adapter_path, s.finetune_run, s.epoch, s.val_loss)
        for s in adapter_systems(job).select_related("finetune_run")
    ]


def adapter_systems(job: GenerationJob | int) -> QuerySet[JobSystem]:
    """The job's further systems that workers generate (kind "adapter"), in the job's order."""
    job_id = job if isinstance(job, int) else job.pk
    return JobSystem.objects.filter(job_id=job_id, kind=JobSystem.Kind.ADAPTER).order_by("id")


def generated_system_names(job: GenerationJob | int) -> list[str]:
    """The systems workers answer with for this job: pre-trained, fine-tuned, its adapter systems."""
    return [*TWO_SYSTEMS, *adapter_systems(job).values_list("name", flat=True)]
