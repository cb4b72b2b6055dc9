"""Batched answer generation for both roles from one loaded base model (worker side only).

torch, transformers and peft are imported inside functions: importing this module is cheap, but only
workers and benchmarks call into it.

One base load serves both roles. The adapter is attached with
`PeftModel.from_pretrained(base, adapter, adapter_name=...)`; pre-trained rows run with the adapter
disabled and fine-tuned rows with it enabled, in role-homogeneous batches. We measured the
alternative, peft's mixed-batch inference (`generate(..., adapter_names=["__base__", "finetuned", ...])`,
both roles of a prompt in one batch), with the demo model on this machine's 2 CPU cores (16 prompts x
2 roles, 32 new tokens, 16 rows per batch, 4 runs each on shared cores): mixed batches 11.0-15.5 s,
separate batches with the adapter disabled/enabled 10.2-11.3 s (one outlier at 35 s while other
processes loaded the cores). Separate batches were no slower, and they keep each role's latency its
own (a mixed batch would smear the adapter's cost over both roles' latency figures).

Batches are role-homogeneous and length-sorted (longest first), and run through `decoding.decode`, the
worker's own decode loop (shared prompt prefix computed once, prefill in length-sorted groups, finished
rows dropped from the KV cache); decoding is greedy unless the job asks for sampling. It replaced
transformers' generate() after measuring both on the demo model: see decoding.py and the README's
performance section. For every row we report:
- `prompt_tokens`: the prompt's own tokens (padding not counted);
- `output_tokens`: tokens the model generated up to and including the end-of-sequence token that
  stopped it (padding after it not counted), or max_new_tokens when it never stopped;
- `batch_ms`: wall time of the decode call that produced the row;
- `latency_ms`: `batch_ms / rows in the batch`, the row's equal share, so summing latency_ms over
  answers gives the compute time spent (what cost per request is built on). A client waiting for
  one answer in a batch waits `batch_ms`.

Models stay loaded for the life of the worker process (module-level cache): the worker is started with
the solo pool, so nothing is loaded, and CUDA is never touched, before a fork.
"""

from __future__ import annotations

import gc
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .decoding import (
    DEFAULT_BATCH_SIZE,
    STEP_MODES,
    RowSwitchedLoRA,
    Sampling,
    decode,
    plan_batches,
    prefill_rows_for,
)
from .modeling import BaseModelRef, ModelLoadError, load_base_model, pick_device

