"""How much of the campaign its ratings cover, per task, and whether that is even enough for an
overall figure to stand for the whole campaign.

An overall figure averages over the rated prompts. When tasks are rated unevenly it describes the
rated mix, not the campaign: 20 rated sentiment prompts say nothing about three unrated tasks. The
rule: an overall claim is refused while a task with prompts has none rated, or while the rated
prompts' task mix differs from the campaign's by more than MAX_TASK_MIX_GAP (total variation
distance: the share of rated prompts that would have to move to another task to match).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MAX_TASK_MIX_GAP = 0.10
METHOD = (
    "per task: rated = prompts with at least one rating, out of the campaign's prompts of that task; "
    "ratings per prompt over rated prompts; task_mix_gap = total variation distance between the task "
    "mix of the rated prompts and of the campaign (0 = the same mix); coverage is even when every task "
    f"has a rated prompt and task_mix_gap <= {MAX_TASK_MIX_GAP:.2f}; overall claims are refused while "
    "it is not"
)


def _ratings_per_prompt(counts: np.ndarray) -> dict[str, Any]:
    rated = counts[counts > 0]
    if len(rated) == 0:
        return {"mean": None, "min": None, "max": None}
    return {"mean": float(rated.mean()), "min": int(rated.min()), "max": int(rated.max())}


def campaign_coverage(
    pair_tasks: Sequence[str], ratings_per_pair: np.ndarray, questions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``pair_tasks``: the task of each pair; ``ratings_per_pair``: its number of ratings (same order);
    ``questions``: the question raters answered per task, shown beside its row."""
    tasks_arr = np.asarray(list(pair_tasks), dtype=object)
    counts = np.asarray(ratings_per_pair, dtype=np.int64)
    n, n_rated = len(counts), int((counts > 0).sum())
    by_task: dict[str, Any] = {}
    for task in sorted(set(tasks_arr.tolist())):
        mine = counts[tasks_arr == task]
        rated = int((mine > 0).sum())
        by_task[task] = {
            "n_prompts": len(mine),
            "n_rated": rated,
            "share_rated": rated / len(mine),
            "ratings_per_prompt": _ratings_per_prompt(mine),
            "question": (questions or {}).get(task),
        }
    out: dict[str, Any] = {
        "n_prompts": n,
        "n_rated": n_rated,
        "share_rated": n_rated / n if n else None,
        "ratings_per_prompt": _ratings_per_prompt(counts),
        "by_task": by_task,
        "task_mix_gap": None,
        "even": None,
        "method": METHOD,
    }
    out["summary"] = coverage_summary(out)
    if n_rated == 0:
        out["even_reason"] = "no prompt is rated yet"
        return out
    gap = 0.5 * sum(abs(t["n_rated"] / n_rated - t["n_prompts"] / n) for t in by_task.values())
    out["task_mix_gap"] = gap
    unrated = [task for task, t in by_task.items() if t["n_rated"] == 0]
    out["even"] = not unrated and gap <= MAX_TASK_MIX_GAP + 1e-12
    if unrated:
        out["even_reason"] = (
            f"{_names(unrated)} {'has' if len(unrated) == 1 else 'have'} no rated prompt yet "
            f"({out['summary']}): the overall figures describe the rated tasks only"
        )
    elif not out["even"]:
        out["even_reason"] = (
            f"the rated prompts' task mix is {gap * 100:.0f} points (total variation) from the "
            f"campaign's, more than the {MAX_TASK_MIX_GAP * 100:.0f} allowed ({out['summary']}): the "
            "overall figures over-represent the tasks rated most"
        )
    return out


def coverage_summary(coverage: dict[str, Any]) -> str:
    """'20 of 100 prompts rated (20%): features 0 of 25, sentiment 20 of 25, ...' (every task named)."""
    n, rated = coverage["n_prompts"], coverage["n_rated"]
    if n == 0:
        return "the campaign has no prompts"
    tasks = ", ".join(f"{task} {t['n_rated']} of {t['n_prompts']}" for task, t in coverage["by_task"].items())
    return f"{rated} of {n} prompts rated ({rated / n * 100:.0f}%): {tasks}"


def _names(tasks: list[str]) -> str:
    if len(tasks) == 1:
        return tasks[0]
    return ", ".join(tasks[:-1]) + " and " + tasks[-1]
