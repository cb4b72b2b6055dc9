"""Datasets, model specs, generation jobs and their answers, fine-tuning runs.

Nothing here imports torch: web processes read these rows without paying for the ML stack.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Role(models.TextChoices):
    PRETRAINED = "pretrained", "Pre-trained"
    FINETUNED = "finetuned", "Fine-tuned"


# The two systems every job has. A job of more than two systems (issue 17) names the others by
# `JobSystem.name`; an answer's `role` is the name of the system that wrote it.
TWO_SYSTEMS = (Role.PRETRAINED.value, Role.FINETUNED.value)


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Prompt(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="prompts")
    external_id = models.CharField(max_length=200)
    # sentiment, features, recommendation, relevance, or a custom slug
    task = models.SlugField(max_length=64)
    text = models.TextField()
    context = models.TextField(blank=True)
    reference = models.TextField(blank=True)
    # machine-checkable truth (e.g. "negative", "no"); empty when there is none
    label = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "external_id"], name="prompt_external_id_unique_per_dataset"
            )
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.dataset_id}:{self.external_id}"


class ModelSpec(models.Model):
    """What to load: a base model (hub id, local folder, or folder/file of a GGUF) and, optionally, a
    peft adapter folder. A job's pre-trained spec has no adapter; its fine-tuned spec names one."""

    name = models.CharField(max_length=200, unique=True)
    base_model = models.CharField(max_length=1000)
    gguf_file = models.CharField(max_length=1000, blank=True)
    adapter_path = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PARTIALLY_FAILED = "partially_failed"


class FailureKind(models.TextChoices):
    """Why a job, chunk or fine-tuning run failed (or was not run), stored on the row so code and
    clients branch on the kind, never on the wording of `error`. Empty while nothing failed."""

    BROKER_UNREACHABLE = "broker_unreachable", "broker unreachable when queueing"
    NO_PROMPTS = "no_prompts", "the dataset has no prompts"
    BAD_INPUT = "bad_input", "the inputs cannot be used"
    MODEL_LOAD = "model_load", "the base model cannot be loaded"
    ERROR = "error", "an error while generating or training"
    GAVE_UP = "gave_up", "started too many times without finishing"
    WORKER_LOST = "worker_lost", "the worker stopped"
    INCOMPLETE = "incomplete", "some answers were not made"
    NOT_RUN = "not_run", "not run: the job had already finished"


FINISHED_STATUSES = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.PARTIALLY_FAILED}
ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class FailsOnce:
    """For rows with a status, an error and a failure kind (jobs and fine-tuning runs)."""

    @classmethod
    def fail_unless_finished(cls, pk: int, *, error: str, kind: FailureKind) -> bool:
        """Mark the row failed unless it has already finished. True when this call made the change:
        a conditional UPDATE, so of two processes failing (or finishing) the same row one wins."""
        updated = cls.objects.filter(pk=pk, status__in=ACTIVE_STATUSES).update(  # type: ignore[attr-defined]
            status=JobStatus.FAILED, error=error[:10000], failure_kind=kind, finished_at=timezone.now()
        )
        return updated == 1


class GenerationJob(FailsOnce, models.Model):
    name = models.CharField(max_length=200, blank=True)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="jobs")
    pretrained_model = models.ForeignKey(ModelSpec, on_delete=models.PROTECT, related_name="+", null=True)
    finetuned_model = models.ForeignKey(ModelSpec, on_delete=models.PROTECT, related_name="+", null=True)
    finetune_run = models.ForeignKey(
        "FinetuneRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    # generation settings (max_new_tokens, seed, batch_size, do_sample...) so a run can be repeated
    settings = models.JSONField(default=dict, blank=True)
    imported = models.BooleanField(default=False, help_text="answers brought in by import_answers")
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True)
    failure_kind = models.CharField(max_length=32, choices=FailureKind.choices, blank=True)
    total = models.PositiveIntegerField(default=0, help_text="answers requested (prompts x 2)")
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name or f"job {self.pk}"


class JobSystem(models.Model):
    """A system a job answers with beyond its two (pre-trained and fine-tuned): another LoRA adapter on
    the same base (a kept epoch of a run, another recipe) or answers imported from an outside system.
    Its `name` is the `role` of its answers. `epoch` and `val_loss` are set for a kept epoch of the
    job's fine-tuning run (the report sets human strength against validation loss)."""

    class Kind(models.TextChoices):
        ADAPTER = "adapter"
        IMPORTED = "imported"

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="extra_systems")
    name = models.SlugField(max_length=64)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    adapter_path = models.CharField(max_length=1000, blank=True)
    finetune_run = models.ForeignKey(
        "FinetuneRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    epoch = models.PositiveIntegerField(null=True, blank=True)
    val_loss = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "name"], name="job_system_unique_name"),
            models.CheckConstraint(
                condition=~Q(name__in=TWO_SYSTEMS), name="job_system_not_pretrained_or_finetuned"
            ),
        ]
        ordering = ["job_id", "id"]

    def __str__(self) -> str:
        return self.name


