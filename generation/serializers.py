"""API shapes for generation jobs and fine-tuning runs (never for annotators: these carry model names
and adapter paths). The input serializers check their settings with generation.configs, the one
definition every way of queueing uses, and `save()` submits through the services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .configs import ConfigError, FinetuneConfig, GenerationSettings
from .jobs import job_submit
from .models import Dataset, FinetuneRun, GenerationJob, JobStatus
from .runs import finetune_run_submit
from .selectors import Progress, finetune_run_progress, job_progress
from .system_serializers import JobSystemInput, JobSystemOutput, systems_data
from .workers import WorkerCensus, worker_census

LIMITS = GenerationSettings.LIMITS


def _config_error(exc: ConfigError) -> serializers.ValidationError:
    return serializers.ValidationError({exc.field: [exc.message]})


class JobCreateInput(serializers.Serializer):
    """What `POST /api/jobs/` and the job page take. `save(created_by=user)` submits the job and returns
    it; it raises ConfigError (e.g. an unknown dataset), having created nothing."""

    dataset = serializers.CharField(help_text="dataset name or id")
    base_model = serializers.CharField(
        max_length=1000,
        required=False,
        allow_blank=True,
        default="",
        help_text="hub id, local folder, .gguf path or smollm2-demo (default: the run's, with finetune_run)",
    )
    finetune_run = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="a finished LoRA run whose adapter to use"
    )
    gguf_file = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    adapter_path = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    max_new_tokens = serializers.IntegerField(
        required=False,
        default=GenerationSettings.max_new_tokens,
        min_value=LIMITS["max_new_tokens"][0],
        max_value=LIMITS["max_new_tokens"][1],
    )
    batch_size = serializers.IntegerField(
        required=False,
        default=GenerationSettings.batch_size,
        min_value=LIMITS["batch_size"][0],
        max_value=LIMITS["batch_size"][1],
    )
    seed = serializers.IntegerField(required=False, default=GenerationSettings.seed)
    do_sample = serializers.BooleanField(required=False, default=False, help_text="sample instead of greedy")
    temperature = serializers.FloatField(
        required=False, allow_null=True, default=None, help_text="with do_sample (default: the model's)"
    )
    top_p = serializers.FloatField(
        required=False, allow_null=True, default=None, help_text="with do_sample (default: the model's)"
    )
    chunk_prompts = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="prompts per worker task"
    )
    prompt_limit = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="answer only the first N prompts"
    )
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    systems = JobSystemInput(many=True, required=False, help_text="further adapter systems on the base")
    kept_epochs = serializers.BooleanField(
        required=False, default=False, help_text="also every kept epoch of finetune_run, as epoch-NNN"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("base_model", "").strip() and attrs.get("finetune_run") is None:
            raise serializers.ValidationError({"base_model": ["required unless finetune_run is given"]})
        try:
            attrs["settings"] = GenerationSettings.from_dict(attrs)
        except ConfigError as exc:
            raise _config_error(exc) from exc
        return attrs

    def create(self, validated_data: dict[str, Any]) -> GenerationJob:
        return job_submit(
            dataset=validated_data["dataset"],
            base_model=validated_data["base_model"],
            gguf_file=validated_data.get("gguf_file", ""),
            adapter_path=validated_data.get("adapter_path", ""),
            finetune_run_id=validated_data.get("finetune_run"),
            settings=validated_data["settings"],
            name=validated_data.get("name", ""),
            created_by=validated_data.get("created_by"),
            systems=[dict(system) for system in validated_data.get("systems", [])],
            kept_epochs=validated_data.get("kept_epochs", False),
        )


class JobOutput(serializers.ModelSerializer):
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)
    base_model = serializers.SerializerMethodField()
    gguf_file = serializers.SerializerMethodField()
    adapter_path = serializers.SerializerMethodField()
    done = serializers.SerializerMethodField()
    tokens_per_s = serializers.SerializerMethodField()
    eta_s = serializers.SerializerMethodField()
    fallback = serializers.SerializerMethodField()
    workers_live = serializers.SerializerMethodField(
        help_text="generation workers live now (heartbeat within WORKER_LIVENESS_SECONDS)"
    )
    waiting_for_worker = serializers.SerializerMethodField(
        help_text="true while the job is queued or running and no worker is live"
    )
    systems = serializers.SerializerMethodField(help_text="every system of the job, in its order")

    class Meta:
        model = GenerationJob
        fields = [
            "id",
            "name",
            "dataset",
            "dataset_name",
            "status",
            "done",
            "total",
            "error",
            "failure_kind",
            "tokens_per_s",
            "eta_s",
            "fallback",
            "workers_live",
            "waiting_for_worker",
            "base_model",
            "gguf_file",
            "adapter_path",
            "settings",
            "imported",
            "created_at",
            "started_at",
            "finished_at",
            "systems",
        ]
        read_only_fields = fields

    def _census(self) -> WorkerCensus:
        """The workers, read once per answer (a list of jobs shares it)."""
        if "_census" not in self.context:
            self.context["_census"] = worker_census()
        return self.context["_census"]

    def _progress(self, job: GenerationJob) -> Progress:
        cache = self.context.setdefault("_progress", {})
        if job.pk not in cache:
            cache[job.pk] = job_progress(job, self._census())
        return cache[job.pk]

    def get_base_model(self, job: GenerationJob) -> str:
        return job.pretrained_model.base_model if job.pretrained_model else ""

    def get_gguf_file(self, job: GenerationJob) -> str:
        return job.pretrained_model.gguf_file if job.pretrained_model else ""

    def get_adapter_path(self, job: GenerationJob) -> str:
        return job.finetuned_model.adapter_path if job.finetuned_model else ""

    def get_done(self, job: GenerationJob) -> int:
        return self._progress(job).done

    def get_tokens_per_s(self, job: GenerationJob) -> float | None:
        return self._progress(job).tokens_per_s

    def get_eta_s(self, job: GenerationJob) -> float | None:
        return self._progress(job).eta_s

    def get_fallback(self, job: GenerationJob) -> int:
        return self._progress(job).fallback

    def get_workers_live(self, job: GenerationJob) -> int:
        return self._census().live_count

    def get_waiting_for_worker(self, job: GenerationJob) -> bool:
        return self._progress(job).waiting_for_worker

    @extend_schema_field(JobSystemOutput(many=True))
    def get_systems(self, job: GenerationJob) -> list[dict[str, Any]]:
        return systems_data(self, job)


# ---------------------------------------------------------------------------------------------
# Fine-tuning runs


class FinetuneRunCreateInput(serializers.Serializer):
    """What `POST /api/finetune-runs/` takes; `save(created_by=user)` submits the run (see
    JobCreateInput)."""

    dataset = serializers.CharField(
        help_text="dataset name or id; its prompts with a reference are trained on"
    )
    base_model = serializers.CharField(
        max_length=1000, help_text="hub id, local folder, .gguf path or smollm2-demo"
    )
    gguf_file = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    output_dir = serializers.CharField(
        max_length=1000, help_text="folder on the worker for the adapter (or model) and training.json"
    )
    mode = serializers.ChoiceField(choices=["lora", "full"], default="lora")
    epochs = serializers.IntegerField(min_value=1, max_value=10000, default=50)
    patience = serializers.IntegerField(min_value=1, max_value=10000, default=10)
    lr = serializers.FloatField(
        required=False, allow_null=True, default=None, help_text="default 2e-4 LoRA, 2e-5 full"
    )
    batch_size = serializers.IntegerField(min_value=1, max_value=4096, default=8)
    max_length = serializers.IntegerField(min_value=2, max_value=1_000_000, default=384)
    seed = serializers.IntegerField(default=0)
    val_fraction = serializers.FloatField(default=0.1)
    r = serializers.IntegerField(min_value=1, max_value=4096, default=16)
    alpha = serializers.IntegerField(min_value=1, default=32)
    dropout = serializers.FloatField(min_value=0.0, default=0.05)
    target_modules = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, allow_empty=False
    )
    gradient_checkpointing = serializers.BooleanField(default=False)
    max_examples = serializers.IntegerField(min_value=2, required=False, allow_null=True, default=None)
    device = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")

    def validate_target_modules(self, value: list[str]) -> list[str]:
        # "q_proj,v_proj" as one string is accepted too
        names = [name.strip() for item in value for name in item.split(",") if name.strip()]
        if not names:
            raise serializers.ValidationError("name at least one module")
        return names

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["config"] = FinetuneConfig.from_options(attrs)
        except ConfigError as exc:
            raise _config_error(exc) from exc
        return attrs

    def create(self, validated_data: dict[str, Any]) -> FinetuneRun:
        return finetune_run_submit(
            dataset=validated_data["dataset"],
            base_model=validated_data["base_model"],
            gguf_file=validated_data.get("gguf_file", ""),
            output_dir=validated_data["output_dir"],
            config=validated_data["config"],
            created_by=validated_data.get("created_by"),
        )


class FinetuneRunOutput(serializers.ModelSerializer):
    dataset_name = serializers.CharField(source="dataset.name", read_only=True, default=None)
    epochs = serializers.SerializerMethodField()
    epochs_run = serializers.SerializerMethodField()
    best_epoch = serializers.SerializerMethodField()
    best_val_loss = serializers.SerializerMethodField()
    early_stopped = serializers.SerializerMethodField()
    train_loss = serializers.SerializerMethodField()
    val_loss = serializers.SerializerMethodField()
    trainable_params = serializers.SerializerMethodField()
    total_params = serializers.SerializerMethodField()
    trainable_pct = serializers.SerializerMethodField()
    peak_memory_bytes = serializers.SerializerMethodField()
    wall_seconds = serializers.SerializerMethodField()
    tokens_per_s = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta:
        model = FinetuneRun
        fields = [
            "id",
            "status",
            "dataset",
            "dataset_name",
            "base_model",
            "gguf_file",
            "output_dir",
            "mode",
            "config",
            "epochs",
            "epochs_run",
            "best_epoch",
            "best_val_loss",
            "early_stopped",
            "train_loss",
            "val_loss",
            "trainable_params",
            "total_params",
            "trainable_pct",
            "peak_memory_bytes",
            "wall_seconds",
            "tokens_per_s",
            "error",
            "failure_kind",
            "worker",
            "heartbeat_at",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def _p(self, run: FinetuneRun) -> dict[str, Any]:
        cache = self.context.setdefault("_run_progress", {})
        if run.pk not in cache:
            cache[run.pk] = finetune_run_progress(run)
        return cache[run.pk]

    def get_epochs(self, run: FinetuneRun) -> int | None:
        return self._p(run)["epochs"]

    def get_epochs_run(self, run: FinetuneRun) -> int:
        return self._p(run)["epochs_run"]

    def get_best_epoch(self, run: FinetuneRun) -> int | None:
        return self._p(run)["best_epoch"]

    def get_best_val_loss(self, run: FinetuneRun) -> float | None:
        return self._p(run)["best_val_loss"]

    def get_early_stopped(self, run: FinetuneRun) -> bool:
        return self._p(run)["early_stopped"]

    def get_train_loss(self, run: FinetuneRun) -> list[float]:
        return self._p(run)["train_loss"]

    def get_val_loss(self, run: FinetuneRun) -> list[float]:
        return self._p(run)["val_loss"]

    def get_trainable_params(self, run: FinetuneRun) -> int | None:
        return self._p(run)["trainable_params"]

    def get_total_params(self, run: FinetuneRun) -> int | None:
        return self._p(run)["total_params"]

    def get_trainable_pct(self, run: FinetuneRun) -> float | None:
        return self._p(run)["trainable_pct"]

    def get_peak_memory_bytes(self, run: FinetuneRun) -> int | None:
        return self._p(run)["peak_memory_bytes"]

    def get_wall_seconds(self, run: FinetuneRun) -> float | None:
        return self._p(run)["wall_seconds"]

    def get_tokens_per_s(self, run: FinetuneRun) -> float | None:
        return self._p(run)["tokens_per_s"]

    def get_error(self, run: FinetuneRun) -> str:
        return self._p(run)["error"]


# ---------------------------------------------------------------------------------------------
# Lists: their filters (query parameters) and datasets


class _DatasetFilter(serializers.Serializer):
    dataset = serializers.CharField(
        required=False, max_length=200, help_text="a dataset's id or exact name (unknown: an empty list)"
    )


class JobListFilters(_DatasetFilter):
    """`GET /api/jobs/`'s filters."""

    status = serializers.ChoiceField(choices=JobStatus.choices, required=False)


class FinetuneRunListFilters(_DatasetFilter):
    """`GET /api/finetune-runs/`'s filters."""

    status = serializers.ChoiceField(choices=JobStatus.choices, required=False)
    mode = serializers.ChoiceField(choices=FinetuneRun.Mode.choices, required=False)


class DatasetListFilters(serializers.Serializer):
    """`GET /api/datasets/`'s filters."""

    task = serializers.SlugField(
        required=False, max_length=64, help_text="datasets with prompts of this task"
    )


class DatasetOutput(serializers.ModelSerializer):
    """A dataset in `GET /api/datasets/`: `prompts` counted by the query (`prompt_count`), `tasks` from
    the view's context (`tasks_by_dataset`: one query for the whole page)."""

    prompts = serializers.IntegerField(source="prompt_count", read_only=True, help_text="number of prompts")
    tasks = serializers.SerializerMethodField(help_text="the prompts' tasks, sorted")

    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "prompts", "tasks", "created_at"]
        read_only_fields = fields

    def get_tasks(self, dataset: Dataset) -> list[str]:
        return self.context.get("tasks_by_dataset", {}).get(dataset.pk, [])
