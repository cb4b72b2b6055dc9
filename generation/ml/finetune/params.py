"""Counting parameters: what a model trains, what it holds, and what a LoRA config would add."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers import AutoModelForCausalLM, PretrainedConfig

from generation.configs import DEFAULT_TARGET_MODULES


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, all) parameter counts of a model as it stands; tied weights are counted once."""
    trainable = total = 0
    for param in model.parameters():  # parameters() yields a shared (tied) tensor once
        n = param.numel()
        total += n
        if param.requires_grad:
            trainable += n
    return trainable, total


def lora_param_count(model: torch.nn.Module, r: int, target_modules: Iterable[str]) -> int:
    """Σ r·(in + out) over the Linear layers a LoRA config with these target names would wrap."""
    targets = set(target_modules)
    count = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets:
            count += r * (module.in_features + module.out_features)
    return count


def count_lora_params(
    config: PretrainedConfig, r: int = 16, target_modules: Iterable[str] = DEFAULT_TARGET_MODULES
) -> int:
    """LoRA trainable parameters, Σ r·(in + out), for a model *config*, without allocating weights.

    The model is built on the meta device, so this works for billion-parameter configs."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return lora_param_count(model, r, target_modules)


def trainable_share(trainable: int, total: int) -> float:
    """Percentage of trainable parameters, to 4 decimals (0.4096, never a rounder 0.41 or 0.1)."""
    return round(100.0 * trainable / total, 4) if total else 0.0
