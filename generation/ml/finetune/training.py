"""The training loop: epochs over the training examples, the validation loss after each, early
stopping after `patience` epochs without improvement, and the best epoch's weights written out with
`training.json` describing how they were made."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from generation.configs import FinetuneConfig

from .data import Example, batches, collate
from .outputs import TRAINING_JSON, device_name, peak_memory, save_trained, versions, write_json
from .params import count_parameters, trainable_share
from .steps import (
    make_optimizer,
    prepare_model,
    restore_state,
    trainable_state,
    training_step,
    validation_loss,
)

# training.json as it is written: JSON values of every kind
Metrics = dict[str, Any]


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
    metrics: Metrics = field(default_factory=dict)


@dataclass
class TrainingResult:
    metrics: Metrics
    model: PreTrainedModel | PeftModel


@dataclass
class _BestEpoch:
    """Early stopping's memory: the best validation loss so far, its epoch and weights, and how many
    epochs have passed since."""

    loss: float = math.inf
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None
    since: int = 0

    def update(self, model: torch.nn.Module, epoch: int, val_loss: float) -> bool:
        """Take the epoch's validation loss; True when it is the best so far (its weights are kept)."""
        if val_loss < self.loss:
            self.loss, self.epoch, self.since = val_loss, epoch, 0
            self.state = trainable_state(model)
            return True
        self.since += 1
        return False


@dataclass
class _Clock:
    """Wall time since the start, and the tokens and seconds spent in training steps alone."""

    device: str
    started: float = field(default_factory=time.perf_counter)
    train_tokens: int = 0
    train_seconds: float = 0.0

    def refresh(self, metrics: Metrics) -> None:
        peak, kind = peak_memory(self.device)
        metrics["peak_memory_bytes"] = peak
        metrics["peak_memory_kind"] = kind
        metrics["wall_seconds"] = round(time.perf_counter() - self.started, 3)
        seconds = self.train_seconds
        metrics["tokens_per_s"] = round(self.train_tokens / seconds, 2) if seconds else None
        metrics["train_tokens"] = self.train_tokens


def train(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train_set: Sequence[Example],
    val_set: Sequence[Example],
    config: FinetuneConfig,
    *,
    device: str,
    stage_dir: Path,
    base_metrics: Metrics,
    on_epoch: Callable[[EpochProgress], None] | None = None,
    evaluate: Callable[[torch.nn.Module, int], float] | None = None,
    on_step: Callable[[], None] | None = None,
) -> TrainingResult:
    """Train with early stopping, restore the best epoch's weights and write them to `stage_dir`.

    `evaluate(model, epoch)` replaces the validation-loss measurement (tests use it to script a
    validation curve); training itself is always real. `training.json` in `stage_dir` is rewritten
    after every epoch so a crashed run still shows how far it got. `on_step` runs after every
    training step (a run's heartbeat). Runs on `config.threads` CPU threads if set; the process's
    thread count is put back afterwards, so a long-lived worker is left as it was."""
    previous = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        clock = _Clock(device)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        random.seed(config.seed)
        torch.manual_seed(config.seed)
        prepared = prepare_model(model, config)
        prepared.to(device)
        metrics = _initial_metrics(prepared, config, train_set, val_set, base_metrics, device)
        best = _run_epochs(
            prepared, tokenizer, train_set, val_set, config, metrics, clock,
            stage_dir=stage_dir, on_epoch=on_epoch, evaluate=evaluate, on_step=on_step,
        )
        assert best.state is not None  # at least one epoch ran with a finite validation loss
        restore_state(prepared, best.state)
        prepared.eval()
        clock.refresh(metrics)
        metrics["status"] = "succeeded"
        base_label = str(base_metrics.get("base_model", ""))
        save_trained(prepared, tokenizer, config, stage_dir, base_label=base_label)
        write_json(stage_dir / TRAINING_JSON, metrics)
        return TrainingResult(metrics, prepared)
    finally:
        torch.set_num_threads(previous)


