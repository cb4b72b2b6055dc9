"""API shapes for generation jobs (admin only: these carry model names and adapter paths)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import GenerationJob
from .services import LIMITS, job_progress


class JobCreateInput(serializers.Serializer):
    dataset = serializers.CharField(help_text="dataset name or id")
    base_model = serializers.CharField(
        max_length=1000, help_text="hub id, local folder, .gguf path or smollm2-demo"
    )
    gguf_file = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    adapter_path = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    max_new_tokens = serializers.IntegerField(
        required=False,
        default=64,
        min_value=LIMITS["max_new_tokens"][0],
        max_value=LIMITS["max_new_tokens"][1],
    )
    batch_size = serializers.IntegerField(
        required=False, default=16, min_value=LIMITS["batch_size"][0], max_value=LIMITS["batch_size"][1]
    )
    seed = serializers.IntegerField(required=False, default=0)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class JobOutput(serializers.ModelSerializer):
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)
    base_model = serializers.SerializerMethodField()
    gguf_file = serializers.SerializerMethodField()
    adapter_path = serializers.SerializerMethodField()
    done = serializers.SerializerMethodField()
    tokens_per_s = serializers.SerializerMethodField()
    eta_s = serializers.SerializerMethodField()
    fallback = serializers.SerializerMethodField()

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
            "tokens_per_s",
            "eta_s",
            "fallback",
            "base_model",
            "gguf_file",
            "adapter_path",
            "settings",
            "imported",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def _progress(self, job: GenerationJob) -> Any:
        cache = self.context.setdefault("_progress", {})
        if job.pk not in cache:
            cache[job.pk] = job_progress(job)
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
