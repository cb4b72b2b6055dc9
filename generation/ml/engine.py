"""Batched answer generation for both roles from one loaded base model (worker side only).

The model comes from a `loading.ModelHost`. Pre-trained rows run with the adapters disabled and
each adapter's rows with it enabled: in "switch" mode every system shares batches, the adapter switched
per row (decoding.RowSwitchedLoRA); otherwise batches are role-homogeneous. Role-homogeneous batches were
no slower than peft's own mixed-batch inference and keep each role's latency its own
(docs/performance.md).

Batches are length-sorted (longest first) and run through `decoding.decode`, the worker's own decode
loop; decoding is greedy unless the job asks for sampling. For every row we report:
- `prompt_tokens`: the prompt's own tokens (padding not counted);
- `output_tokens`: tokens the model generated up to and including the end-of-sequence token that
  stopped it (padding after it not counted), or max_new_tokens when it never stopped;
- `batch_ms`: wall time of the decode call that produced the row;
- `latency_ms`: the row's share of every forward pass it took part in (`decoding.Decoded.seconds`), so
  summing latency_ms over answers gives the compute time spent (what cost per request is built on).
  A client waiting for one answer in a batch waits `batch_ms`.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import torch
from transformers import PreTrainedModel

from generation.configs import DEFAULT_BATCH_SIZE, Sampling

from .decoding import Decoded, RowSwitchedLoRA, decode, plan_batches, prefill_rows_for
from .loading import LoadedModel, decode_step_mode


@dataclass
class Request:
    """One row to answer. `adapter` is the peft adapter name, or None for the base model.
    `prompt_ids`, when given, are used as they are instead of tokenising `prompt_text`."""

    key: Hashable
    prompt_text: str
    adapter: str | None
    prompt_ids: list[int] | None = None


@dataclass
class Result:
    key: Hashable
    text: str
    prompt_tokens: int
    output_tokens: int
    latency_ms: float
    batch_ms: float


def eos_ids(entry: LoadedModel) -> set[int]:
    """Every token id that ends an answer: the model's generation config's and the tokenizer's."""
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
def role_model(entry: LoadedModel, adapter: str | None) -> Iterator[PreTrainedModel]:
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


def row_switch(entry: LoadedModel, adapters: Sequence[str | None]) -> RowSwitchedLoRA | None:
    """Rows of every system can share a batch when the adapters are attached to the base ("switch"
    mode) as plain LoRA: then each row's adapter is switched per row (decoding.RowSwitchedLoRA). One
    adapter is the two-system case; a job of more than two systems has several."""
    names = tuple(sorted({a for a in adapters if a is not None}))
    if not entry.is_peft or not names:
        return None
    if any(name in entry.merged for name in names) or not RowSwitchedLoRA.supports(entry.model, names):
        return None
    key = names[0] if len(names) == 1 else ",".join(names)
    cached = entry.row_switches.get(key)
    if cached is None:
        cached = entry.row_switches[key] = RowSwitchedLoRA(entry.model, names)
    return cached


