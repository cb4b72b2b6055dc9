"""Django admin for datasets, model specs, jobs and their answers.

Actions: on datasets, "Queue a generation job…" opens the job form (/jobs/) with that dataset chosen;
on jobs, "Queue again" makes a new job with the same dataset, models and settings, and "Cancel".
Fine-tune runs: "Add" is a form that queues a run; "Queue again" and "Fail runs whose worker stopped
sending heartbeats" are actions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from .models import (
    Answer,
    Dataset,
    FinetuneRun,
    GenerationChunk,
    GenerationJob,
    JobStatus,
    ModelLoadAttempt,
    ModelSpec,
    Prompt,
)
from .services import (
    DEFAULT_SETTINGS,
    FINETUNE_OPTION_FIELDS,
    JobInputError,
    finetune_config_build,
    finetune_run_check,
    finetune_run_create,
    finetune_run_queue,
    finetune_runs_fail_stale,
    job_cancel,
    job_create,
    job_queue,
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
    def queue_job(self, request: HttpRequest, queryset: Any) -> HttpResponseRedirect | None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one dataset.", messages.WARNING)
            return None
        return HttpResponseRedirect(f"{reverse('job-list')}?{urlencode({'dataset': queryset.get().name})}")


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["external_id", "dataset", "task", "label"]
    list_filter = ["task", "dataset"]
    search_fields = ["external_id", "text"]


@admin.register(ModelSpec)
class ModelSpecAdmin(admin.ModelAdmin):
    list_display = ["name", "base_model", "gguf_file", "adapter_path", "created_at"]
    search_fields = ["name", "base_model", "adapter_path"]


class ChunkInline(admin.TabularInline):
    model = GenerationChunk
    extra = 0
    can_delete = False
    fields = ["index", "status", "worker", "attempts", "started_at", "finished_at", "error"]
    readonly_fields = fields


class LoadAttemptInline(admin.TabularInline):
    model = ModelLoadAttempt
    extra = 0
    can_delete = False
    fields = ["kind", "target", "success", "from_cache", "seconds", "worker", "error"]
    readonly_fields = fields


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "dataset", "status", "total", "imported", "created_at", "finished_at"]
    list_filter = ["status", "imported"]
    search_fields = ["name"]
    readonly_fields = ["status", "error", "total", "started_at", "finished_at", "created_at", "imported"]
    inlines = [ChunkInline, LoadAttemptInline]
    actions = ["queue_again", "cancel"]

    @admin.action(description="Queue again (same dataset, models and settings)")
    def queue_again(self, request: HttpRequest, queryset: Any) -> None:
        for old in queryset.select_related("dataset", "pretrained_model", "finetuned_model"):
            if old.pretrained_model is None:
                self.message_user(
                    request, f"Job {old.pk} has no model (imported answers): skipped.", messages.WARNING
                )
                continue
            settings = old.settings or {}
            with transaction.atomic():
                job = job_create(
                    dataset=old.dataset,
                    base_model=old.pretrained_model.base_model,
                    gguf_file=old.pretrained_model.gguf_file,
                    adapter_path=old.finetuned_model.adapter_path if old.finetuned_model else "",
                    max_new_tokens=settings.get("max_new_tokens", 64),
                    batch_size=settings.get("batch_size", DEFAULT_SETTINGS["batch_size"]),
                    seed=settings.get("seed", 0),
                    created_by=request.user,
                )
                job_queue(job)
            job.refresh_from_db()
            if job.status == JobStatus.FAILED:
                self.message_user(request, f"Job {job.pk} failed: {job.error}", messages.ERROR)
            else:
                self.message_user(request, f"Job {job.pk} queued ({job.total} answers).", messages.SUCCESS)

    @admin.action(description="Cancel")
    def cancel(self, request: HttpRequest, queryset: Any) -> None:
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


class FinetuneRunAddForm(forms.ModelForm):
    """The admin's "Add fine-tune run" form: what to train and how; saving queues the run."""

    epochs = forms.IntegerField(min_value=1, initial=50)
    patience = forms.IntegerField(min_value=1, initial=10, help_text="epochs without a lower validation loss")
    lr = forms.FloatField(required=False, help_text="learning rate; empty: 2e-4 LoRA, 2e-5 full")
    r = forms.IntegerField(min_value=1, initial=16, label="LoRA r")
    alpha = forms.IntegerField(min_value=1, initial=32, label="LoRA alpha")
    dropout = forms.FloatField(min_value=0, initial=0.05, label="LoRA dropout")
    target_modules = forms.CharField(initial="q_proj,k_proj,v_proj,o_proj")
    batch_size = forms.IntegerField(min_value=1, initial=8)
    max_length = forms.IntegerField(min_value=2, initial=384)
    seed = forms.IntegerField(initial=0)
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
            self.finetune_config = finetune_config_build(
                {k: data.get(k) for k in FINETUNE_OPTION_FIELDS if k in data}
            )
            finetune_run_check(
                dataset=data["dataset"],
                base_model=data.get("base_model", ""),
                output_dir=data.get("output_dir", ""),
            )
        except JobInputError as exc:
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
        "worker",
        "heartbeat_at",
        "created_at",
        "finished_at",
    ]
    list_filter = ["mode", "status"]
    actions = ["queue_again", "fail_stale"]

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = FinetuneRunAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return list(FinetuneRunAddForm.base_fields)
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        return [f.name for f in FinetuneRun._meta.fields]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            return  # a run's record is what happened: nothing to edit
        try:
            run = finetune_run_create(
                dataset=form.cleaned_data["dataset"],
                base_model=form.cleaned_data["base_model"],
                gguf_file=form.cleaned_data.get("gguf_file", ""),
                output_dir=form.cleaned_data["output_dir"],
                config=form.finetune_config,
                created_by=request.user,
            )
        except JobInputError as exc:
            # too late for the form to show it (a race with another run): say it and create nothing
            self.message_user(request, f"Not queued: {exc}", messages.ERROR)
            raise
        obj.pk = run.pk
        obj.refresh_from_db()
        finetune_run_queue(run)

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: Any = None) -> Any:
        obj.refresh_from_db()
        if obj.status == JobStatus.FAILED:
            self.message_user(request, f"Run {obj.pk} failed: {obj.error}", messages.ERROR)
        else:
            self.message_user(request, f"Run {obj.pk} queued.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("run-detail", args=[obj.pk]))

    @admin.action(description="Queue again (same dataset, model, folder and settings)")
    def queue_again(self, request: HttpRequest, queryset: Any) -> None:
        for old in queryset.select_related("dataset"):
            if old.dataset is None:
                self.message_user(
                    request, f"Run {old.pk}: its dataset was deleted, skipped.", messages.WARNING
                )
                continue
            try:
                with transaction.atomic():
                    run = finetune_run_create(
                        dataset=old.dataset,
                        base_model=old.base_model,
                        gguf_file=old.gguf_file,
                        output_dir=old.output_dir,
                        config={k: v for k, v in (old.config or {}).items() if k in FINETUNE_OPTION_FIELDS},
                        created_by=request.user,
                    )
                    finetune_run_queue(run)
            except JobInputError as exc:
                self.message_user(request, f"Run {old.pk} not queued again: {exc}", messages.ERROR)
                continue
            run.refresh_from_db()
            if run.status == JobStatus.FAILED:
                self.message_user(request, f"Run {run.pk} failed: {run.error}", messages.ERROR)
            else:
                self.message_user(request, f"Run {run.pk} queued (again of run {old.pk}).", messages.SUCCESS)

    @admin.action(description="Fail runs whose worker stopped sending heartbeats")
    def fail_stale(self, request: HttpRequest, queryset: Any) -> None:
        failed = finetune_runs_fail_stale()
        self.message_user(request, f"{len(failed)} run(s) marked failed (worker lost).", messages.SUCCESS)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        finetune_runs_fail_stale()
        return super().changelist_view(request, extra_context)
