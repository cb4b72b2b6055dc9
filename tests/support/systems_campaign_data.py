"""A job of more than two systems whose every name, path and id is a distinctive string, for the
blinding tests of campaigns of K systems (issue 17): built on annotation_data.make_job (secret model
names, base model, adapter path, job name), plus further systems with secret names and adapter paths.
Answer texts name no system, so any system name found in a response leaked from somewhere else."""

from __future__ import annotations

from generation.models import Answer, GenerationJob, JobSystem, Prompt
from tests.support.annotation_data import make_job

SECRET_SYSTEMS = {
    "walrus-epoch-0413": (JobSystem.Kind.ADAPTER, "/srv/adapters/tapir-lora-9917", 13, 1.21),
    "imported-ibis-77": (JobSystem.Kind.IMPORTED, "", None, None),
}
# far from annotation_data's answer ids, and from one another per job
EXTRA_ANSWER_ID_BASE = 8_460_000


def make_secret_systems_job(*, prompts: int = 6, dataset_name: str = "reviews-k") -> GenerationJob:
    """make_job's finished two-system job plus the SECRET_SYSTEMS, each with an answer to every prompt
    (neutral texts, ids from EXTRA_ANSWER_ID_BASE up)."""
    job = make_job(prompts=prompts, dataset_name=dataset_name)
    base = EXTRA_ANSWER_ID_BASE + Answer.objects.filter(pk__gte=EXTRA_ANSWER_ID_BASE).count() * 10
    for s, (name, (kind, path, epoch, val_loss)) in enumerate(SECRET_SYSTEMS.items()):
        JobSystem.objects.create(
            job=job, name=name, kind=kind, adapter_path=path, epoch=epoch, val_loss=val_loss
        )
        for i, prompt in enumerate(Prompt.objects.filter(dataset=job.dataset).order_by("id")):
            Answer.objects.create(
                pk=base + i * len(SECRET_SYSTEMS) + s,
                job=job,
                prompt=prompt,
                role=name,
                text=f"Answer {i}{'cd'[s]}: it is {'mixed' if s else 'unclear'}.",
                latency_ms=99.0,
            )
    GenerationJob.objects.filter(pk=job.pk).update(total=prompts * (2 + len(SECRET_SYSTEMS)))
    return job