def sampling_for(
    entry: LoadedModel, *, do_sample: bool, seed: int, temperature: float | None, top_p: float | None
) -> Sampling:
    """Sampling settings the job leaves open come from the model's generation config, as
    transformers' generate() would take them (temperature 1.0, top-k 50, top-p 1.0 when it has none)."""
    config = getattr(entry.model, "generation_config", None)

    def default(name: str, fallback: float) -> float:
        value = getattr(config, name, None)
        return fallback if value is None else value

    return Sampling(
        do_sample=do_sample,
        seed=seed,
        temperature=float(temperature if temperature is not None else default("temperature", 1.0)),
        top_p=float(top_p if top_p is not None else default("top_p", 1.0)),
        top_k=int(default("top_k", 50)),
    )


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
    encoded = [
        list(r.prompt_ids) if r.prompt_ids is not None else encode(entry, r.prompt_text) for r in requests
    ]
    for name in {r.adapter for r in requests if r.adapter is not None}:
        if name not in entry.adapters.values():
            raise ValueError(f"adapter {name!r} is not attached to this model")
    sampling = sampling_for(entry, do_sample=do_sample, seed=seed, temperature=temperature, top_p=top_p)
    adapters = [r.adapter for r in requests]
    row_lora = row_switch(entry, adapters)
    lengths = [len(e) for e in encoded]
    if row_lora is not None:  # every system shares batches: longest prompts first, systems interleaved
        order = sorted(range(len(requests)), key=lambda i: (-lengths[i], i))
        batches = [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    else:
        batches = plan_batches(lengths, adapters, batch_size)
    stops = eos_ids(entry)
    for batch in batches:
        started = time.perf_counter()
        decoded = _decode_batch(
            entry,
            [encoded[i] for i in batch],
            [adapters[i] for i in batch],
            row_lora,
            max_new_tokens=max_new_tokens,
            eos_ids=stops,
            sampling=sampling,
            step_mode=decode_step_mode(entry.device),
        )
        if entry.device.startswith("cuda"):
            torch.cuda.synchronize()
        batch_ms = (time.perf_counter() - started) * 1000.0
        yield [
            _result(entry, requests[i], decoded[row], encoded[i], stops, batch_ms)
            for row, i in enumerate(batch)
        ]


def _decode_batch(
    entry: LoadedModel,
    prompts: list[list[int]],
    adapters: list[str | None],
    row_lora: RowSwitchedLoRA | None,
    *,
    max_new_tokens: int,
    eos_ids: set[int],
    sampling: Sampling,
    step_mode: str,
) -> list[Decoded]:
    """One batch through decode(): every system at once with `row_lora`, else the batch's one system."""
    tokenizer = entry.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    run = partial(
        decode,
        max_new_tokens=max_new_tokens,
        eos_ids=eos_ids,
        pad_id=pad_id,
        device=entry.device,
        sampling=sampling,
        prefill_rows=prefill_rows_for(entry.device),
        step_mode=step_mode,
    )
    with torch.inference_mode():
        if row_lora is not None:
            row_lora.activate(entry.model)
            base = entry.model.get_base_model()
            numbers = [0 if a is None else row_lora.names.index(a) + 1 for a in adapters]
            return run(base, prompts, adapter_rows=numbers, row_lora=row_lora)
        with role_model(entry, adapters[0]) as model:
            return run(model, prompts)


def _result(
    entry: LoadedModel,
    request: Request,
    decoded: Decoded,
    prompt: list[int],
    stops: set[int],
    batch_ms: float,
) -> Result:
    tokens = decoded.tokens
    stop = next((n for n, t in enumerate(tokens) if t in stops), None)
    produced = tokens if stop is None else tokens[: stop + 1]
    text = entry.tokenizer.decode(tokens if stop is None else tokens[:stop], skip_special_tokens=True).strip()
    return Result(
        key=request.key,
        text=text,
        prompt_tokens=len(prompt),
        output_tokens=len(produced),
        latency_ms=decoded.seconds * 1000.0,
        batch_ms=batch_ms,
    )


@dataclass
class Alone:
    """One request answered alone (a batch of 1): what its user waits for."""

    key: Hashable
    first_token_ms: float
    total_ms: float
    output_tokens: int


def answer_alone(
    entry: LoadedModel,
    request: Request,
    *,
    max_new_tokens: int = 64,
    do_sample: bool = False,
    seed: int = 0,
    temperature: float | None = None,
    top_p: float | None = None,
) -> Alone:
    """Time one request served on its own by this engine, with a job's settings: `first_token_ms` is a
    decode call that stops after one new token (tokenising, prefill and the first token: when a
    streaming client would see it), `total_ms` a second call that makes the full answer. Both go through
    `_decode_batch` as a one-row batch of the request's role (its model as `role_model` gives it)."""
    sampling = sampling_for(entry, do_sample=do_sample, seed=seed, temperature=temperature, top_p=top_p)
    stops = eos_ids(entry)
    timings = []
    decoded: list[Decoded] = []
    for limit in (1, max_new_tokens):
        started = time.perf_counter()
        ids = request.prompt_ids
        prompt = list(ids) if ids is not None else encode(entry, request.prompt_text)
        decoded = _decode_batch(
            entry,
            [prompt],
            [request.adapter],
            None,
            max_new_tokens=limit,
            eos_ids=stops,
            sampling=sampling,
            step_mode=decode_step_mode(entry.device) if limit > 1 else "transformers",
        )
        if entry.device.startswith("cuda"):
            torch.cuda.synchronize()
        timings.append((time.perf_counter() - started) * 1000.0)
    tokens = decoded[0].tokens
    stop = next((n for n, t in enumerate(tokens) if t in stops), None)
    return Alone(
        key=request.key,
        first_token_ms=timings[0],
        total_ms=timings[1],
        output_tokens=len(tokens) if stop is None else stop + 1,
    )
