"""The table the many-system ranking reads: one pairwise judgment per rating, checked and coded.

A judgment is a mapping with `prompt` (any hashable key), `task`, `system_a`, `system_b`, `score_a`,
`score_b` (the raters' 1–5 scores of the two answers) and `preference`: "a", "b", "tie" or
"both_bad" (case-insensitive). Bad input raises ValueError naming the judgment and the problem, so
a caller shows a clear error instead of a figure computed from garbage.

The unit is the prompt: the judgments of one prompt share its answers, so the bootstrap resamples
prompts with all their judgments. Within a prompt, the several raters of one pair of systems form one
unit: each of their judgments weighs 1 / (number of raters of that pair on that prompt), as the
two-system report averages a prompt's ratings before comparing prompts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reports.statistics.systems_fit import pairs_of

# outcome codes
A_PREFERRED, B_PREFERRED, TIE, BOTH_BAD = 0, 1, 2, 3
PREFERENCES = {"a": A_PREFERRED, "b": B_PREFERRED, "tie": TIE, "both_bad": BOTH_BAD}
FIELDS = ("prompt", "task", "system_a", "system_b", "score_a", "score_b", "preference")


@dataclass(frozen=True)
class JudgmentTable:
    """Coded judgments: per judgment the prompt code, both system indices, both scores and the outcome;
    per prompt code its task; `systems` names every system (index = position)."""

    systems: tuple[str, ...]
    prompt: np.ndarray
    prompt_task: np.ndarray
    system_a: np.ndarray
    system_b: np.ndarray
    score_a: np.ndarray
    score_b: np.ndarray
    outcome: np.ndarray

    @property
    def n_prompts(self) -> int:
        return len(self.prompt_task)

    def subset(self, mask: np.ndarray) -> JudgmentTable:
        """The judgments where `mask` holds, prompts renumbered; the same systems."""
        used, codes = np.unique(self.prompt[mask], return_inverse=True)
        return JudgmentTable(
            self.systems,
            codes.astype(np.int64),
            self.prompt_task[used],
            self.system_a[mask],
            self.system_b[mask],
            self.score_a[mask],
            self.score_b[mask],
            self.outcome[mask],
        )


def _score(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 5:
        raise ValueError(f"{where}: a score must be a whole number from 1 to 5, not {value!r}")
    return int(value)


def _system_index(name: Any, index: dict[str, int], fixed: bool, where: str) -> int:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: a system must be named by a non-empty string, not {name!r}")
    if name not in index:
        if fixed:
            raise ValueError(f"{where}: system {name!r} is not one of the systems given ({', '.join(index)})")
        index[name] = len(index)
    return index[name]


def judgment_table(
    judgments: Iterable[Mapping[str, Any]], systems: Sequence[str] | None = None
) -> JudgmentTable:
    """Check and code the judgments. `systems`: every system of the campaign, in the order to report
    them (a system never judged still gets a row, with the reason); by default those the judgments
    name, in order of appearance."""
    index: dict[str, int] = {}
    for name in systems or ():
        _system_index(name, index, False, "systems")
    fixed = systems is not None
    prompt_codes: dict[Any, int] = {}
    tasks: list[str] = []
    rows: list[tuple[int, int, int, int, int, int]] = []
    for i, judgment in enumerate(judgments):
        where = f"judgment {i + 1}"
        missing = [f for f in FIELDS if f not in judgment]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        a = _system_index(judgment["system_a"], index, fixed, where)
        b = _system_index(judgment["system_b"], index, fixed, where)
        if a == b:
            raise ValueError(f"{where}: system {judgment['system_a']!r} is judged against itself")
        preference = str(judgment["preference"]).lower()
        if preference not in PREFERENCES:
            raise ValueError(
                f"{where}: preference must be one of a, b, tie, both_bad, not {judgment['preference']!r}"
            )
        task = str(judgment["task"])
        key = judgment["prompt"]
        if key not in prompt_codes:
            prompt_codes[key] = len(tasks)
            tasks.append(task)
        elif tasks[prompt_codes[key]] != task:
            raise ValueError(
                f"{where}: prompt {key!r} is in task {task!r} here but {tasks[prompt_codes[key]]!r} before"
            )
        score_a, score_b = _score(judgment["score_a"], where), _score(judgment["score_b"], where)
        rows.append((prompt_codes[key], a, b, score_a, score_b, PREFERENCES[preference]))
    data = np.array(rows, dtype=np.int64).reshape(-1, 6)
    return JudgmentTable(
        tuple(index),
        data[:, 0],
        np.array(tasks, dtype=object),
        data[:, 1],
        data[:, 2],
        data[:, 3],
        data[:, 4],
        data[:, 5],
    )


def components(table: JudgmentTable) -> list[list[int]]:
    """The systems joined by chains of comparisons, largest (by judgments) first; a system never
    judged is a component of its own."""
    parent = list(range(len(table.systems)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(table.system_a.tolist(), table.system_b.tolist()):
        parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in range(len(table.systems)):
        groups.setdefault(root(i), []).append(i)
    judged = np.bincount(np.concatenate([table.system_a, table.system_b]), minlength=len(table.systems))
    return sorted(groups.values(), key=lambda g: (-int(judged[g].sum()), g[0]))


def unit_weights(table: JudgmentTable) -> np.ndarray:
    """Per judgment, 1 / the number of judgments of the same pair of systems on the same prompt."""
    lo = np.minimum(table.system_a, table.system_b)
    hi = np.maximum(table.system_a, table.system_b)
    k = len(table.systems)
    unit = (table.prompt * k + lo) * k + hi
    _, inverse, counts = np.unique(unit, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


def per_prompt_counts(table: JudgmentTable, members: list[int]) -> np.ndarray:
    """(prompts, pairs of `members`, 3) weighted outcome counts: wins of the pair's first system (in
    `members` order), wins of its second, ties (both_bad counts as a tie: neither answer preferred).
    Judgments with a system outside `members` are left out."""
    local = np.full(len(table.systems), -1)
    local[members] = np.arange(len(members))
    a, b = local[table.system_a], local[table.system_b]
    keep = (a >= 0) & (b >= 0)
    a, b = a[keep], b[keep]
    weights = unit_weights(table)[keep]
    outcome = table.outcome[keep]
    k = len(members)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    lo_pairs, hi_pairs = pairs_of(k)
    pair_code = np.full((k, k), -1)
    pair_code[lo_pairs, hi_pairs] = np.arange(len(lo_pairs))
    column = np.where(outcome >= TIE, 2, np.where((outcome == A_PREFERRED) == (a == lo), 0, 1))
    out = np.zeros((table.n_prompts, len(lo_pairs), 3))
    np.add.at(out, (table.prompt[keep], pair_code[lo, hi], column), weights)
    return out
