"""The worker's decode loop: many prompts, one model, a KV cache that only holds rows still generating.

`decode()` replaces `model.generate()` for the worker's batches. It does five things generate()
does not, each measured on the demo model (see the README's performance section):

1. **Shared prefix computed once.** Every prompt of a job starts with the same chat-template header
   and system prompt (26 of 46-72 tokens for the demo prompts). The longest prefix the batch's
   prompts share is run once, at batch size 1, and its keys/values are copied to every row; only
   each prompt's own suffix is prefilled. On CPU, where prefill is compute-bound, this is the
   largest saving.
2. **Prefill in length-sorted groups.** Suffixes are prefilled `prefill_rows` at a time, longest
   first, so a short prompt is not padded to the longest one of the whole batch. The groups' caches
   are then laid side by side, padded in the middle ([prefix][padding][suffix]) with the padding
   masked out, and positions counted without it.
3. **Both roles in one batch** (`RowSwitchedLoRA`, "switch" adapter mode): pre-trained and
   fine-tuned rows share the decode steps, with the LoRA adapter switched per row, so a chunk's two
   roles take as many steps as its longest answer instead of the sum of each role's longest.
4. **Finished rows leave the batch.** A row that emitted an end-of-sequence token is removed from
   the KV cache and the batch at once, and cache columns that no remaining row attends to (padding
   only the removed rows needed) are dropped too. generate() keeps computing finished rows until the
   last row of the batch stops.

5. **Static steps** (`step_mode`, see static_step.py). After the prefill, the steps can run through a
   hand-written llama step over a preallocated KV cache instead of the transformers forward (no
   per-step cache concatenation or mask building), and on CUDA as replays of one captured graph.
   `bench/step_modes.py --tiny --layers 22 --width 256` (TinyLlama's depth and heads, narrow, so
   mostly host work; 2 AVX2 CPU cores): a step at 4 rows 49.3 ms through transformers, 43.8 ms
   static; at 128 rows 204.8 against 171.8 ms. The demo model's bench is compute-bound on that
   machine and shows no difference beyond its noise (44-49 tok/s either way).

Each row is charged an equal share of every forward pass it took part in (`Decoded.seconds`).

Decoding is greedy by default; with `do_sample` it draws from the softmax of the logits divided by
`temperature`, restricted to the `top_k` most likely tokens and the smallest set whose probability
reaches `top_p`, with a generator seeded by the job's seed.

Besides torch it uses transformers' DynamicCache and peft's LoRA Linear layer: the cache's per-layer
`keys`/`values` tensors ([batch, kv_heads, positions, head_dim]) are edited in place, which is
transformers 5's layout (the version is pinned in pyproject.toml).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from . import static_step

# How decode() takes its steps after the prefill: through the transformers forward with a growing
# DynamicCache, through static_step's hand-written llama step over a preallocated cache, or as
# replays of a CUDA graph of that step (greedy only, sampling runs "static"; on a CPU the same
# fixed-shape loop runs without a graph).
STEP_MODES = ("transformers", "static", "graph")

# Rows per batch unless a job says otherwise; a chunk holds half as many prompts, so its two roles fill
# one batch. Demo model, 2 CPU cores, 32 prompts x 2 roles x 48 tokens: 9.5 s in one batch of 64 rows,
# 12.3-13.1 s in two of 32.
DEFAULT_BATCH_SIZE = 64


def prefill_rows_for(device: str) -> int:
    """Rows per prefill group. On CPU prefill is compute-bound and padding costs: 8 rows per group
    (demo model, one batch of 64 rows: 9.5-10.8 s with 8, 10.5-10.8 s with 32). A GPU is bound by
    kernel launches at this size, so fewer, larger groups (32; not yet measured there)."""
    return 32 if device.startswith("cuda") else 8


@dataclass(frozen=True)
class Sampling:
    """How the next token is picked: greedy unless `do_sample`."""

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    top_p: float = 1.0  # 1.0: no nucleus cut
    seed: int = 0


def shared_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every prompt shares, leaving each prompt at least one token of its own
    (the last prompt token has to run with the row's suffix to give the row its first logits)."""
    shortest = min(len(p) for p in prompts)
    first = prompts[0]
    n = 0
    limit = shortest - 1
    while n < limit and all(p[n] == first[n] for p in prompts):
        n += 1
    return n


