"""Helpers for the tests that call the worker's engine directly (no database)."""

from __future__ import annotations

from pathlib import Path

from generation.ml import engine
from generation.ml.loading import LoadedModel, ModelHost
from generation.ml.modeling import resolve_base

# prompt texts for tests that call the worker's engine directly (no database)
ENGINE_PROMPTS = [
    "What is the sentiment of this review? The blender is loud and broke after a week.",
    "Would you recommend it? The tent leaks in the rain.",
    "Which features does the reviewer mention? Light, quiet and cheap.",
    "Is the battery good?",
    "Positive or negative? I love the sound quality of these headphones.",
]

Answers = dict[tuple[int, str], tuple[str, int, int]]


def engine_answers(
    host: ModelHost, base_dir: Path, adapter_dir: Path, *, max_new_tokens: int = 12, batch_size: int = 3
) -> tuple[LoadedModel, Answers]:
    """Both roles' answers to ENGINE_PROMPTS from the worker's engine on CPU, with the model and
    adapter loaded by `host` as a worker loads them (EVALSITE_* settings apply): the loaded entry, and
    (prompt index, role) -> (text, output tokens, prompt tokens)."""
    # a transformers folder: nothing is converted into the model cache folder
    ref = resolve_base(str(base_dir), model_dir=Path(base_dir).parent)
    entry, _ = host.load_base(ref, device="cpu")
    name, _ = host.load_adapter(entry, str(adapter_dir))
    requests = [
        engine.Request(key=(n, role), prompt_text=text, adapter=name if role == "finetuned" else None)
        for n, text in enumerate(ENGINE_PROMPTS)
        for role in ("pretrained", "finetuned")
    ]
    answers: Answers = {}
    for results in engine.generate(entry, requests, max_new_tokens=max_new_tokens, batch_size=batch_size):
        answers.update({r.key: (r.text, r.output_tokens, r.prompt_tokens) for r in results})
    return entry, answers
