"""How rows are grouped before any forward pass: the prefix a batch's prompts share, role-homogeneous
length-sorted groups, and how many rows one prefill group takes on a device."""

from __future__ import annotations

from collections.abc import Hashable, Sequence


def prefill_rows_for(device: str) -> int:
    """Rows per prefill group. On CPU prefill is compute-bound and padding costs, so small groups (8);
    a GPU is bound by kernel launches at this size, so fewer, larger groups (32). docs/performance.md
    has the measurement behind the CPU figure."""
    return 32 if device.startswith("cuda") else 8


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


def plan_batches(lengths: Sequence[int], roles: Sequence[Hashable], size: int) -> list[list[int]]:
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