def job_system_names(job: GenerationJob | int) -> list[str]:
    """Every system of a job in order: pre-trained, fine-tuned, then its further systems as added."""
    job_id = job if isinstance(job, int) else job.pk
    extra = JobSystem.objects.filter(job_id=job_id).order_by("id").values_list("name", flat=True)
    return [*TWO_SYSTEMS, *extra]


class Answer(models.Model):
    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="answers")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="answers")
    # the system that wrote it: "pretrained", "finetuned", or a JobSystem's name
    role = models.CharField(max_length=64)
    text = models.TextField()
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    device = models.CharField(max_length=100, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    # wall time of the whole generate() batch this answer came from; latency_ms is this row's equal
    # share of it, so summing latency_ms over answers gives the compute time actually spent
    batch_ms = models.FloatField(null=True, blank=True)
    # true when the fine-tuned adapter could not be loaded and the pre-trained model answered instead
    fallback = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "prompt", "role"], name="answer_unique_per_job_prompt_role"
            ),
            models.CheckConstraint(
                condition=Q(fallback=False) | ~Q(role="pretrained"), name="answer_fallback_not_for_pretrained"
            ),
        ]

    def __str__(self) -> str:
        return f"answer {self.pk}"


class ModelLoadAttempt(models.Model):
    """One try at loading a base model or an adapter on a worker, with its outcome."""

    class Kind(models.TextChoices):
        BASE = "base"
        ADAPTER = "adapter"

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="load_attempts")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    target = models.CharField(max_length=1000)
    success = models.BooleanField()
    error = models.TextField(blank=True)
    seconds = models.FloatField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    # the worker process already held this model from an earlier job: no load happened for this job
    from_cache = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)


class GenerationChunk(models.Model):
    """A slice of a job's prompts that one Celery task answers in both roles.

    The prompt ids are frozen when the job is created, so prompts imported into the dataset later do
    not change a running job. `finished_at` is set once (conditional update), which is how the last
    chunk to finish knows it is the last one."""

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    prompt_ids = models.JSONField(default=list)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True)
    failure_kind = models.CharField(max_length=32, choices=FailureKind.choices, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    # how many times a worker picked this chunk up (more than 1 after a redelivery)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="chunk_unique_index_per_job")]
        ordering = ["job_id", "index"]

    def __str__(self) -> str:
        return f"job {self.job_id} chunk {self.index}"


class FinetuneRun(FailsOnce, models.Model):
    class Mode(models.TextChoices):
        LORA = "lora"
        FULL = "full"

    dataset = models.ForeignKey(
        Dataset, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    base_model = models.CharField(max_length=1000)
    gguf_file = models.CharField(max_length=1000, blank=True)
    output_dir = models.CharField(max_length=1000)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.LORA)
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True)
    failure_kind = models.CharField(max_length=32, choices=FailureKind.choices, blank=True)
    # the contents of training.json once the run has finished (or as far as it got)
    metrics = models.JSONField(default=dict, blank=True)
    # who runs it: the Celery worker's node name (celery@host) for queued runs, host:pid for inline
    # ones; heartbeat_at is refreshed while it trains, so a run whose worker died is found and failed
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"run {self.pk}"


class WorkerHeartbeat(models.Model):
    """A Celery worker as it last reported itself. Workers write this row when they start, every few
    seconds while they run, and once more (`stopped_at`) on a warm shutdown; a worker whose
    `seen_at` is older than the liveness limit is gone (killed, out of power, unreachable)."""

    name = models.CharField(max_length=200, unique=True)  # the Celery node name, e.g. celery@gpu1
    hostname = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    device = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ServingMeasurement(models.Model):
    """What one request waits for when it is answered alone (batch of 1), for a sample of a job's
    prompts in each role: time to the first token and to the full answer. The batch-share figure
    (`Answer.latency_ms`) is what the job cost; this is what a user of the model would wait."""

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="serving")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=20, choices=Role.choices)
    first_token_ms = models.FloatField()
    total_ms = models.FloatField()
    output_tokens = models.PositiveIntegerField()
    worker = models.CharField(max_length=200, blank=True)
    device = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "prompt", "role"], name="serving_unique_per_job_prompt_role")
        ]
