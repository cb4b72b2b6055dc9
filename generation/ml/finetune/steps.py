"""Model preparation and the training step, shared by the training loop and bench/finetune.py:
LoRA wrapping (or full unfreezing), the optimiser, the answer-only loss, validation, and snapshots of
the trainable weights."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from contextlib import AbstractContextManager

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel

from generation.configs import FinetuneConfig

from .data import Example, FinetuneError, batches, collate


def check_target_modules(model: torch.nn.Module, config: FinetuneConfig) -> None:
    """Refuse LoRA target module names the model does not have, before any training starts."""
    if config.mode != "lora":
        return
    missing = set(config.target_modules) - {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    if missing:
        raise FinetuneError(f"target modules not found in the model: {', '.join(sorted(missing))}")


def prepare_model(model: PreTrainedModel, config: FinetuneConfig) -> PreTrainedModel | PeftModel:
    """Wrap with LoRA (or unfreeze everything for full fine-tuning) and switch to training mode."""
    prepared: PreTrainedModel | PeftModel = model
    if config.mode == "lora":
        check_target_modules(model, config)
        lora = LoraConfig(
            r=config.r,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=list(config.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        prepared = get_peft_model(model, lora)
    else:
        for param in model.parameters():
            param.requires_grad_(True)
    if config.gradient_checkpointing:
        prepared.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if getattr(prepared, "config", None) is not None:
        prepared.config.use_cache = False
    prepared.train()
    return prepared


def make_optimizer(model: torch.nn.Module, config: FinetuneConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def autocast_context(device: str) -> AbstractContextManager[None]:
    """bf16 autocast on CUDA (fp32 master weights stay in the optimizer); plain fp32 on CPU."""
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def answer_loss_sum(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], device: str
) -> tuple[torch.Tensor, int]:
    """(sum of token cross-entropies over answer tokens, number of answer tokens) for one batch.

    Logits are computed only at positions where some row predicts an answer token: the vocabulary
    projection of prompt positions (most of each example) would be thrown away by the loss anyway.
    A 1-D `logits_to_keep` (positions shared by the batch) works across transformers versions."""
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


def training_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor], device: str
) -> tuple[float, int]:
    """One optimiser step on the mean answer-token loss; returns (loss sum, answer tokens)."""
    optimizer.zero_grad(set_to_none=True)
    loss_sum, n_tokens = answer_loss_sum(model, batch, device)
    if n_tokens == 0:
        return 0.0, 0
    (loss_sum / n_tokens).backward()
    optimizer.step()
    return float(loss_sum.item()), n_tokens


def validation_loss(
    model: torch.nn.Module, examples: Sequence[Example], *, batch_size: int, pad_id: int, device: str
) -> float:
    """Mean cross-entropy per answer token over the validation examples."""
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


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of the trainable tensors: enough to restore the best epoch later."""
    return {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters() if p.requires_grad}


def restore_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor.to(params[name].device))