def plan_batches(lengths: Sequence[int], roles: Sequence[Any], size: int) -> list[list[int]]:
    """Row indices grouped into role-homogeneous groups of at most `size` rows, longest first within
    each role (roles: an adapter name or None, or a flag). The engine's batches and decode()'s prefill
    groups are both made this way."""
    order = sorted(
        range(len(lengths)),
        key=lambda i: (roles[i] is not None, "" if roles[i] is None else str(roles[i]), -lengths[i], i),
    )
    groups: list[list[int]] = []
    for i in order:
        if groups and len(groups[-1]) < size and roles[groups[-1][0]] == roles[i]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _pick(logits: Any, sampling: Sampling, generator: Any) -> Any:
    import torch

    if not sampling.do_sample:
        return logits.argmax(-1)
    scores = logits.float() / max(sampling.temperature, 1e-5)
    if sampling.top_k and sampling.top_k < scores.shape[-1]:
        kth = torch.topk(scores, sampling.top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if sampling.top_p < 1.0:
        ordered, index = torch.sort(scores, dim=-1, descending=True)
        cumulative = ordered.softmax(-1).cumsum(-1)
        # drop a token when the tokens before it already reach top_p (the most likely one always stays)
        drop = (cumulative - ordered.softmax(-1)) >= sampling.top_p
        scores = scores.masked_fill(drop.scatter(-1, index, drop), float("-inf"))
    probs = scores.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _cache_argument(model: Any) -> str:
    """The name the model's forward takes its KV cache by: `cache` from transformers 5.2x on (which
    still accepts `past_key_values` with a deprecation warning), `past_key_values` before (5.17, the
    GPU machine's version, would silently ignore `cache=` and decode without a cache)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _new_cache(model: Any, keys: list[Any], values: list[Any]) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    for layer, (k, v) in enumerate(zip(keys, values, strict=True)):
        cache.update(k, v, layer)
    return cache


class RowSwitchedLoRA:
    """One peft LoRA adapter switched on for some rows of a batch and off for the others.

    peft's vanilla LoRA layer adds `lora_B(lora_A(x)) * scaling` to the base layer's output. Giving
    every layer a per-row scaling (its scale for adapter rows, 0 for base rows, see `_RowScale`) makes one
    forward pass answer both roles: base rows get exactly the base output plus zero. peft's own mixed batches
    (`adapter_names=`) split every LoRA layer's input by adapter instead. Demo model, 2 shared CPU
    cores, one decode step at 64 rows: base alone 191-195 ms, switched per row 184-208 ms (two runs
    each, within the noise of each other), peft's mixed batch 217 ms (one run).
    Only plain LoRA on Linear layers qualifies (`supports`); anything else runs in role-homogeneous
    batches. The peft model must have `name` as its active adapter, adapters not disabled."""

    def __init__(self, peft_model: Any, name: str) -> None:
        self.name = name
        self.layers = [m for m in peft_model.modules() if _is_plain_lora_linear(m, name)]
        self._scales: dict[tuple[float, tuple[bool, ...], str], _RowScale] = {}

    @classmethod
    def supports(cls, peft_model: Any, name: str) -> bool:
        lora_layers = [m for m in peft_model.modules() if name in (getattr(m, "lora_A", None) or {})]
        return bool(lora_layers) and all(_is_plain_lora_linear(m, name) for m in lora_layers)

    @contextmanager
    def rows(self, adapter_rows: Sequence[bool]) -> Iterator[None]:
        import torch

        originals = [layer.scaling[self.name] for layer in self.layers]
        flags = tuple(adapter_rows)
        for layer, scale in zip(self.layers, originals, strict=True):
            device = layer.lora_B[self.name].weight.device
            key = (float(scale), flags, str(device))
            row_scale = self._scales.get(key)
            if row_scale is None:
                base_rows = [row for row, on in enumerate(flags) if not on]
                index = torch.tensor(base_rows, dtype=torch.long, device=device) if base_rows else None
                row_scale = _RowScale(index, float(scale))
                if len(self._scales) > 256:
                    self._scales.clear()
                self._scales[key] = row_scale
            layer.scaling[self.name] = row_scale
        try:
            yield
        finally:
            for layer, scale in zip(self.layers, originals, strict=True):
                layer.scaling[self.name] = scale


class _RowScale:
    """What peft's `lora_B(lora_A(x)) * scaling` multiplies by under RowSwitchedLoRA: the adapter's
    scale, then the pre-trained rows (`base_rows`, an index along dim 0) filled with an exact 0, so a
    NaN or inf in the LoRA branch (fp16 overflow, say) cannot reach them as a multiplication by 0 would
    (NaN * 0 is NaN). torch's `Tensor.__mul__` returns NotImplemented for this type, so Python calls
    __rmul__. Cost, 2 CPU cores, per call: 41 us for an 8 x 46 x 576 prefill output and 23 us for
    64 x 1 x 576 in a decode step, against 17 and 6 us for a multiplication by a per-row scale tensor
    (a boolean-mask `torch.where` took 118 and 38 us)."""

    __slots__ = ("base_rows", "scale")

    def __init__(self, base_rows: Any, scale: float) -> None:
        self.base_rows, self.scale = base_rows, scale

    def __rmul__(self, lora_output: Any) -> Any:
        scaled = lora_output * self.scale
        return scaled if self.base_rows is None else scaled.index_fill_(0, self.base_rows, 0.0)


def _is_plain_lora_linear(module: Any, name: str) -> bool:
    from peft.tuners.lora.layer import Linear as LoraLinear

    return (
        isinstance(module, LoraLinear)
        and name in module.lora_A
        and name not in getattr(module, "lora_variant", {})
        and not getattr(module, "merged", False)
        and isinstance(module.scaling.get(name), (int, float))
    )


@dataclass
class Decoded:
    """One row's new tokens and its share of the decode call's wall time: each forward pass's time
    split equally among the rows it computed (so a row that stopped early is not charged for the
    steps after it, and the shares of a call add up to the call's time)."""

    tokens: list[int]
    seconds: float


def decode(
    model: Any,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_ids: set[int],
    pad_id: int,
    device: str,
    sampling: Sampling = Sampling(),
    prefill_rows: int = 8,
    adapter_rows: Sequence[bool] | None = None,
    row_lora: RowSwitchedLoRA | None = None,
    step_mode: str = "transformers",
) -> list[Decoded]:
    """Generate for every prompt (lists of token ids). Each row's tokens end with the first
    end-of-sequence token when one came, else are exactly `max_new_tokens` long.

    `model` is a transformers causal LM (a peft-injected one is fine: enable or disable its adapter
    around the call). With `row_lora`, `adapter_rows` says which rows run with its adapter; the
    prefix, prefill groups and KV layout are kept per role. Call under `torch.inference_mode()`."""
    import torch

    if not prompts:
        return []
    if any(len(p) == 0 for p in prompts):
        raise ValueError("a prompt has no tokens")
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    n = len(prompts)
    flags = [False] * n
    if row_lora is not None and adapter_rows is not None:
        flags = [bool(f) for f in adapter_rows]
    if len(flags) != n:
        raise ValueError("adapter_rows needs one flag per prompt")
    if step_mode not in STEP_MODES:
        raise ValueError(f"step_mode must be one of {', '.join(STEP_MODES)}, not {step_mode!r}")
    if step_mode != "transformers" and not static_step.supports(model):
        step_mode = "transformers"
    if step_mode == "graph" and sampling.do_sample:
        step_mode = "static"
    generator = None
    if sampling.do_sample:
        generator = torch.Generator(device=device)
        generator.manual_seed(sampling.seed)

    def roles(rows: Sequence[int]) -> Any:
        return row_lora.rows([flags[i] for i in rows]) if row_lora is not None else nullcontext()

    cache_argument = _cache_argument(model)
    seconds = [0.0] * n
    clock = time.perf_counter()

    def charge(rows: Sequence[int]) -> None:
        """The time since the last charge, split equally among `rows`."""
        nonlocal clock
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        now = time.perf_counter()
        share = (now - clock) / len(rows)
        for i in rows:
            seconds[i] += share
        clock = now

    # the prefix each role's prompts share, computed once per role at batch size 1
    prefixes: dict[bool, tuple[int, list[Any], list[Any]]] = {}
    for flag in sorted(set(flags)):
        rows = [i for i in range(n) if flags[i] == flag]
        shared = shared_prefix_length([prompts[i] for i in rows])
        keys: list[Any] = []
        values: list[Any] = []
        if shared:
            from transformers import DynamicCache

            cache = DynamicCache(config=model.config)
            prefix = torch.tensor([list(prompts[rows[0]][:shared])], dtype=torch.long, device=device)
            with roles(rows[:1]):
                model(input_ids=prefix, use_cache=True, logits_to_keep=1, **{cache_argument: cache})
            keys = [layer.keys for layer in cache.layers]
            values = [layer.values for layer in cache.layers]
            charge(rows)
        prefixes[flag] = (shared, keys, values)

    # prefill the suffixes, per role, longest first, in groups
    suffix_lengths = [len(prompts[i]) - prefixes[flags[i]][0] for i in range(n)]
    groups = plan_batches(suffix_lengths, flags, prefill_rows)
    filled = []  # per group: (rows, prefix length, keys, values, mask, last position, logits)
    for group in groups:
        rows = len(group)
        shared, prefix_keys, prefix_values = prefixes[flags[group[0]]]
        own = max(len(prompts[i]) for i in group) - shared  # the group's widest suffix
        ids = torch.full((rows, own), pad_id, dtype=torch.long)
        suffix_mask = torch.zeros((rows, own), dtype=torch.long)
        for r, i in enumerate(group):
            suffix = list(prompts[i][shared:])
            ids[r, own - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
            suffix_mask[r, own - len(suffix) :] = 1
        ids, suffix_mask = ids.to(device), suffix_mask.to(device)
        position = shared + (suffix_mask.cumsum(-1) - 1).clamp(min=0)
        mask = torch.cat([torch.ones((rows, shared), dtype=torch.long, device=device), suffix_mask], 1)
        if shared:
            cache = _new_cache(
                model,
                [k.expand(rows, -1, -1, -1) for k in prefix_keys],
                [v.expand(rows, -1, -1, -1) for v in prefix_values],
            )
        else:
            from transformers import DynamicCache

            cache = DynamicCache(config=model.config)
        with roles(group):
            out = model(
                input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True,
                logits_to_keep=1, **{cache_argument: cache},
            )
        keys = [layer.keys for layer in cache.layers]
        values = [layer.values for layer in cache.layers]
        filled.append((group, shared, keys, values, mask, position[:, -1], out.logits[:, -1]))
        del cache, out
        charge(group)

    # lay the groups' caches side by side: [prefix][padding][suffix], all as wide as the widest
    width = max(f[4].shape[1] for f in filled)

    def widen(t: Any, shared: int, axis: int) -> Any:
        """`t` with zero columns inserted after its prefix along `axis`, up to `width` columns."""
        gap = width - t.shape[axis]
        if not gap:
            return t
        shape = list(t.shape)
        shape[axis] = gap
        head, tail = t.narrow(axis, 0, shared), t.narrow(axis, shared, t.shape[axis] - shared)
        return torch.cat([head, t.new_zeros(shape), tail], axis)

    layer_count = len(filled[0][2])
    cache = _new_cache(
        model,
        [torch.cat([widen(f[2][layer], f[1], 2) for f in filled], 0) for layer in range(layer_count)],
        [torch.cat([widen(f[3][layer], f[1], 2) for f in filled], 0) for layer in range(layer_count)],
    )
    attention = torch.cat([widen(f[4], f[1], 1) for f in filled], 0)
    position = torch.cat([f[5] for f in filled], 0)
    first_logits = torch.cat([f[6] for f in filled], 0)
    live = [i for f in filled for i in f[0]]  # original index of each row still in the batch
    del filled
    eos = torch.tensor(sorted(eos_ids) or [-1], dtype=torch.long, device=device)

    outputs: list[list[int]] = [[] for _ in range(n)]
    token = _pick(first_logits, sampling, generator)
    if step_mode == "transformers":
        steps: Any = _DynamicSteps(model, cache, attention, cache_argument)
    else:
        step = static_step.StaticStep(model, len(live), attention.shape[1] + max_new_tokens, device)
        filled = step.load(
            [layer.keys for layer in cache.layers], [layer.values for layer in cache.layers], attention
        )
        del cache
        if step_mode == "graph":
            _graph_steps(
                step, filled, position, token, live, outputs,
                max_new_tokens=max_new_tokens, eos=eos, device=device, roles=roles, charge=charge,
            )
            return [Decoded(tokens=outputs[i], seconds=seconds[i]) for i in range(n)]
        steps = _StaticSteps(step, filled, device)

    for index in range(max_new_tokens):
        for i, t in zip(live, token.tolist(), strict=True):
            outputs[i].append(t)
        charge(live)
        if index == max_new_tokens - 1:
            break
        finished = torch.isin(token, eos)
        if bool(finished.any()):
            keep = (~finished).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            live = [live[r] for r in keep.tolist()]
            token, position = token[keep], position[keep]
            steps.keep(keep)
        position = position + 1
        with roles(live):
            logits = steps.step(token, position)
        token = _pick(logits, sampling, generator)
    return [Decoded(tokens=outputs[i], seconds=seconds[i]) for i in range(n)]


class _DynamicSteps:
    """Steps through the model's own forward; its DynamicCache grows a column per step."""

    def __init__(self, model: Any, cache: Any, attention: Any, cache_argument: str) -> None:
        self.model, self.cache, self.attention = model, cache, attention
        self.cache_argument = cache_argument

    def keep(self, rows: Any) -> None:
        """Keep only `rows` (an index tensor), and drop the cache columns none of them attends to."""
        self.attention = self.attention[rows]
        columns = self.attention.any(0)
        column_index = None if bool(columns.all()) else columns.nonzero().squeeze(1)
        for layer in self.cache.layers:
            layer.keys, layer.values = layer.keys[rows], layer.values[rows]
            if column_index is not None:
                layer.keys = layer.keys.index_select(2, column_index)
                layer.values = layer.values.index_select(2, column_index)
        if column_index is not None:
            self.attention = self.attention[:, column_index]

    def step(self, token: Any, position: Any) -> Any:
        import torch

        new_column = self.attention.new_ones((self.attention.shape[0], 1))
        self.attention = torch.cat([self.attention, new_column], 1)
        out = self.model(
            input_ids=token[:, None], attention_mask=self.attention, position_ids=position[:, None],
            use_cache=True, **{self.cache_argument: self.cache},
        )
        return out.logits[:, -1]


class _StaticSteps:
    """Steps through static_step's hand-written step, eagerly: column by column after the `filled`
    prefill columns, attending only to the columns written so far."""

    def __init__(self, step: Any, filled: int, device: str) -> None:
        self.step_, self.next_column, self.device = step, filled, device

    def keep(self, rows: Any) -> None:
        self.step_.keep(rows)

    def step(self, token: Any, position: Any) -> Any:
        import torch

        column = torch.tensor([self.next_column], dtype=torch.long, device=self.device)
        self.next_column += 1
        return self.step_.step(token, position, column, upto=self.next_column)


# how many graph replays run between checks that every row has stopped
_GRAPH_CHECK_EVERY = 8


def _graph_steps(
    step: Any, filled: int, position: Any, token: Any, live: list[int], outputs: list[list[int]], *,
    max_new_tokens: int, eos: Any, device: str, roles: Any, charge: Any,
) -> None:
    """decode()'s steps as replays of one CUDA graph of `step` (a loaded static_step.StaticStep;
    greedy only; on a CPU, the same loop without a graph). Rows are not dropped (the graph's shapes
    are fixed): a finished row keeps being computed, its tokens after end-of-sequence are discarded,
    and every row is charged an equal share of the steps' time. Every `_GRAPH_CHECK_EVERY` steps the
    host checks whether all rows have stopped."""
    import torch

    token = token.clone()
    next_position = (position + 1).clone()
    column = torch.tensor([filled], dtype=torch.long, device=device)
    history = [token.clone()]
    with roles(live):
        graph = static_step.GreedySteps(
            step, token, next_position, column, capture=device.startswith("cuda")
        )
        stopped = torch.isin(token, eos)
        for index in range(1, max_new_tokens):
            graph.replay()
            history.append(token.clone())
            stopped |= torch.isin(token, eos)
            if index % _GRAPH_CHECK_EVERY == 0 and bool(stopped.all()):
                break
    charge(live)
    tokens = torch.stack(history, 1).tolist()
    stops = set(eos.tolist())
    for row, i in enumerate(live):
        produced = tokens[row]
        stop = next((k for k, t in enumerate(produced) if t in stops), None)
        outputs[i].extend(produced if stop is None else produced[: stop + 1])
