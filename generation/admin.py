"""Django admin for datasets, model specs, jobs and their answers.

Actions: on datasets, "Queue a generation job…" opens the job form (/jobs/) with that dataset chosen;
on jobs, "Queue again" makes a new job with the same dataset, models and settings, and "Cancel"."""

from __future__ import annotations

from typing import Any

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
from .services import job_cancel, job_create, job_queue


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
                    batch_size=settings.get("batch_size", 16),
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


@admin.register(FinetuneRun)
class FinetuneRunAdmin(admin.ModelAdmin):
    list_display = ["id", "base_model", "mode", "status", "output_dir", "created_at", "finished_at"]
    list_filter = ["mode", "status"]
