"""What a fine-tuning run leaves behind: the trained adapter (or model), `training.json`, and the
measurements and versions written into it."""

from __future__ import annotations

import json
import os
import platform
import resource
from pathlib import Path

import peft
import torch
import transformers
from peft import PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from generation.configs import FinetuneConfig

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


def write_json(path: Path, data: dict[str, object]) -> None:
    """Write `data` to `path` atomically: a reader sees the old file or the new one, never half."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def save_trained(
    model: PreTrainedModel | PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    config: FinetuneConfig,
    folder: Path,
    *,
    base_label: str,
) -> None:
    """The adapter (LoRA: it names `base_label` as its base) or the whole model and tokenizer (full)."""
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


def peak_memory(device: str) -> tuple[int, str]:
    """(bytes, kind): CUDA's peak allocated memory on a GPU, the process's peak RSS on a CPU."""
    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated()), "cuda_max_memory_allocated"
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return int(rss_kb) * 1024, "process_peak_rss"


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({os.cpu_count()} cores visible, {torch.get_num_threads()} torch threads)"
