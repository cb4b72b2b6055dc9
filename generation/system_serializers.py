"""API shapes for a job's systems (issue 17): a further system as `POST /api/jobs/` takes it, and every
system of a job as `GET /api/jobs/` and `GET /api/jobs/{id}/` show it (admins only: adapter paths)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .job_systems import NAME_LENGTH
from .models import GenerationJob
from .selectors import jobs_systems


class JobSystemInput(serializers.Serializer):
    """One further system: another adapter on the job's base, its answers named `name`. The name and
    the folder are checked by generation.job_systems when the job is made (a 400 naming `systems`)."""

    name = serializers.CharField(
        max_length=NAME_LENGTH, help_text='a slug, not "pretrained" or "finetuned", unique in the job'
    )
    adapter_path = serializers.CharField(max_length=1000, help_text="a peft adapter folder on the workers")


class JobSystemOutput(serializers.Serializer):
    """One system of a job (generation.selectors.SystemRow)."""

    name = serializers.CharField(help_text='"pretrained", "finetuned" or the system\'s own name')
    kind = serializers.ChoiceField(choices=["base", "adapter", "imported"])
    adapter_path = serializers.CharField(help_text="empty for the base and for imported answers")
    epoch = serializers.IntegerField(allow_null=True, help_text="the fine-tuning epoch, when known")
    val_loss = serializers.FloatField(allow_null=True, help_text="that epoch's validation loss")
    answers = serializers.IntegerField(help_text="answers made so far")
    fallback = serializers.IntegerField(help_text="of those, answered by the base (adapter unusable)")


def systems_data(serializer: serializers.Serializer, job: GenerationJob) -> list[dict[str, Any]]:
    """`JobSystemOutput` of every system of `job`, for a serializer field of a job: a page of the job
    list reads the systems of all its jobs at once (two queries), not two queries per job."""
    known = serializer.context.setdefault("_systems", {})
    if job.pk not in known:
        page = getattr(serializer.parent, "instance", None)
        known.update(jobs_systems(list(page) if page is not None else [job]))
    return JobSystemOutput(known[job.pk], many=True).data