_TRUE = {"1", "true", "yes", "on"}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def use_offline_hub() -> None:
    """No machine here reaches a model hub: without this, a mistyped hub id spends ~50 s in retries.

    An operator whose GPU workers do reach the hub exports HF_HUB_OFFLINE=0. huggingface_hub reads the
    variable once at import, so the constant is set too in case it was imported before us."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    offline = os.environ["HF_HUB_OFFLINE"].strip().lower() in _TRUE
    try:
        import huggingface_hub.constants as hub_constants
    except ImportError:  # pragma: no cover - transformers always brings it
        return
    hub_constants.HF_HUB_OFFLINE = offline


@dataclass
class LoadInfo:
    seconds: float
    from_cache: bool


@dataclass
class LoadedModel:
    """A base model in memory, with the adapters attached to it so far (folder -> peft adapter name)."""

    ref: BaseModelRef
    model: Any  # the base model, or the PeftModel wrapping it once an adapter is attached
    tokenizer: Any
    device: str
    dtype: str
    load_seconds: float
    adapters: dict[str, str] = field(default_factory=dict)
    # adapter name -> a copy of the base with that adapter merged into its weights ("merged" mode)
    merged: dict[str, Any] = field(default_factory=dict)
    row_switches: dict[str, Any] = field(default_factory=dict)  # adapter name -> RowSwitchedLoRA

    @property
    def is_peft(self) -> bool:
        """True once an adapter is attached to the base itself ("switch" mode)."""
        return self.model is not None and hasattr(self.model, "peft_config")


_CACHE: dict[tuple[str, str, str], LoadedModel] = {}


def _cache_key(ref: BaseModelRef, device: str, dtype: str) -> tuple[str, str, str]:
    return (ref.label, device, dtype)


def _default_dtype(device: str, dtype: str | None) -> str:
    if dtype:
        return dtype
    return "bfloat16" if device.startswith("cuda") else "float32"


def _release(entry: LoadedModel) -> None:
    entry.model = None
    entry.merged.clear()
    entry.row_switches.clear()
    gc.collect()
    _empty_cuda_cache()


def load_base(
    ref: BaseModelRef, *, device: str | None = None, dtype: str | None = None
) -> tuple[LoadedModel, LoadInfo]:
    """The cached model for `ref`, loading it if this process does not hold it yet.

    A worker keeps one base model: loading another one drops the previous (GPU memory is the limit)."""
    use_offline_hub()
    threads = os.environ.get("EVALSITE_TORCH_THREADS")
    if threads:  # on CPU cores shared with other work, fewer threads than cores can be much faster
        import torch

        torch.set_num_threads(int(threads))
    device = pick_device(device or os.environ.get("EVALSITE_DEVICE") or None)
    dtype = _default_dtype(device, dtype or os.environ.get("EVALSITE_DTYPE") or None)
    adapter_mode(device)  # a misconfigured worker fails its jobs at once, saying why
    decode_step_mode(device)
    key = _cache_key(ref, device, dtype)
    if key in _CACHE:
        return _CACHE[key], LoadInfo(seconds=0.0, from_cache=True)
    for old_key in list(_CACHE):
        _release(_CACHE.pop(old_key))
    started = time.perf_counter()
    model, tokenizer = load_base_model(ref, device=device, dtype=dtype)
    seconds = time.perf_counter() - started
    entry = LoadedModel(
        ref=ref, model=model, tokenizer=tokenizer, device=device, dtype=dtype, load_seconds=seconds
    )
    _CACHE[key] = entry
    return entry, LoadInfo(seconds=seconds, from_cache=False)


def forget(entry: LoadedModel) -> None:
    """Drop a cached model (e.g. one a failed adapter load left half-modified)."""
    for key, value in list(_CACHE.items()):
        if value is entry:
            del _CACHE[key]
    _release(entry)


class AdapterLoadError(ModelLoadError):
    """The adapter could not be attached. `base_damaged` is true when the failed attempt left LoRA
    layers in the base model, which must then be reloaded before it answers as the pre-trained model."""

    def __init__(self, message: str, *, base_damaged: bool = False) -> None:
        super().__init__(message)
        self.base_damaged = base_damaged


def _has_lora_layers(model: Any) -> bool:
    return any(hasattr(module, "lora_A") for module in model.modules())


ADAPTER_MODES = ("switch", "merged")


def adapter_mode(device: str) -> str:
    """How the fine-tuned role runs (EVALSITE_ADAPTER_MODE, default "auto"):

    - "switch": the adapter is attached to the one base model and switched off for pre-trained rows.
      One copy of the weights; the LoRA layers cost a few small extra matmuls per layer.
    - "merged": a second copy of the base with the adapter merged into its weights answers the
      fine-tuned role, and the base stays plain. Twice the weights in memory, no LoRA layers at all.
    - "auto": "switch" on CPU, where it lets both roles share a batch (decoding.RowSwitchedLoRA) and
      was faster (demo model, 2 cores, bench/generation.py: 165-166 tok/s against 146 for merged) with
      half the memory; "merged" on CUDA, where every extra kernel launch counts (the issue's H200
      reference: two resident models 3,046 tok/s at 128 prompts against 680 for peft's mixed batches;
      not yet measured by us: bench/gpu_check.sh measures both).
    A merged copy that does not fit in memory falls back to "switch" for that adapter."""
    mode = (os.environ.get("EVALSITE_ADAPTER_MODE") or "auto").strip().lower()
    if mode == "auto":
        return "merged" if device.startswith("cuda") else "switch"
    if mode not in ADAPTER_MODES:
        raise ModelLoadError(f"EVALSITE_ADAPTER_MODE must be auto, switch or merged, not {mode!r}")
    return mode


def decode_step_mode(device: str) -> str:
    """How decode() takes its steps after the prefill (EVALSITE_DECODE_STEP, default "auto"):
    "transformers" (the model's own forward with a growing cache), "static" (decoding's hand-written
    llama step over a preallocated cache), "graph" (that step captured as a CUDA graph and replayed;
    greedy jobs only, sampling runs "static"; on a CPU the same fixed-shape loop runs without a
    graph). Models other than llama use "transformers".
    "auto" is "static" on every device: on CPU it was as fast as "transformers" for the demo model
    and cheaper in host work per step (decoding.py says what was measured); on CUDA, "graph" is
    expected to be the fast one but has not been measured there yet (bench/gpu_check.sh does)."""
    mode = (os.environ.get("EVALSITE_DECODE_STEP") or "auto").strip().lower()
    if mode == "auto":
        return "static"
    if mode not in STEP_MODES:
        raise ModelLoadError(
            f"EVALSITE_DECODE_STEP must be auto, {', '.join(STEP_MODES)}, not {mode!r}"
        )
    return mode


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


def _merged_copy(entry: LoadedModel, folder: str, name: str) -> Any | None:
    """A copy of the plain base with the adapter merged in; None when there is no memory for it."""
    import copy

    from peft import PeftModel

    try:
        clone = copy.deepcopy(entry.model)
        merged = PeftModel.from_pretrained(clone, folder, adapter_name=name, is_trainable=False)
        merged = merged.merge_and_unload()
    except Exception as exc:
        clone = merged = None  # let the half-made copy go before freeing memory
        gc.collect()
        if _is_out_of_memory(exc):
            _empty_cuda_cache()
            return None
        raise
    merged.to(entry.device)
    merged.eval()
    return merged


def _empty_cuda_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def _refuse_non_finite_weights(folder: Path, adapter_path: str) -> None:
    """An adapter whose weights hold NaN or inf (a diverged fine-tuning made elsewhere) would answer
    the fine-tuned role with whatever argmax makes of NaN logits, and in "switch" mode NaN * 0 would
    reach the pre-trained rows of a shared batch too. It is refused before it touches the base, so the
    role falls back to the base model and the load attempt records why."""
    import torch
    from peft.utils import load_peft_weights

    try:
        weights = load_peft_weights(str(folder), device="cpu")
    except Exception:  # unreadable weights: peft's own load below says what is wrong with them
        return
    for key, tensor in weights.items():
        if torch.is_tensor(tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise AdapterLoadError(
                f"cannot load adapter {adapter_path}: its weights hold NaN or inf values ({key});"
                " was its fine-tuning diverging?"
            )


def load_adapter(entry: LoadedModel, adapter_path: str) -> tuple[str, LoadInfo]:
    """Make the peft adapter in `adapter_path` answer for the fine-tuned role, attached to the cached
    base or merged into a copy of it (see `adapter_mode`); returns its adapter name."""
    key = str(Path(adapter_path).expanduser().resolve()) if adapter_path else adapter_path
    if key in entry.adapters:
        return entry.adapters[key], LoadInfo(seconds=0.0, from_cache=True)
    folder = Path(key)
    if not folder.is_dir():
        raise AdapterLoadError(f"adapter folder not found: {adapter_path}")
    if not (folder / "adapter_config.json").is_file():
        raise AdapterLoadError(f"{adapter_path} has no adapter_config.json: not a peft adapter folder")
    _refuse_non_finite_weights(folder, adapter_path)
    from peft import PeftModel

    name = "finetuned" if not entry.adapters else f"finetuned_{len(entry.adapters)}"
    was_plain = not entry.is_peft
    started = time.perf_counter()
    if was_plain and adapter_mode(entry.device) == "merged":
        # one merged copy at a time: a worker that moves on to another adapter drops the previous copy
        for old_key, old_name in list(entry.adapters.items()):
            if old_name in entry.merged:
                del entry.merged[old_name], entry.adapters[old_key]
        gc.collect()
        try:
            merged = _merged_copy(entry, key, name)
        except Exception as exc:  # the base itself was not touched: only its copy saw the adapter
            message = f"cannot load adapter {adapter_path}: {type(exc).__name__}: {exc}"
            raise AdapterLoadError(message) from exc
        if merged is not None:
            entry.merged[name] = merged
            entry.adapters[key] = name
            return name, LoadInfo(seconds=time.perf_counter() - started, from_cache=False)
    try:
        if was_plain:
            model = PeftModel.from_pretrained(entry.model, key, adapter_name=name, is_trainable=False)
        else:
            entry.model.load_adapter(key, adapter_name=name, is_trainable=False)
            model = entry.model
    except Exception as exc:  # peft raises ValueError, OSError, KeyError, RuntimeError... for bad adapters
        damaged = was_plain and _has_lora_layers(entry.model)
        raise AdapterLoadError(
            f"cannot load adapter {adapter_path}: {type(exc).__name__}: {exc}", base_damaged=damaged
        ) from exc
    model.to(entry.device)
    model.eval()
    entry.model = model
    entry.adapters[key] = name
    return name, LoadInfo(seconds=time.perf_counter() - started, from_cache=False)


@dataclass
class Request:
    """One row to answer. `adapter` is the peft adapter name, or None for the base model.
    `prompt_ids`, when given, are used as they are instead of tokenising `prompt_text`."""

    key: Any
    prompt_text: str
    adapter: str | None
    prompt_ids: list[int] | None = None


@dataclass
class Result:
    key: Any
    text: str
    prompt_tokens: int
    output_tokens: int
    latency_ms: float
    batch_ms: float


def _eos_ids(entry: LoadedModel) -> set[int]:
    ids: set[int] = set()
    config_eos = (
        getattr(entry.model.generation_config, "eos_token_id", None) if entry.model is not None else None
    )
    for value in (config_eos, entry.tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


def encode(entry: LoadedModel, text: str) -> list[int]:
    # A chat template writes its own special tokens; without one the tokenizer adds BOS itself.
    # (The same rule as fine-tuning, so the adapter sees the input it was trained on.)
    add_special = not getattr(entry.tokenizer, "chat_template", None)
    return list(entry.tokenizer(text, add_special_tokens=add_special)["input_ids"])


@contextmanager
def _role(entry: LoadedModel, adapter: str | None) -> Iterator[Any]:
    """The model to call for one role: the base with the adapter switched off for the pre-trained
    role, the named adapter switched on for the fine-tuned one. The transformers model under peft is
    called directly (its LoRA layers follow the switch), skipping peft's forward wrapper. In "merged"
    mode the fine-tuned role is the merged copy."""
    if adapter is not None and adapter in entry.merged:
        yield entry.merged[adapter]
    elif not entry.is_peft:
        yield entry.model
    elif adapter is None:
        with entry.model.disable_adapter():
            yield entry.model.get_base_model()
    else:
        entry.model.set_adapter(adapter)
        yield entry.model.get_base_model()


def _row_switch(entry: LoadedModel, adapters: Sequence[str | None]) -> RowSwitchedLoRA | None:
    """Rows of both roles can share a batch when the adapter is attached to the base ("switch" mode)
    as plain LoRA: then the adapter is switched per row (decoding.RowSwitchedLoRA)."""
    names = {a for a in adapters if a is not None}
    if not entry.is_peft or len(names) != 1:
        return None
    (name,) = names
    if name in entry.merged or not RowSwitchedLoRA.supports(entry.model, name):
        return None
    cached = entry.row_switches.get(name)
    if cached is None:
        cached = entry.row_switches[name] = RowSwitchedLoRA(entry.model, name)
    return cached


def _sampling_defaults(entry: LoadedModel, temperature: float | None, top_p: float | None) -> dict[str, Any]:
    """Sampling settings the job leaves open come from the model's generation config, as
    transformers' generate() would take them (temperature 1.0, top-k 50, top-p 1.0 when it has none)."""
    config = getattr(entry.model, "generation_config", None)

    def default(name: str, fallback: float) -> float:
        value = getattr(config, name, None)
        return fallback if value is None else value

    return {
        "temperature": float(temperature if temperature is not None else default("temperature", 1.0)),
        "top_p": float(top_p if top_p is not None else default("top_p", 1.0)),
        "top_k": int(default("top_k", 50)),
    }


