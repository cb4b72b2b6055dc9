"""Fine-tuning data: prompts with a reference answer as tokenised examples, the train/validation
split, batches of similar length and their tensors."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import PreTrainedTokenizerBase

from generation.ml.prompting import PromptLike, render_prompt


class FinetuneError(Exception):
    """The inputs of a fine-tuning run (its data or model) are unusable; the message says what is
    wrong, on one line. Bad option values raise generation.configs.ConfigError instead."""


class TrainingPrompt(PromptLike, Protocol):
    """What a prompt needs to become an example (a generation.models.Prompt row qualifies)."""

    external_id: str
    reference: str


@dataclass(frozen=True)
class Example:
    external_id: str
    input_ids: list[int]
    labels: list[int]  # -100 on the prompt part: the loss counts answer tokens only

    @property
    def answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != -100)


def build_examples(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[TrainingPrompt], max_length: int
) -> tuple[list[Example], dict[str, int]]:
    """Tokenise prompts with a reference into (input, answer) examples of at most max_length tokens.

    Each example is the exact chat-formatted input that generation feeds the model (`render_prompt`)
    followed by the reference and the end-of-sequence token. Long examples are cut at the end (the
    answer loses its tail); an example whose prompt alone fills max_length has no answer token left
    and is dropped. Returns (examples, counts)."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise FinetuneError("the tokenizer has no end-of-sequence token; cannot mark where answers end")
    # A chat template already writes its own special tokens; adding BOS again would change the input.
    add_special = not getattr(tokenizer, "chat_template", None)
    examples: list[Example] = []
    counts = {"truncated": 0, "dropped_too_long": 0}
    for prompt in prompts:
        prompt_ids = tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=add_special)["input_ids"]
        answer_ids = tokenizer(prompt.reference.strip(), add_special_tokens=False)["input_ids"] + [eos]
        if len(prompt_ids) >= max_length:
            counts["dropped_too_long"] += 1
            continue
        ids = prompt_ids + answer_ids
        labels = [-100] * len(prompt_ids) + answer_ids
        if len(ids) > max_length:
            counts["truncated"] += 1
            ids, labels = ids[:max_length], labels[:max_length]
        examples.append(Example(str(prompt.external_id), ids, labels))
    return examples, counts


def split_examples(
    examples: Sequence[Example], val_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Deterministic train/validation split: the same examples and seed always give the same split."""
    if len(examples) < 2:
        raise FinetuneError(
            f"need at least 2 usable examples to split into training and validation, got {len(examples)}"
        )
    ordered = sorted(examples, key=lambda ex: ex.external_id)  # independent of the order rows came in
    positions = list(range(len(ordered)))
    random.Random(seed).shuffle(positions)
    n_val = min(len(ordered) - 1, max(1, round(len(ordered) * val_fraction)))
    val = [ordered[i] for i in sorted(positions[:n_val])]
    train = [ordered[i] for i in sorted(positions[n_val:])]
    return train, val


def data_hash(train: Sequence[Example], val: Sequence[Example]) -> str:
    """A SHA-256 of the split examples: two runs trained on the same data have the same hash."""
    digest = hashlib.sha256()
    for split, items in (("train", train), ("val", val)):
        for ex in items:
            digest.update(json.dumps([split, ex.external_id, ex.input_ids, ex.labels]).encode())
            digest.update(b"\n")
    return digest.hexdigest()


def collate(examples: Sequence[Example], pad_id: int, device: str) -> dict[str, torch.Tensor]:
    """Right-padded batch; padding is masked out of attention and loss."""
    width = max(len(ex.input_ids) for ex in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, ex in enumerate(examples):
        n = len(ex.input_ids)
        input_ids[row, :n] = torch.tensor(ex.input_ids)
        labels[row, :n] = torch.tensor(ex.labels)
        mask[row, :n] = 1
    return {"input_ids": input_ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device)}


def batches(examples: Sequence[Example], batch_size: int, *, shuffle_seed: int | None) -> list[list[Example]]:
    """Batches of similar length (less padding to compute on); with a seed, shuffled in two places:
    which examples share a window of 8 batches, and the order batches come in."""
    order = list(range(len(examples)))
    if shuffle_seed is None:
        return [[examples[i] for i in order[k : k + batch_size]] for k in range(0, len(order), batch_size)]
    rng = random.Random(shuffle_seed)
    rng.shuffle(order)
    window = batch_size * 8
    grouped: list[list[Example]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(examples[i].input_ids))
        grouped.extend(
            [examples[i] for i in chunk[k : k + batch_size]] for k in range(0, len(chunk), batch_size)
        )
    rng.shuffle(grouped)
    return grouped
