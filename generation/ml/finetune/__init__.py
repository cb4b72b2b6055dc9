"""LoRA (or full) fine-tuning of a causal LM on prompts with reference answers, with early stopping.

Each example is the exact chat-formatted input that generation feeds the model
(`prompting.render_prompt`) followed by the prompt's `reference` and the end-of-sequence token; the
loss counts the answer tokens only (data.py). Prompts are split once, deterministically by seed, into
training and validation; each epoch trains on the training part and measures the validation loss,
and the run stops after `patience` epochs without improvement (training.py). The adapter (or model)
written at the end is the one from the best epoch, with `training.json` describing how it was made
(outputs.py).

No Django here: generation.worker.training runs a FinetuneRun row through `train`, and
bench/finetune.py uses the training step (steps.py) on a machine with only torch, transformers and
peft. Options come from generation.configs.FinetuneConfig (re-exported here).
"""

from generation.configs import DEFAULT_TARGET_MODULES, FinetuneConfig

from .data import (
    Example,
    FinetuneError,
    TrainingPrompt,
    batches,
    build_examples,
    collate,
    data_hash,
    split_examples,
)
from .outputs import SPEC_KEYS, TRAINING_JSON, device_name, peak_memory, save_trained, versions, write_json
from .params import count_lora_params, count_parameters, lora_param_count, trainable_share
from .steps import (
    answer_loss_sum,
    autocast_context,
    check_target_modules,
    make_optimizer,
    prepare_model,
    restore_state,
    trainable_state,
    training_step,
    validation_loss,
)
from .training import EpochProgress, TrainingResult, train

__all__ = [
    "DEFAULT_TARGET_MODULES",
    "SPEC_KEYS",
    "TRAINING_JSON",
    "EpochProgress",
    "Example",
    "FinetuneConfig",
    "FinetuneError",
    "TrainingPrompt",
    "TrainingResult",
    "answer_loss_sum",
    "autocast_context",
    "batches",
    "build_examples",
    "check_target_modules",
    "collate",
    "count_lora_params",
    "count_parameters",
    "data_hash",
    "device_name",
    "lora_param_count",
    "make_optimizer",
    "peak_memory",
    "prepare_model",
    "restore_state",
    "save_trained",
    "split_examples",
    "train",
    "trainable_share",
    "trainable_state",
    "training_step",
    "validation_loss",
    "versions",
    "write_json",
]
