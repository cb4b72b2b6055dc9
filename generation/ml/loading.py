"""The models a worker process holds: one base model, the adapters attached to it or merged into
copies of it, and the environment settings that say how they run.

One base load serves every system of a job. The adapter is attached with
`PeftModel.from_pretrained(base, adapter, adapter_name=...)` ("switch" mode: pre-trained rows run with
it switched off) or merged into a copy of the base ("merged" mode); see `adapter_mode`. A job of more
than one adapter (issue 17) attaches them all switched, each under its own adapter name.

Models stay loaded for the life of the worker process, in the worker's one `ModelHost`: the worker is
started with the solo pool, so nothing is loaded, and CUDA is never touched, before a fork.
"""

from __future__ import annotations

import copy
import gc
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from huggingface_hub import constants as hub_constants
from peft import PeftModel
from peft.utils import load_peft_weights
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .decoding import STEP_MODES, RowSwitchedLoRA
from .modeling import BaseModelRef, ModelLoadError, load_base_model, pick_device

_TRUE = {"1", "true", "yes", "on"}
ADAPTER_MODES = ("switch", "merged")


def use_offline_hub() -> None:
    """No machine here reaches a model hub: without this, a mistyped hub id spends its time in network
    retries before failing (docs/performance.md).

    An operator whose GPU workers do reach the hub exports HF_HUB_OFFLINE=0. huggingface_hub reads the
    variable once at import, which has happened by now, so its constant is set too."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hub_constants.HF_HUB_OFFLINE = os.environ["HF_HUB_OFFLINE"].strip().lower() in _TRUE


def adapter_mode(device: str) -> str:
    """How the fine-tuned role runs (EVALSITE_ADAPTER_MODE, default "auto"):

    - "switch": the adapter is attached to the one base model and switched off for pre-trained rows.
      One copy of the weights; the LoRA layers cost a few small extra matmuls per layer.
    - "merged": a second copy of the base with the adapter merged into its weights answers the
      fine-tuned role, and the base stays plain. Twice the weights in memory, no LoRA layers at all.
    - "auto": "switch" on CPU, where it lets both roles share a batch (decoding.RowSwitchedLoRA), was
      faster and takes half the memory; "merged" on CUDA, where every extra kernel launch counts
      (docs/performance.md has the figures, and what is still to be measured on a GPU).
    A merged copy that does not fit in memory falls back to "switch" for that adapter."""
    mode = (os.environ.get("EVALSITE_ADAPTER_MODE") or "auto").strip().lower()
    if mode == "auto":
        return "merged" if device.startswith("cuda") else "switch"
    if mode not in ADAPTER_MODES:
        raise ModelLoadError(f"EVALSITE_ADAPTER_MODE must be auto, switch or merged, not {mode!r}")
    return mode


def decode_step_mode(device: str) -> str:
    """How decode() takes its steps after the prefill (EVALSITE_DECODE_STEP, default "auto"):
    "transformers" (the model's own forward with a growing cache), "static" (static_step's
    hand-written llama step over a preallocated cache), "graph" (that step captured as a CUDA graph and
    replayed; greedy jobs only, sampling runs "static"; on a CPU the same fixed-shape loop runs without
    a graph). Models other than llama use "transformers".
    "auto" is "static" on every device: on CPU it is as fast as "transformers" and cheaper in host
    work per step (docs/performance.md; "graph" on CUDA is still to be measured)."""
    mode = (os.environ.get("EVALSITE_DECODE_STEP") or "auto").strip().lower()
    if mode == "auto":
        return "static"
    if mode not in STEP_MODES:
        raise ModelLoadError(f"EVALSITE_DECODE_STEP must be auto, {', '.join(STEP_MODES)}, not {mode!r}")
    return mode


@dataclass
class LoadInfo:
    seconds: float
    from_cache: bool


@dataclass
class LoadedModel:
    """A base model in memory, with the adapters attached to it so far (folder -> peft adapter name)."""

    ref: BaseModelRef
    model: PreTrainedModel | PeftModel | None  # the base, or the PeftModel wrapping it once attached
    tokenizer: PreTrainedTokenizerBase
    device: str
    dtype: str
    load_seconds: float
    adapters: dict[str, str] = field(default_factory=dict)
    # adapter name -> a copy of the base with that adapter merged into its weights ("merged" mode)
    merged: dict[str, PreTrainedModel] = field(default_factory=dict)
    row_switches: dict[str, RowSwitchedLoRA] = field(default_factory=dict)

    @property
    def is_peft(self) -> bool:
        """True once an adapter is attached to the base itself ("switch" mode)."""
        return isinstance(self.model, PeftModel)


class AdapterLoadError(ModelLoadError):
    """The adapter could not be attached. `base_damaged` is true when the failed attempt left LoRA
    layers in the base model, which must then be reloaded before it answers as the pre-trained model."""

    def __init__(self, message: str, *, base_damaged: bool = False) -> None:
        super().__init__(message)
        self.base_damaged = base_damaged


class ModelHost:
    """The models one worker process holds: one base model at a time (GPU memory is the limit), keyed
    by what it is and how it runs, with its adapters. The worker runtime owns one; tests make their own."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, str, str], LoadedModel] = {}

    @property
    def loaded(self) -> list[LoadedModel]:
        """The models held now (at most one)."""
        return list(self._models.values())

    def load_base(
        self, ref: BaseModelRef, *, device: str | None = None, dtype: str | None = None
    ) -> tuple[LoadedModel, LoadInfo]:
        """The held model for `ref`, loading it (and dropping any other) if this host lacks it.
        EVALSITE_DEVICE, EVALSITE_DTYPE and EVALSITE_TORCH_THREADS fill in what the caller leaves open;
        a misconfigured adapter or step mode raises ModelLoadError here, so a job fails saying why."""
        use_offline_hub()
        threads = os.environ.get("EVALSITE_TORCH_THREADS")
        if threads:  # on CPU cores shared with other work, fewer threads than cores can be much faster
            torch.set_num_threads(int(threads))
        device = pick_device(device or os.environ.get("EVALSITE_DEVICE") or None)
        dtype = dtype or os.environ.get("EVALSITE_DTYPE") or _default_dtype(device)
        adapter_mode(device)
        decode_step_mode(device)
        key = (ref.label, device, dtype)
        if key in self._models:
            return self._models[key], LoadInfo(seconds=0.0, from_cache=True)
        self.clear()
        started = time.perf_counter()
        model, tokenizer = load_base_model(ref, device=device, dtype=dtype)
        seconds = time.perf_counter() - started
        entry = LoadedModel(
            ref=ref, model=model, tokenizer=tokenizer, device=device, dtype=dtype, load_seconds=seconds
        )
        self._models[key] = entry
        return entry, LoadInfo(seconds=seconds, from_cache=False)

    def load_adapter(
        self, entry: LoadedModel, adapter_path: str, *, merge: bool = True
    ) -> tuple[str, LoadInfo]:
        """Make the peft adapter in `adapter_path` answer for its system, attached to the held base or
        merged into a copy of it (see `adapter_mode`); returns its adapter name (each adapter its own).
        `merge=False` attaches it switched whatever the mode, and drops any merged copy: a job of
        several adapters needs them all at once, and the host keeps one merged copy at a time.
        Raises AdapterLoadError, saying whether the failed attempt damaged the base."""
        key = str(Path(adapter_path).expanduser().resolve()) if adapter_path else adapter_path
        if not merge:
            _drop_merged(entry)
        if key in entry.adapters:
            return entry.adapters[key], LoadInfo(seconds=0.0, from_cache=True)
        _check_adapter_folder(Path(key), adapter_path)
        name = _new_adapter_name(entry)
        started = time.perf_counter()
        merged = merge and not entry.is_peft and adapter_mode(entry.device) == "merged"
        if not (merged and _attach_merged(entry, key, name, adapter_path)):
            _attach_switched(entry, key, name, adapter_path)
        entry.adapters[key] = name
        return name, LoadInfo(seconds=time.perf_counter() - started, from_cache=False)

    def forget(self, entry: LoadedModel) -> None:
        """Drop a held model (e.g. one a failed adapter load left half-modified) and free its memory."""
        for key, value in list(self._models.items()):
            if value is entry:
                del self._models[key]
        _release(entry)

    def clear(self) -> None:
        """Drop every held model and free its memory."""
        for entry in self.loaded:
            self.forget(entry)


