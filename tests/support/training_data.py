"""Review prompts with reference answers, for the fine-tuning tests (the training core in tests/ml and
the runs on the worker in tests/worker)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from generation.configs import FinetuneConfig
from generation.models import Dataset, Prompt

REVIEWS = [
    (
        "The blender is loud and broke after a week.",
        "What is the sentiment?",
        "Negative. It broke after a week.",
    ),
    ("I love the sound quality of these headphones.", "What is the sentiment?", "Positive. Great sound."),
    ("The tent leaks in the rain and the zipper is weak.", "Would you recommend it?", "No. The tent leaks."),
    ("This kettle boils water quickly.", "Would you recommend it?", "Yes. It is quick."),
    ("The phone battery lasts two days and the screen is bright.", "Which features?", "battery, screen"),
]


def review_fields(n: int, *, references: bool = True) -> list[dict[str, str]]:
    """The fields of n review prompts, REVIEWS over and over."""
    return [
        {
            "external_id": f"p{i:03d}",
            "task": "sentiment",
            "context": REVIEWS[i % 5][0],
            "text": REVIEWS[i % 5][1],
            "reference": REVIEWS[i % 5][2] if references else "",
        }
        for i in range(n)
    ]


def review_prompts(n: int) -> list[SimpleNamespace]:
    """Review prompts as plain objects: what the training core reads of a Prompt row."""
    return [SimpleNamespace(**fields) for fields in review_fields(n)]


def make_review_dataset(name: str = "reviews", n: int = 20, *, references: bool = True) -> Dataset:
    """A Dataset of n review prompts (references optional)."""
    dataset = Dataset.objects.create(name=name)
    Prompt.objects.bulk_create(
        Prompt(dataset=dataset, **fields) for fields in review_fields(n, references=references)
    )
    return dataset


def tiny_config(**overrides) -> FinetuneConfig:
    """A fine-tuning config small enough for the tiny model on a shared CPU."""
    values = {
        "epochs": 3,
        "patience": 2,
        "batch_size": 4,
        "max_length": 128,
        "lr": 5e-3,
        "device": "cpu",
        "seed": 0,
        "threads": 1,  # oversubscribed threads on a shared CPU made these tiny runs up to 10x slower
    }
    values.update(overrides)
    return FinetuneConfig(**values)


def lora_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