def _initial_metrics(
    model: torch.nn.Module,
    config: FinetuneConfig,
    train_set: Sequence[Example],
    val_set: Sequence[Example],
    base_metrics: Metrics,
    device: str,
) -> Metrics:
    """training.json before the first epoch: the SPEC keys first, then the run's extras."""
    trainable, all_params = count_parameters(model)
    # the model's own parameters: for LoRA the frozen base, not counting the adapter it gains
    base_params = all_params - trainable if config.mode == "lora" else all_params
    return {
        "mode": config.mode,
        "trainable_params": trainable,
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
        "tokens_per_s_basis": (
            "input tokens (prompt + answer, no padding) of training steps / seconds in training steps"
        ),
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


def _run_epochs(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    train_set: Sequence[Example],
    val_set: Sequence[Example],
    config: FinetuneConfig,
    metrics: Metrics,
    clock: _Clock,
    *,
    stage_dir: Path,
    on_epoch: Callable[[EpochProgress], None] | None,
    evaluate: Callable[[torch.nn.Module, int], float] | None,
    on_step: Callable[[], None] | None,
) -> _BestEpoch:
    """Epochs until `config.epochs` or early stopping, training.json rewritten after each."""
    device = clock.device
    optimizer = make_optimizer(model, config)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stage_dir.mkdir(parents=True, exist_ok=True)

    def measured_validation_loss() -> float:
        return validation_loss(model, val_set, batch_size=config.batch_size, pad_id=pad_id, device=device)

    # the untrained model's validation loss: the yardstick for what training bought
    metrics["val_loss_before_training"] = round(measured_validation_loss(), 6)
    best = _BestEpoch()
    for epoch in range(1, config.epochs + 1):
        train_loss = _train_epoch(model, optimizer, train_set, config, epoch, pad_id, clock, on_step)
        val_loss = float(evaluate(model, epoch)) if evaluate is not None else measured_validation_loss()
        if not math.isfinite(train_loss) or not math.isfinite(val_loss):
            raise FloatingPointError(
                f"loss is not finite in epoch {epoch} (train {train_loss}, val {val_loss})"
            )
        improved = best.update(model, epoch, val_loss)
        metrics["train_loss"].append(round(train_loss, 6))
        metrics["val_loss"].append(round(val_loss, 6))
        if config.keeps(epoch):
            _keep_checkpoint(model, tokenizer, config, stage_dir, epoch, val_loss, metrics)
        metrics["epochs_run"] = epoch
        metrics["best_epoch"] = best.epoch
        metrics["best_val_loss"] = round(best.loss, 6)
        stop = best.since >= config.patience and epoch < config.epochs
        metrics["early_stopped"] = stop
        clock.refresh(metrics)
        write_json(stage_dir / TRAINING_JSON, metrics)
        if on_epoch is not None:
            on_epoch(
                EpochProgress(
                    epoch, config.epochs, train_loss, val_loss, best.epoch, best.loss, improved, dict(metrics)
                )
            )
        if stop:
            break
    return best


CHECKPOINTS_DIR = "epochs"


def _keep_checkpoint(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    config: FinetuneConfig,
    stage_dir: Path,
    epoch: int,
    val_loss: float,
    metrics: Metrics,
) -> None:
    """Write this epoch's weights to `epochs/epoch-NNN` (an adapter a job can use like the best one)
    and list it in training.json's `kept_epochs` with its validation loss."""
    folder = f"{CHECKPOINTS_DIR}/epoch-{epoch:03d}"
    save_trained(model, tokenizer, config, stage_dir / folder, base_label=str(metrics.get("base_model", "")))
    metrics.setdefault("kept_epochs", []).append(
        {"epoch": epoch, "val_loss": round(val_loss, 6), "train_loss": metrics["train_loss"][-1], "folder": folder}
    )


def _train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_set: Sequence[Example],
    config: FinetuneConfig,
    epoch: int,
    pad_id: int,
    clock: _Clock,
    on_step: Callable[[], None] | None,
) -> float:
    """One pass over the training examples in shuffled batches; returns the mean answer-token loss.
    Only the training steps count towards tokens_per_s (their time and their unpadded tokens)."""
    device = clock.device
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
        clock.train_seconds += time.perf_counter() - step_started
        clock.train_tokens += int(batch["attention_mask"].sum().item())
        epoch_loss += loss_sum
        epoch_tokens += n
        if on_step is not None:
            on_step()  # e.g. the run's heartbeat: proof this worker is alive mid-epoch
    return epoch_loss / epoch_tokens if epoch_tokens else math.nan