def _default_dtype(device: str) -> str:
    return "bfloat16" if device.startswith("cuda") else "float32"


def _release(entry: LoadedModel) -> None:
    entry.model = None
    entry.merged.clear()
    entry.row_switches.clear()
    gc.collect()
    _empty_cuda_cache()


def _empty_cuda_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _check_adapter_folder(folder: Path, adapter_path: str) -> None:
    """Refuse what is not a peft adapter folder, and an adapter whose weights hold NaN or inf.

    A diverged fine-tuning made elsewhere would answer the fine-tuned role with whatever argmax makes
    of NaN logits, and in "switch" mode NaN * 0 would reach the pre-trained rows of a shared batch
    too. It is refused before it touches the base, so the role falls back to the base model and the
    load attempt records why."""
    if not folder.is_dir():
        raise AdapterLoadError(f"adapter folder not found: {adapter_path}")
    if not (folder / "adapter_config.json").is_file():
        raise AdapterLoadError(f"{adapter_path} has no adapter_config.json: not a peft adapter folder")
    try:
        weights = load_peft_weights(str(folder), device="cpu")
    except Exception:  # noqa: BLE001  (unreadable weights: peft's own load says what is wrong)
        return
    for key, tensor in weights.items():
        if torch.is_tensor(tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise AdapterLoadError(
                f"cannot load adapter {adapter_path}: its weights hold NaN or inf values ({key});"
                " was its fine-tuning diverging?"
            )


def _new_adapter_name(entry: LoadedModel) -> str:
    """"finetuned" for the first adapter, then "finetuned_1", ...: never a name the base or a copy
    holds (a failed attempt may have left its name in the peft model's config)."""
    taken = set(entry.adapters.values()) | set(entry.merged)
    if entry.is_peft:
        taken |= set(getattr(entry.model, "peft_config", {}) or {})
    name, n = "finetuned", 0
    while name in taken:
        n += 1
        name = f"finetuned_{n}"
    return name


def _drop_merged(entry: LoadedModel) -> None:
    """Forget every merged copy (and its adapter), freeing its memory."""
    if not entry.merged:
        return
    for key, name in list(entry.adapters.items()):
        if name in entry.merged:
            del entry.adapters[key]
    entry.merged.clear()
    gc.collect()
    _empty_cuda_cache()


def _attach_merged(entry: LoadedModel, folder: str, name: str, adapter_path: str) -> bool:
    """Merge the adapter into a copy of the plain base; False when there is no memory for the copy.

    One merged copy at a time: a worker that moves on to another adapter drops the previous copy."""
    for old_key, old_name in list(entry.adapters.items()):
        if old_name in entry.merged:
            del entry.merged[old_name], entry.adapters[old_key]
    gc.collect()
    try:
        merged = _merged_copy(entry, folder, name)
    except Exception as exc:  # the base itself was not touched: only its copy saw the adapter
        raise AdapterLoadError(f"cannot load adapter {adapter_path}: {type(exc).__name__}: {exc}") from exc
    if merged is None:
        return False
    entry.merged[name] = merged
    return True


def _merged_copy(entry: LoadedModel, folder: str, name: str) -> PreTrainedModel | None:
    """A copy of the plain base with the adapter merged in; None when there is no memory for it."""
    try:
        clone = copy.deepcopy(entry.model)
        merged = PeftModel.from_pretrained(clone, folder, adapter_name=name, is_trainable=False)
        merged = merged.merge_and_unload()
    except Exception as exc:
        clone = merged = None  # let the half-made copy go before freeing memory
        gc.collect()
        if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
            _empty_cuda_cache()
            return None
        raise
    merged.to(entry.device)
    merged.eval()
    return merged


def _attach_switched(entry: LoadedModel, folder: str, name: str, adapter_path: str) -> None:
    """Attach the adapter to the base itself (wrapping it in a PeftModel on the first adapter)."""
    was_plain = not entry.is_peft
    try:
        if was_plain:
            model = PeftModel.from_pretrained(entry.model, folder, adapter_name=name, is_trainable=False)
        else:
            entry.model.load_adapter(folder, adapter_name=name, is_trainable=False)
            model = entry.model
    except Exception as exc:  # peft raises ValueError, OSError, KeyError, RuntimeError... for bad adapters
        damaged = was_plain and _has_lora_layers(entry.model)
        if not was_plain:  # the other adapters stay; what this one left half-made goes
            _delete_adapter(entry.model, name)
        raise AdapterLoadError(
            f"cannot load adapter {adapter_path}: {type(exc).__name__}: {exc}", base_damaged=damaged
        ) from exc
    model.to(entry.device)
    model.eval()
    entry.model = model


def _delete_adapter(model: PeftModel, name: str) -> None:
    try:
        model.delete_adapter(name)
    except Exception:  # noqa: BLE001  (nothing of it was made: nothing to delete)
        model.peft_config.pop(name, None)


def _has_lora_layers(model: torch.nn.Module) -> bool:
    return any(hasattr(module, "lora_A") for module in model.modules())
