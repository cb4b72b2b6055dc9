"""The worker's decode loop: many prompts, one model, a KV cache that only holds rows still generating.

`decode()` replaces `model.generate()` for the worker's batches. It does three things generate()
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
3. **Finished rows leave the batch.** A row that emitted an end-of-sequence token is removed from
   the KV cache and the batch at once, and cache columns that no remaining row attends to (padding
   only the removed rows needed) are dropped too. generate() keeps computing finished rows until the
   last row of the batch stops.

Decoding is greedy by default; with `do_sample` it draws from the softmax of the logits divided by
`temperature`, restricted to the `top_k` most likely tokens and the smallest set whose probability
reaches `top_p`, with a generator seeded by the job's seed.

Only torch and transformers' DynamicCache are used: the cache's per-layer `keys`/`values` tensors
([batch, kv_heads, positions, head_dim]) are edited in place, which is transformers 5's layout
(the version is pinned in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


# Rows per batch unless a job says otherwise, and prompts per chunk (both roles of a chunk's prompts
# then fill one batch each). On 2 CPU cores the demo model decodes 32 rows in 1.4x the time of 16.
DEFAULT_BATCH_SIZE = 32


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


def _new_cache(model: Any, keys: list[Any], values: list[Any]) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    for layer, (k, v) in enumerate(zip(keys, values, strict=True)):
        cache.update(k, v, layer)
    return cache


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
) -> list[list[int]]:
    """Generate for every prompt (lists of token ids). Returns each row's new tokens, ending with the
    first end-of-sequence token when one came, else exactly `max_new_tokens` long.

    `model` is a transformers causal LM (a peft-injected one is fine: enable or disable its adapter
    around the call). Call under `torch.inference_mode()`."""
    import torch

    if not prompts:
        return []
    if any(len(p) == 0 for p in prompts):
        raise ValueError("a prompt has no tokens")
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    generator = None
    if sampling.do_sample:
        generator = torch.Generator(device=device)
        generator.manual_seed(sampling.seed)

    n = len(prompts)
    shared = shared_prefix_length(prompts)
    prefix_keys: list[Any] = []
    prefix_values: list[Any] = []
    if shared:
        from transformers import DynamicCache

        cache = DynamicCache(config=model.config)
        prefix = torch.tensor([list(prompts[0][:shared])], dtype=torch.long, device=device)
        model(input_ids=prefix, cache=cache, use_cache=True, logits_to_keep=1)
        prefix_keys = [layer.keys for layer in cache.layers]
        prefix_values = [layer.values for layer in cache.layers]

    # prefill the suffixes, longest first, in groups; lay the groups' caches side by side
    order = sorted(range(n), key=lambda i: (-(len(prompts[i]) - shared), i))
    width = len(prompts[order[0]]) - shared
    layer_count = len(prefix_keys) if shared else None
    group_keys: list[list[Any]] = []
    group_values: list[list[Any]] = []
    masks: list[Any] = []
    positions: list[Any] = []
    first_logits: list[Any] = []
    for start in range(0, n, prefill_rows):
        group = order[start : start + prefill_rows]
        rows = len(group)
        own = len(prompts[group[0]]) - shared  # the group's widest suffix
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
        out = model(
            input_ids=ids, attention_mask=mask, position_ids=position, cache=cache, use_cache=True,
            logits_to_keep=1,
        )
        first_logits.append(out.logits[:, -1])
        gap = width - own  # pad this group's cache to the widest group's, in the middle

        def widen(t: Any, gap: int = gap) -> Any:
            if not gap:
                return t
            zeros = t.new_zeros((*t.shape[:2], gap, t.shape[3]))
            return torch.cat([t[:, :, :shared], zeros, t[:, :, shared:]], 2)

        group_keys.append([widen(layer.keys) for layer in cache.layers])
        group_values.append([widen(layer.values) for layer in cache.layers])
        masks.append(
            torch.cat([mask[:, :shared], mask.new_zeros((rows, gap)), mask[:, shared:]], 1) if gap else mask
        )
        positions.append(position[:, -1])
        layer_count = len(cache.layers)
        del cache, out

    assert layer_count is not None
    if len(group_keys) == 1:
        cache = _new_cache(model, group_keys[0], group_values[0])
    else:
        cache = _new_cache(
            model,
            [torch.cat([g[layer] for g in group_keys], 0) for layer in range(layer_count)],
            [torch.cat([g[layer] for g in group_values], 0) for layer in range(layer_count)],
        )
    del group_keys, group_values
    attention = torch.cat(masks, 0)
    position = torch.cat(positions, 0)
    eos = torch.tensor(sorted(eos_ids) or [-1], dtype=torch.long, device=device)

    outputs: list[list[int]] = [[] for _ in range(n)]
    live = list(order)  # original index of each row still in the batch
    token = _pick(torch.cat(first_logits, 0), sampling, generator)
    for step in range(max_new_tokens):
        for i, t in zip(live, token.tolist(), strict=True):
            outputs[i].append(t)
        if step == max_new_tokens - 1:
            break
        finished = torch.isin(token, eos)
        if bool(finished.any()):
            keep = (~finished).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            kept = keep.tolist()
            live = [live[r] for r in kept]
            token, position, attention = token[keep], position[keep], attention[keep]
            columns = attention.any(0)
            drop_columns = not bool(columns.all())
            column_index = columns.nonzero().squeeze(1) if drop_columns else None
            for layer in cache.layers:
                layer.keys, layer.values = layer.keys[keep], layer.values[keep]
                if column_index is not None:
                    layer.keys = layer.keys.index_select(2, column_index)
                    layer.values = layer.values.index_select(2, column_index)
            if column_index is not None:
                attention = attention[:, column_index]
        attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], 1)
        position = position + 1
        out = model(
            input_ids=token[:, None], attention_mask=attention, position_ids=position[:, None], cache=cache,
            use_cache=True,
        )
        token = _pick(out.logits[:, -1], sampling, generator)
    return outputs
