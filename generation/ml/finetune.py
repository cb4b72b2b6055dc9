"""LoRA (or full) fine-tuning of a causal LM on the prompts of a Dataset, with early stopping.

Each example is the exact chat-formatted input that generation feeds the model
(`prompting.render_prompt`) followed by the prompt's `reference` and the end-of-sequence token; the
loss counts the answer tokens only. Prompts are split once, deterministically by seed, into training
and validation; each epoch trains on the training part and measures the validation loss, and the run
stops after `patience` epochs without improvement. The adapter (or model) written at the end is the
one from the best epoch, with `training.json` describing how it was made.

Only worker-side code (management command, Celery task, bench) imports this module: it pulls in torch.
The training core (everything above `finetune_run_execute`) needs no Django, so bench/finetune.py
runs on a GPU machine that has only torch, transformers and peft.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import random
import resource
import shutil
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generation.ml.prompting import render_prompt

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
DEFAULT_LR = {"lora": 2e-4, "full": 2e-5}
TRAINING_JSON = "training.json"

# The keys SPEC.md fixes for training.json; everything else in it is an extra.
SPEC_KEYS = (
    "mode",
    "trainable_params",
    "total_params",
    "trainable_pct",
    "epochs_run",
    "best_epoch",
    "early_stopped",
    "train_loss",
    "val_loss",
    "peak_memory_bytes",
    "wall_seconds",
    "tokens_per_s",
    "seed",
    "lora",
)


class FinetuneError(Exception):
    """The inputs of a fine-tuning run are unusable; the message says what is wrong, on one line."""


@dataclass
class FinetuneConfig:
    mode: str = "lora"  # "lora" or "full"
    epochs: int = 50
    patience: int = 10
    lr: float | None = None  # None: DEFAULT_LR[mode]
    batch_size: int = 8
    max_length: int = 384
    seed: int = 0
    val_fraction: float = 0.1
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES
    gradient_checkpointing: bool = False
    max_examples: int | None = None
    weight_decay: float = 0.0
    device: str | None = None  # None: cuda when available, else cpu
    # CPU threads for torch; None keeps torch's default. On a CPU shared with other work, 1 thread
    # can be several times faster than oversubscribed threads that wait on each other.
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in DEFAULT_LR:
            raise FinetuneError(f"unknown mode {self.mode!r}: use 'lora' or 'full'")
        self.target_modules = tuple(self.target_modules)
        checks = [
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.patience >= 1, "--patience must be at least 1"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.max_length >= 2, "--max-length must be at least 2"),
            (0 < self.val_fraction < 1, "--val-fraction must be between 0 and 1 (exclusive)"),
            (self.r >= 1, "--r must be at least 1"),
            (0 <= self.dropout < 1, "--dropout must be in [0, 1)"),
            (bool(self.target_modules), "--target-modules must name at least one module"),
            (self.max_examples is None or self.max_examples >= 2, "--max-examples must be at least 2"),
            (self.lr is None or self.lr > 0, "--lr must be positive"),
            (self.threads is None or self.threads >= 1, "--threads must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise FinetuneError(message)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.mode]

    def lora_dict(self) -> dict[str, Any] | None:
        if self.mode != "lora":
            return None
        return {
            "r": self.r,
            "alpha": self.alpha,
            "dropout": self.dropout,
            "target_modules": list(self.target_modules),
            "bias": "none",
        }

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["target_modules"] = list(self.target_modules)
        data["lr"] = self.learning_rate
        return data


@dataclass(frozen=True)
class Example:
    external_id: str
    input_ids: list[int]
    labels: list[int]  # -100 on the prompt part: the loss counts answer tokens only

    @property
    def answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != -100)


@dataclass
class EpochProgress:
    """What the `on_epoch` hook receives after every epoch (a Celery task can report it)."""

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    best_epoch: int
    best_val_loss: float
    improved: bool
    metrics: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Parameter counting


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, all) parameter counts of a model as it stands; tied weights are counted once."""
    trainable = total = 0
    for param in model.parameters():  # parameters() yields a shared (tied) tensor once
        n = param.numel()
        total += n
        if param.requires_grad:
            trainable += n
    return trainable, total


