"""decode(): many prompts through one model, phase by phase (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from generation.configs import Sampling
from generation.ml import static_step

from .batch import AdapterRows, DecodeBatch, DecodeRun, Prefilled, RowClock, cache_argument, new_cache
from .prefill import prefill, shared_prefixes
from .row_lora import RowSwitchedLoRA
from .sampling import TokenPicker
from .steps import STEP_MODES, DynamicSteps, StaticSteps, decode_steps, graph_steps

GREEDY = Sampling()


@dataclass
class Decoded:
    """One row's new tokens and its share of the decode call's wall time: each forward pass's time
    split equally among the rows it computed (so a row that stopped early is not charged for the
    steps after it, and the shares of a call add up to the call's time)."""

    tokens: list[int]
    seconds: float


def decode(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_ids: set[int],
    pad_id: int,
    device: str,
    sampling: Sampling = GREEDY,
    prefill_rows: int = 8,
    adapter_rows: Sequence[int] | None = None,
    row_lora: RowSwitchedLoRA | None = None,
    step_mode: str = "transformers",
) -> list[Decoded]:
    """Generate for every prompt (lists of token ids). Each row's tokens end with the first
    end-of-sequence token when one came, else are exactly `max_new_tokens` long.

    `model` is a transformers causal LM (a peft-injected one is fine: enable or disable its adapter
    around the call). With `row_lora`, `adapter_rows` says which adapter each row runs with (0:
    none, k: `row_lora.names[k - 1]`; True/False for one adapter); the prefix, prefill groups and KV
    layout are kept per system. Call under `torch.inference_mode()`."""
    if not prompts:
        return []
    flags = _checked_flags(prompts, max_new_tokens, adapter_rows, row_lora, step_mode)
    step_mode = _step_mode_for(model, step_mode, sampling)
    pick = TokenPicker(sampling, device)
    run = DecodeRun(
        model, device, AdapterRows(flags, row_lora), RowClock(len(prompts), device), cache_argument(model)
    )
    prefixes = shared_prefixes(run, prompts)
    prefilled = Prefilled.concatenate(
        prefill(run, prompts, prefixes, pad_id=pad_id, prefill_rows=prefill_rows)
    )
    eos = torch.tensor(sorted(eos_ids) or [-1], dtype=torch.long, device=device)
    outputs: list[list[int]] = [[] for _ in prompts]
    token = pick(prefilled.logits)
    rows, position = prefilled.rows, prefilled.position
    if step_mode == "transformers":
        cache = new_cache(model, prefilled.keys, prefilled.values)
        steps: DynamicSteps | StaticSteps = DynamicSteps(
            model, cache, prefilled.attention, run.cache_argument
        )
        del prefilled, cache  # the steps hold their own copy of the cache
    else:
        step = static_step.StaticStep(model, len(rows), prefilled.attention.shape[1] + max_new_tokens, device)
        filled = step.load(prefilled.keys, prefilled.values, prefilled.attention)
        del prefilled  # copied into the static cache
        if step_mode == "graph":
            graph_steps(
                run, step, filled, rows, token, position, outputs, max_new_tokens=max_new_tokens, eos=eos
            )
            return _decoded(outputs, run.clock)
        steps = StaticSteps(step, filled, device)
    batch = DecodeBatch(rows, token, position, steps)
    decode_steps(run, batch, outputs, max_new_tokens=max_new_tokens, eos=eos, pick=pick)
    return _decoded(outputs, run.clock)


def _checked_flags(
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    adapter_rows: Sequence[int] | None,
    row_lora: RowSwitchedLoRA | None,
    step_mode: str,
) -> list[int]:
    """Refuse unusable input; returns each prompt's adapter number (0: none; all 0 without `row_lora`)."""
    if any(len(p) == 0 for p in prompts):
        raise ValueError("a prompt has no tokens")
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    flags = [0] * len(prompts)
    if row_lora is not None and adapter_rows is not None:
        flags = [int(f) for f in adapter_rows]
        if any(not 0 <= f <= len(row_lora.names) for f in flags):
            raise ValueError(f"adapter_rows: each row is 0 (no adapter) or 1..{len(row_lora.names)}")
    if len(flags) != len(prompts):
        raise ValueError("adapter_rows needs one flag per prompt")
    if step_mode not in STEP_MODES:
        raise ValueError(f"step_mode must be one of {', '.join(STEP_MODES)}, not {step_mode!r}")
    return flags


def _step_mode_for(model: PreTrainedModel, step_mode: str, sampling: Sampling) -> str:
    """The step mode that runs: models the hand-written step does not cover take the transformers
    steps, and sampling cannot be replayed as a greedy graph, so it runs the static steps."""
    if step_mode != "transformers" and not static_step.supports(model):
        return "transformers"
    if step_mode == "graph" and sampling.do_sample:
        return "static"
    return step_mode


def _decoded(outputs: list[list[int]], clock: RowClock) -> list[Decoded]:
    return [
        Decoded(tokens=tokens, seconds=seconds)
        for tokens, seconds in zip(outputs, clock.seconds, strict=True)
    ]
