"""The named types one decode() call carries from phase to phase: what every phase shares (`DecodeRun`),
a role's shared prefix, a prefilled group, the groups laid side by side (`Prefilled`), and the rows
still generating (`DecodeBatch`)."""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import DynamicCache, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .row_lora import RowSwitchedLoRA


def cache_argument(model: PreTrainedModel) -> str:
    """The name the model's forward takes its KV cache by: `cache` from transformers 5.2x on (which
    still accepts `past_key_values` with a deprecation warning), `past_key_values` before (5.17, the
    GPU machine's version, would silently ignore `cache=` and decode without a cache)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def new_cache(
    model: PreTrainedModel, keys: Sequence[torch.Tensor] = (), values: Sequence[torch.Tensor] = ()
) -> DynamicCache:
    """A DynamicCache for `model` holding the given per-layer keys and values (none: empty)."""
    cache = DynamicCache(config=model.config)
    for layer, (k, v) in enumerate(zip(keys, values, strict=True)):
        cache.update(k, v, layer)
    return cache


class RowClock:
    """Each row's share of the call's wall time: every charge splits the time since the previous one
    equally among the rows charged (so a row that stopped early is not charged for the steps after
    it, and the shares add up to the call's time)."""

    def __init__(self, rows: int, device: str) -> None:
        self.seconds = [0.0] * rows
        self._synchronize = device.startswith("cuda")
        self._last = time.perf_counter()

    def charge(self, rows: Sequence[int]) -> None:
        if self._synchronize:
            torch.cuda.synchronize()
        now = time.perf_counter()
        share = (now - self._last) / len(rows)
        for i in rows:
            self.seconds[i] += share
        self._last = now


@dataclass(frozen=True)
class AdapterRows:
    """Which adapter each prompt runs with (`flags`, by prompt index: 0 none, k the k-th adapter of
    `row_lora`), switched per row by `row_lora`; without one every flag is 0 and the model runs as the
    caller set it up."""

    flags: Sequence[int]
    row_lora: RowSwitchedLoRA | None = None

    def active(self, rows: Sequence[int]) -> AbstractContextManager[None]:
        """A block in which batch row r runs with the adapter prompt rows[r] runs with."""
        if self.row_lora is None:
            return nullcontext()
        return self.row_lora.rows([self.flags[i] for i in rows])


@dataclass
class DecodeRun:
    """What every phase of one decode() call shares: the model and how it takes its cache, the
    device, which rows run with the adapter, and the clock that charges rows for the time they took."""

    model: PreTrainedModel
    device: str
    adapter_rows: AdapterRows
    clock: RowClock
    cache_argument: str

    def forward(
        self, rows: Sequence[int], cache: DynamicCache, **inputs: torch.Tensor | int
    ) -> CausalLMOutputWithPast:
        """The model's forward for the prompts `rows` (one batch row each), filling `cache`."""
        with self.adapter_rows.active(rows):
            return self.model(**inputs, use_cache=True, **{self.cache_argument: cache})


@dataclass
class SharedPrefix:
    """The tokens every prompt of a role starts with, computed once: its length and its per-layer
    keys/values ([1, kv_heads, length, head_dim]; empty lists when nothing is shared)."""

    length: int
    keys: list[torch.Tensor]
    values: list[torch.Tensor]


@dataclass
class PrefilledGroup:
    """A prefill group after its forward pass: the prompts it holds (`rows`), the prefix length its
    cache starts with, its cache, its attention mask ([prefix][left-padded suffixes]), each row's
    last position and its next-token logits."""

    rows: list[int]
    shared: int
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    attention: torch.Tensor
    last_position: torch.Tensor
    logits: torch.Tensor


@dataclass
class Prefilled:
    """Every prefill group laid side by side as one batch: `rows` gives each batch row's prompt index."""

    rows: list[int]
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    attention: torch.Tensor
    position: torch.Tensor
    logits: torch.Tensor

    @classmethod
    def concatenate(cls, groups: Sequence[PrefilledGroup]) -> Prefilled:
        """The groups' caches as one, each as wide as the widest: [prefix][padding][suffix], the
        padding inserted after each group's prefix and masked out."""
        width = max(g.attention.shape[1] for g in groups)

        def widen(t: torch.Tensor, shared: int, axis: int) -> torch.Tensor:
            """`t` with zero columns inserted after its prefix along `axis`, up to `width` columns."""
            gap = width - t.shape[axis]
            if not gap:
                return t
            shape = list(t.shape)
            shape[axis] = gap
            head, tail = t.narrow(axis, 0, shared), t.narrow(axis, shared, t.shape[axis] - shared)
            return torch.cat([head, t.new_zeros(shape), tail], axis)

        layers = range(len(groups[0].keys))
        return cls(
            rows=[i for g in groups for i in g.rows],
            keys=[torch.cat([widen(g.keys[layer], g.shared, 2) for g in groups], 0) for layer in layers],
            values=[torch.cat([widen(g.values[layer], g.shared, 2) for g in groups], 0) for layer in layers],
            attention=torch.cat([widen(g.attention, g.shared, 1) for g in groups], 0),
            position=torch.cat([g.last_position for g in groups], 0),
            logits=torch.cat([g.logits for g in groups], 0),
        )


class Steps(Protocol):
    """How a DecodeBatch takes its steps: it owns the KV cache of the rows still in the batch."""

    def keep(self, rows: torch.Tensor) -> None: ...

    def step(self, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor: ...


@dataclass
class DecodeBatch:
    """The rows still generating: each one's prompt index (`rows`), the token it picked last, that
    token's predecessor's position, and the `steps` that hold their cache."""

    rows: list[int]
    token: torch.Tensor
    position: torch.Tensor
    steps: Steps

    def record(self, outputs: list[list[int]]) -> None:
        """Append each row's last token to its prompt's output."""
        for i, t in zip(self.rows, self.token.tolist(), strict=True):
            outputs[i].append(t)

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the batch rows at `index` (a long tensor), in the cache too."""
        self.rows = [self.rows[r] for r in index.tolist()]
        self.token, self.position = self.token[index], self.position[index]
        self.steps.keep(index)

    def filter(self, eos: torch.Tensor) -> bool:
        """Drop the rows whose last token is an end-of-sequence token; False when none is left."""
        finished = torch.isin(self.token, eos)
        if not bool(finished.any()):
            return True
        keep = (~finished).nonzero().squeeze(1)
        if keep.numel() == 0:
            return False
        self.keep(keep)
        return True
