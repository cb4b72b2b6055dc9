"""Which two systems each pair of a campaign shows, on a job of more than two systems (issue 17).

A campaign keeps one pair per prompt. With K systems there are C(K,2) system pairs; within each task
the prompts, in id order, take the system pairs in turn, so every system pair is shown on floor(n/C)
or ceil(n/C) of a task's n prompts (a balanced incomplete design). Two draws keep the design from
leaning the same way in every task, both from one `random.Random` seeded with "<job id>:<campaign
name>": the order of the system-pair cycle is shuffled once per campaign, then each task (in name
order) starts the cycle at its own drawn offset. The same job and name always give the same design.

A pair stores the earlier system in job order (`generation.models.job_system_names`) as its
`pretrained_answer` and the later as its `finetuned_answer`; which side each is shown on is still
drawn per assignment (annotations.assignment). A job of two systems needs none of this: its one
system pair is pre-trained vs fine-tuned on every prompt.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import combinations

SYSTEM_LABELS = {"pretrained": "pre-trained", "finetuned": "fine-tuned"}


def system_label(name: str) -> str:
    """A system's name as people read it: "pre-trained", "fine-tuned", else the name itself."""
    return SYSTEM_LABELS.get(name, name)


def design_seed(job_id: int, name: str) -> str:
    """The seed of a campaign's design: the job's id and the campaign's (stripped) name."""
    return f"{job_id}:{name.strip()}"


def system_pair_cycle(systems: list[str], rng: random.Random) -> list[tuple[str, str]]:
    """Every system pair, each as (earlier, later) in job order, in a shuffled order."""
    cycle = list(combinations(systems, 2))
    rng.shuffle(cycle)
    return cycle


def assign_system_pairs(
    systems: list[str], prompts_by_task: Mapping[str, Iterable[int]], seed: str
) -> dict[int, tuple[str, str]]:
    """{prompt id: (earlier system, later system)}: within each task the prompts, by id, take the
    shuffled system-pair cycle in turn from the task's drawn offset."""
    rng = random.Random(seed)
    cycle = system_pair_cycle(systems, rng)
    chosen: dict[int, tuple[str, str]] = {}
    for task in sorted(prompts_by_task):
        offset = rng.randrange(len(cycle))
        for k, prompt_id in enumerate(sorted(prompts_by_task[task])):
            chosen[prompt_id] = cycle[(offset + k) % len(cycle)]
    return chosen


def design_counts(
    systems: list[str], shown: Iterable[tuple[str, str, str]]
) -> dict[str, dict[tuple[str, str], int]]:
    """{task: {system pair: prompts}} from (task, earlier, later) rows; every system pair of the
    systems is listed for every task, unused ones with 0."""
    counted = Counter(shown)
    tasks = sorted({task for task, _, _ in counted})
    return {task: {(a, b): counted[(task, a, b)] for a, b in combinations(systems, 2)} for task in tasks}


def design_summary(systems: list[str], shown: Iterable[tuple[str, str, str]]) -> str:
    """One line: "4 systems, 6 system pairs, each shown on 3–4 prompts per task"."""
    counts = design_counts(systems, shown)
    n_pairs = len(systems) * (len(systems) - 1) // 2
    values = [n for per_task in counts.values() for n in per_task.values()]
    low, high = (min(values), max(values)) if values else (0, 0)
    span = f"{low}" if low == high else f"{low}–{high}"
    noun = "prompt" if high == 1 else "prompts"
    each = "each shown" if n_pairs > 1 else "shown"
    return (
        f"{len(systems)} systems ({', '.join(system_label(s) for s in systems)}), "
        f"{n_pairs} system pair{'s' if n_pairs != 1 else ''}, {each} on {span} {noun} per task"
    )