def generate(
    entry: LoadedModel,
    requests: Sequence[Request],
    *,
    max_new_tokens: int = 64,
    batch_size: int = DEFAULT_BATCH_SIZE,
    do_sample: bool = False,
    seed: int = 0,
    temperature: float | None = None,
    top_p: float | None = None,
) -> Iterator[list[Result]]:
    """Answer every request; yields the results of each batch as soon as it is done."""
    import torch

    tokenizer = entry.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos_ids = _eos_ids(entry)
    encoded = [
        list(r.prompt_ids) if r.prompt_ids is not None else encode(entry, r.prompt_text) for r in requests
    ]
    for name in {r.adapter for r in requests if r.adapter is not None}:
        if name not in entry.adapters.values():
            raise ValueError(f"adapter {name!r} is not attached to this model")
    sampling = Sampling(do_sample=do_sample, seed=seed, **_sampling_defaults(entry, temperature, top_p))
    adapters = [r.adapter for r in requests]
    row_lora = _row_switch(entry, adapters)
    lengths = [len(e) for e in encoded]
    if row_lora is not None:  # both roles share batches: longest prompts first, roles interleaved
        order = sorted(range(len(requests)), key=lambda i: (-lengths[i], i))
        batches = [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    else:
        batches = plan_batches(lengths, adapters, batch_size)
    for batch in batches:
        started = time.perf_counter()
        options: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "eos_ids": eos_ids,
            "pad_id": pad_id,
            "device": entry.device,
            "sampling": sampling,
            "prefill_rows": prefill_rows_for(entry.device),
            "step_mode": decode_step_mode(entry.device),
        }
        with torch.inference_mode():
            if row_lora is not None:
                entry.model.set_adapter(row_lora.name)
                decoded = decode(
                    entry.model.get_base_model(),
                    [encoded[i] for i in batch],
                    adapter_rows=[adapters[i] is not None for i in batch],
                    row_lora=row_lora,
                    **options,
                )
            else:
                with _role(entry, adapters[batch[0]]) as model:
                    decoded = decode(model, [encoded[i] for i in batch], **options)
        if entry.device.startswith("cuda"):
            torch.cuda.synchronize()
        batch_ms = (time.perf_counter() - started) * 1000.0
        results = []
        for row, i in enumerate(batch):
            tokens = decoded[row].tokens
            stop = next((n for n, t in enumerate(tokens) if t in eos_ids), None)
            produced = tokens if stop is None else tokens[: stop + 1]
            text = tokenizer.decode(
                tokens if stop is None else tokens[:stop], skip_special_tokens=True
            ).strip()
            results.append(
                Result(
                    key=requests[i].key,
                    text=text,
                    prompt_tokens=len(encoded[i]),
                    output_tokens=len(produced),
                    latency_ms=decoded[row].seconds * 1000.0,
                    batch_ms=batch_ms,
                )
            )
        yield results
