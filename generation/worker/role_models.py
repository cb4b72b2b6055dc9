"""The models that answer a job's systems on this worker, and the record of every load attempt.

The pre-trained system is the base model; the fine-tuned one is the base with the job's adapter, and
each further adapter system (issue 17) the base with its own adapter: one base load serves them all.
An adapter that cannot be loaded is not an error for the job: the base answers for that system, those
answers are marked `fallback`, and the failed attempt is recorded with its reason (the report's load
success and fallback rates are computed from these rows); the other systems are unaffected.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from generation.configs import ConfigError
from generation.job_systems import adapter_systems
from generation.ml.loading import AdapterLoadError, LoadedModel
from generation.ml.modeling import ModelLoadError, resolve_base
from generation.models import GenerationJob, ModelLoadAttempt, ModelSpec, Role
from generation.paths import NOT_ALLOWED, check_model_paths, inside_roots

from .runtime import WorkerRuntime, job_key

logger = logging.getLogger(__name__)


@dataclass
class SystemModel:
    adapter: str | None  # peft adapter name; None = answered by the base
    fallback: bool  # the system's adapter could not be used: the base answers for it


@dataclass
class RoleModels:
    entry: LoadedModel
    adapter: str | None  # peft adapter name for the fine-tuned role; None = answered by the base
    fallback: bool
    # the job's further adapter systems by name (issue 17)
    extra: dict[str, SystemModel] = field(default_factory=dict)

    def system(self, name: str) -> SystemModel:
        """How the named system answers: the pre-trained one is the base, never a fallback."""
        if name == Role.PRETRAINED:
            return SystemModel(None, False)
        if name == Role.FINETUNED:
            return SystemModel(self.adapter, self.fallback)
        return self.extra.get(name, SystemModel(None, True))


def record_load(
    runtime: WorkerRuntime,
    job: GenerationJob,
    *,
    kind: str,
    target: str,
    success: bool,
    seconds: float | None,
    error: str = "",
    from_cache: bool = False,
) -> None:
    """One ModelLoadAttempt row, unless this process already recorded this successful load for this
    job (its later chunks reuse the model). Failures are always recorded."""
    key = (job_key(job), kind, target)
    if success and key in runtime.recorded_loads:
        return
    runtime.recorded_loads.add(key)
    ModelLoadAttempt.objects.create(
        job=job,
        kind=kind,
        target=target[:1000],
        success=success,
        error=error,
        seconds=seconds,
        worker=runtime.name,
        from_cache=from_cache,
    )


def _base_label(spec: ModelSpec) -> str:
    return f"{spec.base_model} [{spec.gguf_file}]" if spec.gguf_file else spec.base_model


def load_base(runtime: WorkerRuntime, job: GenerationJob) -> LoadedModel:
    """The job's base model, loaded or reused, with the attempt recorded. Raises ModelLoadError when it
    cannot be loaded, whatever the cause (e.g. out of memory while moving it to the device)."""
    spec = job.pretrained_model
    assert spec is not None, "imported jobs are never run"
    target = _base_label(spec)
    try:
        # checked again here: a row saved before the roots were set (or edited since) is not trusted
        check_model_paths(base_model=spec.base_model, gguf_file=spec.gguf_file)
        ref = resolve_base(spec.base_model, spec.gguf_file, model_dir=Path(settings.EVALSITE_MODEL_DIR))
        entry, info = runtime.host.load_base(ref)
    except Exception as exc:
        error = str(exc) if isinstance(exc, ModelLoadError | ConfigError) else f"{type(exc).__name__}: {exc}"
        record_load(runtime, job, kind="base", target=target, success=False, seconds=None, error=error)
        raise ModelLoadError(error) from exc
    record_load(
        runtime,
        job,
        kind="base",
        target=target,
        success=True,
        seconds=round(info.seconds, 3),
        from_cache=info.from_cache,
    )
    return entry


def load_role_models(runtime: WorkerRuntime, job: GenerationJob) -> RoleModels:
    """Load (or reuse) the base and attach the adapter of every system that has one, recording every
    attempt.

    Raises ModelLoadError when the base cannot be loaded; an adapter that fails means fallback for
    its system, for this chunk and the job's later chunks on this worker. With more than one adapter
    they are all attached switched (the host keeps one merged copy at a time). A failed attempt that
    damaged the base reloads it, and the adapters attached before it are attached again."""
    entry = load_base(runtime, job)
    finetuned = job.finetuned_model.adapter_path if job.finetuned_model else ""
    wanted = [(str(Role.FINETUNED), finetuned), *adapter_systems(job).values_list("name", "adapter_path")]
    merge = len({path for _, path in wanted if path}) <= 1
    while True:
        names: dict[str, str | None] = {}
        for system, path in wanted:
            name, reloaded = _attach(runtime, job, entry, system, path, merge=merge)
            if reloaded is not None:  # the base was loaded afresh: attach every adapter again
                entry = reloaded
                break
            names[system] = name
        else:
            break
    extra = {system: SystemModel(name, name is None) for system, name in names.items()}
    main = extra.pop(str(Role.FINETUNED))
    return RoleModels(entry, main.adapter, main.fallback, extra)


def _attach(
    runtime: WorkerRuntime,
    job: GenerationJob,
    entry: LoadedModel,
    system: str,
    adapter_path: str,
    *,
    merge: bool,
) -> tuple[str | None, LoadedModel | None]:
    """(the system's adapter name or None for fallback, the base loaded afresh when the failed
    attempt damaged the held one, else None)."""
    if not adapter_path or (job_key(job), adapter_path) in runtime.failed_adapters:
        return None, None
    started = time.perf_counter()
    try:
        if not inside_roots(adapter_path):
            raise AdapterLoadError(f"cannot load adapter: {NOT_ALLOWED}")
        name, info = runtime.host.load_adapter(entry, adapter_path, merge=merge)
    except AdapterLoadError as exc:
        runtime.failed_adapters[(job_key(job), adapter_path)] = str(exc)
        seconds = round(time.perf_counter() - started, 3)
        record_load(
            runtime, job, kind="adapter", target=adapter_path, success=False, seconds=seconds, error=str(exc)
        )
        role = "the fine-tuned role" if system == Role.FINETUNED else f'system "{system}"'
        logger.warning("job %s: %s; the pre-trained model answers for %s", job.pk, exc, role)
        if not exc.base_damaged:
            return None, None
        # the failed attempt left LoRA layers in the base: load it afresh
        runtime.host.forget(entry)
        assert job.pretrained_model is not None
        runtime.recorded_loads.discard((job_key(job), "base", _base_label(job.pretrained_model)))
        return None, load_base(runtime, job)
    record_load(
        runtime,
        job,
        kind="adapter",
        target=adapter_path,
        success=True,
        seconds=round(info.seconds, 3),
        from_cache=info.from_cache,
    )
    return name, None
