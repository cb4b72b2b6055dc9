"""decode()'s first two phases: each role's shared prefix computed once, then the prompts' own
suffixes prefilled in length-sorted groups on top of it."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .batch import DecodeRun, PrefilledGroup, SharedPrefix, new_cache
from .planning import plan_batches, shared_prefix_length


def shared_prefixes(run: DecodeRun, prompts: Sequence[Sequence[int]]) -> dict[int, SharedPrefix]:
    """The prefix each role's prompts share, run once per role at batch size 1; its time is charged
    to every row of the role."""
    flags = run.adapter_rows.flags
    prefixes: dict[int, SharedPrefix] = {}
    for flag in sorted(set(flags)):
        rows = [i for i in range(len(prompts)) if flags[i] == flag]
        shared = shared_prefix_length([prompts[i] for i in rows])
        prefix = SharedPrefix(shared, [], [])
        if shared:
            cache = new_cache(run.model)
            ids = torch.tensor([list(prompts[rows[0]][:shared])], dtype=torch.long, device=run.device)
            run.forward(rows[:1], cache, input_ids=ids, logits_to_keep=1)
            prefix.keys = [layer.keys for layer in cache.layers]
            prefix.values = [layer.values for layer in cache.layers]
            run.clock.charge(rows)
        prefixes[flag] = prefix
    return prefixes


def prefill(
    run: DecodeRun,
    prompts: Sequence[Sequence[int]],
    prefixes: dict[int, SharedPrefix],
    *,
    pad_id: int,
    prefill_rows: int,
) -> list[PrefilledGroup]:
    """Every prompt's suffix (what follows its role's shared prefix) prefilled in role-homogeneous
    groups of `prefill_rows`, longest first, so a short prompt is not padded to the batch's longest."""
    flags = run.adapter_rows.flags
    suffix_lengths = [len(prompts[i]) - prefixes[flags[i]].length for i in range(len(prompts))]
    return [
        prefill_group(run, prompts, group, prefixes[flags[group[0]]], pad_id=pad_id)
        for group in plan_batches(suffix_lengths, flags, prefill_rows)
    ]


def prefill_group(
    run: DecodeRun, prompts: Sequence[Sequence[int]], group: list[int], prefix: SharedPrefix, *, pad_id: int
) -> PrefilledGroup:
    """One group's suffixes, left-padded to the group's widest, run on a copy of the prefix's cache;
    positions are counted without the padding."""
    rows, shared = len(group), prefix.length
    own = max(len(prompts[i]) for i in group) - shared  # the group's widest suffix
    ids = torch.full((rows, own), pad_id, dtype=torch.long)
    suffix_mask = torch.zeros((rows, own), dtype=torch.long)
    for r, i in enumerate(group):
        suffix = list(prompts[i][shared:])
        ids[r, own - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
        suffix_mask[r, own - len(suffix) :] = 1
    device = run.device
    ids, suffix_mask = ids.to(device), suffix_mask.to(device)
    position = shared + (suffix_mask.cumsum(-1) - 1).clamp(min=0)
    mask = torch.cat([torch.ones((rows, shared), dtype=torch.long, device=device), suffix_mask], 1)
    cache = new_cache(
        run.model,
        [k.expand(rows, -1, -1, -1) for k in prefix.keys],
        [v.expand(rows, -1, -1, -1) for v in prefix.values],
    )
    out = run.forward(
        group, cache, input_ids=ids, attention_mask=mask, position_ids=position, logits_to_keep=1
    )
    filled = PrefilledGroup(
        rows=group,
        shared=shared,
        keys=[layer.keys for layer in cache.layers],
        values=[layer.values for layer in cache.layers],
        attention=mask,
        last_position=position[:, -1],
        logits=out.logits[:, -1],
    )
    del cache, out
    run.clock.charge(group)
    return filled
