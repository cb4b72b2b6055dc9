"""Test data for jobs and campaigns of more than two systems (issue 17), built through the ORM.

`make_systems_job` makes a finished job whose every prompt has an answer from each system: the two
every job has ("pretrained", "finetuned") and further `JobSystem`s (adapters with an epoch and a
validation loss, or imported ones). `make_systems_pairs` lays pairs on it directly (system pairs in
turn within each task), for tests of code that reads pairs without going through `campaign_create`.
"""

from __future__ import annotations

from itertools import combinations

from django.utils import timezone

from annotations.models import Campaign, Pair
from generation.models import Answer, Dataset, GenerationJob, JobSystem, ModelSpec, Prompt

TASKS = ("sentiment", "features", "recommendation", "relevance")


def make_systems_job(
    *,
    prompts: int = 12,
    extra: tuple[tuple[str, str, int | None, float | None], ...] = (
        ("epoch-005", JobSystem.Kind.ADAPTER, 5, 1.40),
        ("outside", JobSystem.Kind.IMPORTED, None, None),
    ),
    dataset_name: str = "systems-set",
    tasks: tuple[str, ...] = TASKS,
) -> GenerationJob:
    """A succeeded job over `prompts` prompts (tasks in turn, labels "positive" on sentiment), with an
    answer from pre-trained, fine-tuned and every (name, kind, epoch, val_loss) in `extra`."""
    dataset = Dataset.objects.create(name=dataset_name)
    pre = ModelSpec.objects.create(name=f"{dataset_name}-base", base_model="hub/base-model")
    ft = ModelSpec.objects.create(
        name=f"{dataset_name}-tuned", base_model="hub/base-model", adapter_path="/srv/adapters/best"
    )
    names = ["pretrained", "finetuned", *(e[0] for e in extra)]
    job = GenerationJob.objects.create(
        name=f"{dataset_name} job",
        dataset=dataset,
        pretrained_model=pre,
        finetuned_model=ft,
        status="succeeded",
        total=prompts * len(names),
        finished_at=timezone.now(),
    )
    for name, kind, epoch, val_loss in extra:
        JobSystem.objects.create(
            job=job,
            name=name,
            kind=kind,
            adapter_path=f"/srv/adapters/{name}" if kind == JobSystem.Kind.ADAPTER else "",
            epoch=epoch,
            val_loss=val_loss,
        )
    for i in range(prompts):
        task = tasks[i % len(tasks)]
        prompt = Prompt.objects.create(
            dataset=dataset,
            external_id=f"q{i}",
            task=task,
            text=f"Question {i} about the review.",
            context=f"Review {i}.",
            label="positive" if task == "sentiment" else "",
        )
        # texts name no system: annotator-facing pages are searched for system names
        Answer.objects.bulk_create(
            Answer(job=job, prompt=prompt, role=name, text=f"Answer {i}.{j}: positive", latency_ms=50.0)
            for j, name in enumerate(names)
        )
    return job


def make_systems_pairs(job: GenerationJob, *, name: str = "systems campaign", overlap: int = 2) -> Campaign:
    """An open campaign on `job` with one pair per prompt, the system pairs taken in turn within each
    task; the earlier system of each pair (job order) is stored as `pretrained_answer`."""
    names = ["pretrained", "finetuned", *job.extra_systems.order_by("id").values_list("name", flat=True)]
    combos = list(combinations(names, 2))
    campaign = Campaign.objects.create(job=job, name=name, overlap=overlap)
    answers = {(a.prompt_id, a.role): a for a in Answer.objects.filter(job=job)}
    seen: dict[str, int] = {}
    for prompt in Prompt.objects.filter(dataset=job.dataset).order_by("id"):
        k = seen.get(prompt.task, 0)
        seen[prompt.task] = k + 1
        a, b = combos[k % len(combos)]
        Pair.objects.create(
            campaign=campaign,
            prompt=prompt,
            pretrained_answer=answers[(prompt.pk, a)],
            finetuned_answer=answers[(prompt.pk, b)],
        )
    return campaign
