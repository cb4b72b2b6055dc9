"""Helpers for the generation tests: small datasets and running a job's chunks in this process."""

from __future__ import annotations

from generation.configs import GenerationSettings
from generation.models import Dataset, GenerationJob, Prompt

REVIEWS = [
    (
        "sentiment",
        "What is the sentiment of this review?",
        "The blender is loud and broke after a week.",
        "negative",
    ),
    (
        "sentiment",
        "Is this review positive or negative?",
        "I love the sound quality of these headphones.",
        "positive",
    ),
    ("recommendation", "Would you recommend it?", "The tent leaks in the rain and the zipper is weak.", "no"),
    (
        "features",
        "Which features does the reviewer mention?",
        "Light, quiet and cheap; the design is nice.",
        "",
    ),
    (
        "relevance",
        "Is the battery good?",
        "The battery life of this phone is great and the screen is bright.",
        "",
    ),
]


def make_dataset(name: str = "shop", n: int = 5) -> Dataset:
    dataset = Dataset.objects.create(name=name)
    Prompt.objects.bulk_create(
        [
            Prompt(
                dataset=dataset,
                external_id=f"p{i}",
                task=REVIEWS[i % len(REVIEWS)][0],
                text=REVIEWS[i % len(REVIEWS)][1],
                context=REVIEWS[i % len(REVIEWS)][2],
                label=REVIEWS[i % len(REVIEWS)][3],
            )
            for i in range(n)
        ]
    )
    return dataset


def run_job_here(job: GenerationJob, runtime=None) -> GenerationJob:
    """What a worker does, in this process: every chunk of the job, in order, with one WorkerRuntime
    (a fresh one unless given: models loaded by an earlier test are not reused)."""
    from generation.worker.chunks import chunk_run
    from generation.worker.runtime import WorkerRuntime

    runtime = runtime or WorkerRuntime()
    for chunk_id in job.chunks.order_by("index").values_list("id", flat=True):
        chunk_run(chunk_id=chunk_id, runtime=runtime)
    job.refresh_from_db()
    return job


def run_two_prompt_job(base_dir, adapter_dir, runtime=None) -> GenerationJob:
    """A two-prompt job (5 new tokens, batches of 2) of `base_dir` and `adapter_dir`, run here as the
    workers run it (EVALSITE_* settings apply)."""
    from generation.jobs import job_create

    job = job_create(
        dataset=make_dataset(n=2), base_model=str(base_dir), adapter_path=str(adapter_dir),
        settings=GenerationSettings(max_new_tokens=5, batch_size=2),
    )
    return run_job_here(job, runtime)
