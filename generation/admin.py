"""Django admin for datasets, model specs, jobs and their answers.

Actions: on datasets, "Queue a generation job…" opens the job form (/jobs/new/) with that dataset
chosen; on jobs, "Add" opens that same form (status, total and chunks are never typed in), "Queue again"
makes a new job with the same dataset, models, further systems and settings, and "Cancel".
Fine-tune runs: "Add" is a form that queues a run; "Queue again" and "Fail runs whose worker stopped
sending heartbeats" are actions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from .configs import DEFAULT_TARGET_MODULES, ConfigError, FinetuneConfig
from .jobs import job_cancel, job_submit_again
from .models import (
    Answer,
    Dataset,
    FinetuneRun,
    GenerationChunk,
    GenerationJob,
    JobStatus,
    JobSystem,
    ModelLoadAttempt,
    ModelSpec,
    Prompt,
)
from .runs import (
    finetune_run_check,
    finetune_run_submit,
    finetune_run_submit_again,
    finetune_runs_fail_stale,
)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "prompt_count", "created_at"]
    search_fields = ["name"]
    actions = ["queue_job"]

    @admin.display(description="prompts")
    def prompt_count(self, obj: Dataset) -> int:
        return obj.prompts.count()

    @admin.action(description="Queue a generation job…")
    def queue_job(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> HttpResponseRedirect | None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one dataset.", messages.WARNING)
            return None
        return HttpResponseRedirect(f"{reverse('job-new')}?{urlencode({'dataset': queryset.get().name})}")


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["external_id", "dataset", "task", "label"]
    list_filter = ["task", "dataset"]
    search_fields = ["external_id", "text"]


@admin.register(ModelSpec)
class ModelSpecAdmin(admin.ModelAdmin):
    list_display = ["name", "base_model", "gguf_file", "adapter_path", "created_at"]
    search_fields = ["name", "base_model", "adapter_path"]
    # specs are made by queueing a job, whose paths are checked (generation.paths); editing them here
    # would skip that check for every later "Queue again"
    readonly_fields = ["base_model", "gguf_file", "adapter_path", "created_at"]


class ChunkInline(admin.TabularInline):
    model = GenerationChunk
    extra = 0
    can_delete = False
    fields = ["index", "status", "worker", "attempts", "started_at", "finished_at", "error", "failure_kind"]
    readonly_fields = fields


class SystemInline(admin.TabularInline):
    """The job's further systems (issue 17): made with the job, never edited (a campaign's pairs and
    the report name them)."""

    model = JobSystem
    extra = 0
    can_delete = False
    fields = ["name", "kind", "adapter_path", "finetune_run", "epoch", "val_loss"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LoadAttemptInline(admin.TabularInline):
    model = ModelLoadAttempt
    extra = 0
    can_delete = False
    fields = ["kind", "target", "success", "from_cache", "seconds", "worker", "error"]
    readonly_fields = fields


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "dataset", "status", "total", "imported", "created_at", "finished_at"]
    list_filter = ["status", "failure_kind", "imported"]
    search_fields = ["name"]
    readonly_fields = [
        "status", "error", "failure_kind", "total", "started_at", "finished_at", "created_at", "imported"
    ]
    inlines = [SystemInline, ChunkInline, LoadAttemptInline]
    actions = ["queue_again", "cancel"]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        """The "Add" button opens the site's queue form: a job is only ever made by `job_submit` (its chunks cut,
        its paths checked, its messages sent), never by typing a status, a total or chunks here."""
        return HttpResponseRedirect(reverse("job-new"))

    def get_inlines(self, request: HttpRequest, obj: GenerationJob | None) -> Any:
        return self.inlines if obj is not None else []

    @admin.action(description="Queue again (same dataset, models, systems and settings)")
    def queue_again(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> None:
        for old in queryset.select_related("dataset", "pretrained_model", "finetuned_model", "finetune_run"):
            try:
                job = job_submit_again(job=old, created_by=request.user)
            except ConfigError as exc:
                self.message_user(request, f"{exc.message}: skipped.", messages.WARNING)
                continue
            if job.status == JobStatus.FAILED:
                self.message_user(request, f"Job {job.pk} failed: {job.error}", messages.ERROR)
            else:
                self.message_user(request, f"Job {job.pk} queued ({job.total} answers).", messages.SUCCESS)

    @admin.action(description="Cancel")
    def cancel(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> None:
        cancelled = sum(1 for job in queryset if job_cancel(job=job))
        self.message_user(request, f"{cancelled} job(s) cancelled.", messages.SUCCESS)


@admin.register(Answer)
class AnswerAdmin(admin.ModelAdmin):
    list_display = ["id", "job", "prompt", "role", "fallback", "output_tokens", "latency_ms", "worker"]
    list_filter = ["role", "fallback"]
    raw_id_fields = ["job", "prompt"]


@admin.register(ModelLoadAttempt)
class ModelLoadAttemptAdmin(admin.ModelAdmin):
    list_display = ["id", "job", "kind", "target", "success", "from_cache", "seconds", "worker", "created_at"]
    list_filter = ["kind", "success"]


_DEFAULTS = FinetuneConfig()


class FinetuneRunAddForm(forms.ModelForm):
    """The admin's "Add fine-tune run" form: what to train and how; saving queues the run. Options are
    checked by FinetuneConfig, as the API's and the `finetune` command's are."""

    epochs = forms.IntegerField(min_value=1, initial=_DEFAULTS.epochs)
    patience = forms.IntegerField(
        min_value=1, initial=_DEFAULTS.patience, help_text="epochs without a lower validation loss"
    )
    lr = forms.FloatField(required=False, help_text="learning rate; empty: 2e-4 LoRA, 2e-5 full")
    r = forms.IntegerField(min_value=1, initial=_DEFAULTS.r, label="LoRA r")
    alpha = forms.IntegerField(min_value=1, initial=_DEFAULTS.alpha, label="LoRA alpha")
    dropout = forms.FloatField(min_value=0, initial=_DEFAULTS.dropout, label="LoRA dropout")
    target_modules = forms.CharField(initial=",".join(DEFAULT_TARGET_MODULES))
    batch_size = forms.IntegerField(min_value=1, initial=_DEFAULTS.batch_size)
    max_length = forms.IntegerField(min_value=2, initial=_DEFAULTS.max_length)
    seed = forms.IntegerField(initial=_DEFAULTS.seed)
    gradient_checkpointing = forms.BooleanField(required=False)

    class Meta:
        model = FinetuneRun
        fields = ["dataset", "base_model", "gguf_file", "output_dir", "mode"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        if data.get("dataset") is None:
            self.add_error("dataset", "Choose the dataset to train on.")
            return data
        try:
            self.finetune_config = FinetuneConfig.from_options(data)
            finetune_run_check(
                dataset=data["dataset"],
                base_model=data.get("base_model", ""),
                output_dir=data.get("output_dir", ""),
                gguf_file=data.get("gguf_file", ""),
            )
        except ConfigError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data


@admin.register(FinetuneRun)
class FinetuneRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "dataset",
        "base_model",
        "mode",
        "status",
        "failure_kind",
        "worker",
        "heartbeat_at",
        "created_at",
        "finished_at",
    ]
    list_filter = ["mode", "status", "failure_kind"]
    actions = ["queue_again", "fail_stale"]

    def get_form(self, request: HttpRequest, obj: FinetuneRun | None = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = FinetuneRunAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: FinetuneRun | None = None) -> Any:
        if obj is None:
            return list(FinetuneRunAddForm.base_fields)
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: FinetuneRun | None = None) -> Any:
        if obj is None:
            return []
        return [f.name for f in FinetuneRun._meta.fields]

    def save_model(self, request: HttpRequest, obj: FinetuneRun, form: Any, change: bool) -> None:
        if change:
            return  # a run's record is what happened: nothing to edit
        try:
            run = finetune_run_submit(
                dataset=form.cleaned_data["dataset"],
                base_model=form.cleaned_data["base_model"],
                gguf_file=form.cleaned_data.get("gguf_file", ""),
                output_dir=form.cleaned_data["output_dir"],
                config=form.finetune_config,
                created_by=request.user,
            )
        except ConfigError as exc:
            # too late for the form to show it (a race with another run): say it and create nothing
            self.message_user(request, f"Not queued: {exc}", messages.ERROR)
            raise
        obj.pk = run.pk
        obj.refresh_from_db()

    def response_add(
        self, request: HttpRequest, obj: FinetuneRun, post_url_continue: Any = None
    ) -> HttpResponse:
        obj.refresh_from_db()
        if obj.status == JobStatus.FAILED:
            self.message_user(request, f"Run {obj.pk} failed: {obj.error}", messages.ERROR)
        else:
            self.message_user(request, f"Run {obj.pk} queued.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("run-detail", args=[obj.pk]))

    @admin.action(description="Queue again (same dataset, model, folder and settings)")
    def queue_again(self, request: HttpRequest, queryset: QuerySet[FinetuneRun]) -> None:
        for old in queryset.select_related("dataset"):
            if old.dataset is None:
                self.message_user(
                    request, f"Run {old.pk}: its dataset was deleted, skipped.", messages.WARNING
                )
                continue
            try:
                run = finetune_run_submit_again(run=old, created_by=request.user)
            except ConfigError as exc:
                self.message_user(request, f"Run {old.pk} not queued again: {exc}", messages.ERROR)
                continue
            if run.status == JobStatus.FAILED:
                self.message_user(request, f"Run {run.pk} failed: {run.error}", messages.ERROR)
            else:
                self.message_user(request, f"Run {run.pk} queued (again of run {old.pk}).", messages.SUCCESS)

    @admin.action(description="Fail runs whose worker stopped sending heartbeats")
    def fail_stale(self, request: HttpRequest, queryset: QuerySet[FinetuneRun]) -> None:
        """An explicit POST; the workers also do this on their own, every few minutes."""
        failed = finetune_runs_fail_stale()
        self.message_user(request, f"{len(failed)} run(s) marked failed (worker lost).", messages.SUCCESS)