def lora_param_count(model: Any, r: int, target_modules: Iterable[str]) -> int:
    """Σ r·(in + out) over the Linear layers a LoRA config with these target names would wrap."""
    import torch

    targets = set(target_modules)
    count = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets:
            count += r * (module.in_features + module.out_features)
    return count


def count_lora_params(
    config: Any, r: int = 16, target_modules: Iterable[str] = DEFAULT_TARGET_MODULES
) -> int:
    """LoRA trainable parameters, Σ r·(in + out), for a model *config*, without allocating weights.

    The model is built on the meta device, so this works for billion-parameter configs in milliseconds."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return lora_param_count(model, r, target_modules)


def trainable_share(trainable: int, total: int) -> float:
    """Percentage of trainable parameters, to 4 decimals (0.4096, never a rounder 0.41 or 0.1)."""
    return round(100.0 * trainable / total, 4) if total else 0.0


# ---------------------------------------------------------------------------------------------
# Data


def build_examples(
    tokenizer: Any, prompts: Sequence[Any], max_length: int
) -> tuple[list[Example], dict[str, int]]:
    """Tokenise prompts with a reference into (input, answer) examples of at most max_length tokens.

    Long examples are cut at the end (the answer loses its tail); an example whose prompt alone
    fills max_length has no answer token left and is dropped. Returns (examples, counts)."""
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
    digest = hashlib.sha256()
    for split, items in (("train", train), ("val", val)):
        for ex in items:
            digest.update(json.dumps([split, ex.external_id, ex.input_ids, ex.labels]).encode())
            digest.update(b"\n")
    return digest.hexdigest()


def collate(examples: Sequence[Example], pad_id: int, device: str) -> dict[str, Any]:
    """Right-padded batch; padding is masked out of attention and loss."""
    import torch

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


# ---------------------------------------------------------------------------------------------
# Model preparation and the training step (shared with bench/finetune.py)


def check_target_modules(model: Any, config: FinetuneConfig) -> None:
    if config.mode != "lora":
        return
    missing = set(config.target_modules) - {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    if missing:
        raise FinetuneError(f"target modules not found in the model: {', '.join(sorted(missing))}")


def prepare_model(model: Any, config: FinetuneConfig) -> Any:
    """Wrap with LoRA (or unfreeze everything for full fine-tuning) and switch to training mode."""
    if config.mode == "lora":
        from peft import LoraConfig, get_peft_model

        check_target_modules(model, config)
        lora = LoraConfig(
            r=config.r,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=list(config.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    else:
        for param in model.parameters():
            param.requires_grad_(True)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if getattr(model, "config", None) is not None:
        model.config.use_cache = False
    model.train()
    return model


def make_optimizer(model: Any, config: FinetuneConfig) -> Any:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def autocast_context(device: str) -> Any:
    """bf16 autocast on CUDA (fp32 master weights stay in the optimizer); plain fp32 on CPU."""
    import contextlib

    import torch

    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def answer_loss_sum(model: Any, batch: dict[str, Any], device: str) -> tuple[Any, int]:
    """(sum of token cross-entropies over answer tokens, number of answer tokens) for one batch.

    Logits are computed only at positions where some row predicts an answer token: the vocabulary
    projection of prompt positions (most of each example) would be thrown away by the loss anyway.
    A 1-D `logits_to_keep` (positions shared by the batch) works across transformers versions."""
    import torch

    labels = batch["labels"]
    targets_next = labels[:, 1:]  # position p predicts token p + 1
    needed = (targets_next != -100).any(dim=0).nonzero().squeeze(1)
    n_tokens = int((targets_next != -100).sum().item())
    if n_tokens == 0:
        return torch.zeros((), device=labels.device), 0
    with autocast_context(device):
        logits = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            logits_to_keep=needed,
        ).logits  # (batch, len(needed), vocab)
    targets = targets_next[:, needed]
    loss_sum = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-100, reduction="sum"
    )
    return loss_sum, n_tokens


def training_step(model: Any, optimizer: Any, batch: dict[str, Any], device: str) -> tuple[float, int]:
    """One optimiser step on the mean answer-token loss; returns (loss sum, answer tokens)."""
    optimizer.zero_grad(set_to_none=True)
    loss_sum, n_tokens = answer_loss_sum(model, batch, device)
    if n_tokens == 0:
        return 0.0, 0
    (loss_sum / n_tokens).backward()
    optimizer.step()
    return float(loss_sum.item()), n_tokens


def validation_loss(
    model: Any, examples: Sequence[Example], *, batch_size: int, pad_id: int, device: str
) -> float:
    """Mean cross-entropy per answer token over the validation examples."""
    import torch

    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    try:
        with torch.no_grad():
            for group in batches(examples, batch_size, shuffle_seed=None):
                loss_sum, n = answer_loss_sum(model, collate(group, pad_id, device), device)
                total += float(loss_sum.item())
                tokens += n
    finally:
        model.train(was_training)
    return total / tokens if tokens else math.nan


def trainable_state(model: Any) -> dict[str, Any]:
    """CPU copies of the trainable tensors: enough to restore the best epoch later."""
    return {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters() if p.requires_grad}


def restore_state(model: Any, state: dict[str, Any]) -> None:
    import torch

    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor.to(params[name].device))


# ---------------------------------------------------------------------------------------------
# Measurements


def peak_memory(device: str) -> tuple[int, str]:
    """(bytes, kind): CUDA's peak allocated memory on a GPU, the process's peak RSS on a CPU."""
    import torch

    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated()), "cuda_max_memory_allocated"
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return int(rss_kb) * 1024, "process_peak_rss"


def versions() -> dict[str, str]:
    import peft
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({os.cpu_count()} cores visible, {torch.get_num_threads()} torch threads)"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# The training loop


@dataclass
class TrainingResult:
    metrics: dict[str, Any]
    model: Any


def train(
    model: Any,
    tokenizer: Any,
    train_set: Sequence[Example],
    val_set: Sequence[Example],
    config: FinetuneConfig,
    **kwargs: Any,
) -> TrainingResult:
    """Train with early stopping (see `_train`), on `config.threads` CPU threads if set; the process's
    thread count is put back afterwards, so a long-lived worker is left as it was."""
    import torch

    previous = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _train(model, tokenizer, train_set, val_set, config, **kwargs)
    finally:
        torch.set_num_threads(previous)


def _train(
    model: Any,
    tokenizer: Any,
    train_set: Sequence[Example],
    val_set: Sequence[Example],
    config: FinetuneConfig,
    *,
    device: str,
    stage_dir: Path,
    base_metrics: dict[str, Any],
    on_epoch: Callable[[EpochProgress], None] | None = None,
    evaluate: Callable[[Any, int], float] | None = None,
    on_step: Callable[[], None] | None = None,
) -> TrainingResult:
    """Train with early stopping, restore the best epoch's weights and write them to `stage_dir`.

    `evaluate(model, epoch)` replaces the validation-loss measurement (tests use it to script a
    validation curve); training itself is always real. `training.json` in `stage_dir` is rewritten
    after every epoch so a crashed run still shows how far it got."""
    import torch

    started = time.perf_counter()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    model = prepare_model(model, config)
    model.to(device)
    trainable, all_params = count_parameters(model)
    if config.mode == "lora":
        base_params = all_params - trainable
    else:
        base_params = all_params
    optimizer = make_optimizer(model, config)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    metrics: dict[str, Any] = {
        "mode": config.mode,
        "trainable_params": trainable,
        # the model's own parameters: for LoRA the frozen base, not counting the adapter it gains
        "total_params": base_params,
        "trainable_pct": trainable_share(trainable, base_params),
        "epochs_run": 0,
        "best_epoch": None,
        "early_stopped": False,
        "train_loss": [],
        "val_loss": [],
        "peak_memory_bytes": None,
        "wall_seconds": None,
        "tokens_per_s": None,
        "seed": config.seed,
        "lora": config.lora_dict(),
        **base_metrics,
        "params_with_adapter": all_params,
        "peak_memory_kind": None,
        "tokens_per_s_basis": "input tokens (prompt + answer, no padding) of training steps / seconds in training steps",
        "train_examples": len(train_set),
        "val_examples": len(val_set),
        "train_answer_tokens": sum(ex.answer_tokens for ex in train_set),
        "val_answer_tokens": sum(ex.answer_tokens for ex in val_set),
        "loss": "mean cross-entropy per answer token (prompt tokens masked with -100)",
        "config": config.as_dict(),
        "device": device_name(device),
        "versions": versions(),
        "status": "running",
    }
    stage_dir.mkdir(parents=True, exist_ok=True)
    # the untrained model's validation loss: the yardstick for what training bought
    metrics["val_loss_before_training"] = round(
        validation_loss(model, val_set, batch_size=config.batch_size, pad_id=pad_id, device=device), 6
    )

    best_val = math.inf
    best_epoch = 0
    best_state: dict[str, Any] | None = None
    since_best = 0
    train_tokens = 0
    train_seconds = 0.0

    def refresh_measurements() -> None:
        peak, kind = peak_memory(device)
        metrics["peak_memory_bytes"] = peak
        metrics["peak_memory_kind"] = kind
        metrics["wall_seconds"] = round(time.perf_counter() - started, 3)
        metrics["tokens_per_s"] = round(train_tokens / train_seconds, 2) if train_seconds else None
        metrics["train_tokens"] = train_tokens

    for epoch in range(1, config.epochs + 1):
        model.train()
        epoch_loss, epoch_tokens = 0.0, 0
        for group in batches(train_set, config.batch_size, shuffle_seed=config.seed * 100_003 + epoch):
            batch = collate(group, pad_id, device)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            step_started = time.perf_counter()
            loss_sum, n = training_step(model, optimizer, batch, device)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            train_seconds += time.perf_counter() - step_started
            train_tokens += int(batch["attention_mask"].sum().item())
            epoch_loss += loss_sum
            epoch_tokens += n
            if on_step is not None:
                on_step()  # e.g. the run's heartbeat: proof this worker is alive mid-epoch
        train_loss = epoch_loss / epoch_tokens if epoch_tokens else math.nan
        if evaluate is not None:
            val_loss = float(evaluate(model, epoch))
        else:
            val_loss = validation_loss(
                model, val_set, batch_size=config.batch_size, pad_id=pad_id, device=device
            )
        if not math.isfinite(train_loss) or not math.isfinite(val_loss):
            raise FloatingPointError(
                f"loss is not finite in epoch {epoch} (train {train_loss}, val {val_loss})"
            )

        improved = val_loss < best_val
        if improved:
            best_val, best_epoch, since_best = val_loss, epoch, 0
            best_state = trainable_state(model)
        else:
            since_best += 1
        metrics["train_loss"].append(round(train_loss, 6))
        metrics["val_loss"].append(round(val_loss, 6))
        metrics["epochs_run"] = epoch
        metrics["best_epoch"] = best_epoch
        metrics["best_val_loss"] = round(best_val, 6)
        stop = since_best >= config.patience and epoch < config.epochs
        metrics["early_stopped"] = stop
        refresh_measurements()
        _write_json(stage_dir / TRAINING_JSON, metrics)
        if on_epoch is not None:
            on_epoch(
                EpochProgress(
                    epoch, config.epochs, train_loss, val_loss, best_epoch, best_val, improved, dict(metrics)
                )
            )
        if stop:
            break

    assert best_state is not None  # at least one epoch ran with a finite validation loss
    restore_state(model, best_state)
    model.eval()
    refresh_measurements()
    metrics["status"] = "succeeded"
    save_trained(model, tokenizer, config, stage_dir, base_label=str(base_metrics.get("base_model", "")))
    _write_json(stage_dir / TRAINING_JSON, metrics)
    return TrainingResult(metrics, model)


def save_trained(
    model: Any, tokenizer: Any, config: FinetuneConfig, folder: Path, *, base_label: str
) -> None:
    if config.mode == "lora":
        if base_label:
            # the base as the user named it, not this machine's cache folder
            for peft_config in model.peft_config.values():
                peft_config.base_model_name_or_path = base_label
        model.save_pretrained(str(folder))
    else:
        model.config.use_cache = True
        model.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))


__all__ = [
    "DEFAULT_TARGET_MODULES",
    "SPEC_KEYS",
    "EpochProgress",
    "Example",
    "FinetuneConfig",
    "FinetuneError",
    "build_examples",
    "count_lora_params",
    "count_parameters",
    "lora_param_count",
    "prepare_model",
    "split_examples",
    "train",
    "trainable_share",
    "training_step",
]
