"""Test data for the annotation side, built through the ORM. Model names, paths and the job name are
distinctive strings so blinding tests can search every annotator-facing response for them."""

from __future__ import annotations

from django.utils import timezone

from annotations.campaigns import campaign_create
from annotations.models import Campaign
from generation.models import Answer, Dataset, GenerationJob, JobStatus, ModelSpec, Prompt, Role

SECRET_STRINGS = {
    "pretrained_name": "zebra-base-model-q9x",
    "finetuned_name": "zebra-tuned-model-k7w",
    "base_model": "hub/quokka-1b-xyz",
    "adapter_path": "/srv/adapters/okapi-lora-7731",
    "job_name": "job-narwhal-5521",
}
HOSTILE = "<img src=x onerror=alert(1)> and <script>alert(2)</script>"
# Answer primary keys far from anything else in a test database, so "the id appears" is unambiguous
ANSWER_ID_BASE = 7_340_000


def make_job(
    *,
    prompts: int = 6,
    hostile_prompt: int | None = None,
    dataset_name: str = "reviews",
    status: str = JobStatus.SUCCEEDED,
    with_answers: bool = True,
) -> GenerationJob:
    dataset = Dataset.objects.create(name=dataset_name)
    pre = ModelSpec.objects.create(
        name=SECRET_STRINGS["pretrained_name"] + dataset_name, base_model=SECRET_STRINGS["base_model"]
    )
    ft = ModelSpec.objects.create(
        name=SECRET_STRINGS["finetuned_name"] + dataset_name,
        base_model=SECRET_STRINGS["base_model"],
        adapter_path=SECRET_STRINGS["adapter_path"],
    )
    job = GenerationJob.objects.create(
        name=SECRET_STRINGS["job_name"],
        dataset=dataset,
        pretrained_model=pre,
        finetuned_model=ft,
        status=status,
        total=prompts * 2,
        finished_at=timezone.now(),
    )
    base = ANSWER_ID_BASE + Answer.objects.count() * 10
    for i in range(prompts):
        prompt = Prompt.objects.create(
            dataset=dataset,
            external_id=f"p{i}",
            task="sentiment" if i % 2 else "relevance",
            text=f"Question number {i}: is this review positive?",
            context=f"Review {i}: the battery lasts a day.",
        )
        if not with_answers:
            continue
        for j, role in enumerate((Role.PRETRAINED, Role.FINETUNED)):
            text = f"Answer {i}{'ab'[j]}: it is {'positive' if j else 'negative'}."
            if hostile_prompt == i and role == Role.FINETUNED:
                text = HOSTILE
            Answer.objects.create(
                pk=base + i * 2 + j,
                job=job,
                prompt=prompt,
                role=role,
                text=text,
                worker=f"gpu-worker-{role}",
                device="cuda:0",
                latency_ms=123.0,
            )
    return job


def make_campaign(
    *,
    prompts: int = 6,
    overlap: int = 3,
    guidelines: str = "",
    allow_not_sure: bool = False,
    gold_feedback: bool = False,
    **kwargs,
) -> Campaign:
    """A campaign on a fresh job (see make_job for **kwargs). Like a new campaign made by
    create_campaign, it requires correct/incorrect verdicts unless `allow_not_sure` is set."""
    job = make_job(prompts=prompts, **kwargs)
    return campaign_create(
        job=job,
        name="Spring review campaign",
        overlap=overlap,
        guidelines=guidelines,
        allow_not_sure=allow_not_sure,
        gold_feedback=gold_feedback,
    )


VALID_RATING = {
    "score_left": 4,
    "score_right": 2,
    "correct_left": True,
    "correct_right": False,
    "preference": "left",
    "comment": "clear",
}
