"""Many systems ranked from blind pairwise judgments: Bradley–Terry strengths with ties (Davidson),
bootstrap intervals over prompts for strengths and ranks, a win matrix, per-task rankings, each system
against a baseline, and a leaderboard that says which differences the data can tell apart.

`rank_systems(judgments, systems=..., baseline=...)` is the entry point; the judgment table is
described in `systems_table`, the fit and bootstrap in `systems_fit`, the win matrix and baseline
comparisons in `systems_compare`, and `checkpoint_vs_loss` (human strength against validation loss
for the epochs of one run) in `systems_checkpoints`. `bench/ranking.py` measures how often the order
is recovered and the intervals cover the truth on simulated campaigns.

Validity rules are the two-system report's: the prompt is the unit (every interval resamples or
averages prompts, the raters of one pair on one prompt are one unit), every figure carries its n,
and a claim on fewer than MIN_PROMPTS_FOR_CLAIM prompts is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from reports.statistics.claims import ALPHA, MIN_PROMPTS_FOR_CLAIM
from reports.statistics.intervals import holm
from reports.statistics.systems_checkpoints import checkpoint_vs_loss
from reports.statistics.systems_compare import baseline_comparisons, win_matrix
from reports.statistics.systems_fit import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    RIDGE,
    basic_interval,
    basic_p,
    bootstrap,
    bootstrap_summary,
    fit_point,
)
from reports.statistics.systems_table import JudgmentTable, components, judgment_table, per_prompt_counts

__all__ = ["checkpoint_vs_loss", "judgment_table", "rank_systems"]


def method_text(n_resamples: int, seed: int) -> str:
    return (
        "strength: Bradley–Terry on the natural-log scale (P(i preferred over j | not a tie) = "
        "1 / (1 + exp(strength_j − strength_i))), ties by Davidson's (1970) extension with one tie "
        "parameter ν; a both_bad verdict counts as a tie (neither answer preferred). Why Davidson rather "
        "than ties as half-wins: half-wins pull strengths together the more raters tie, Davidson keeps "
        "the scale of the decided judgments. Fit: penalised maximum likelihood (scipy.optimize.minimize), "
        f"ridge {RIDGE} × (Σ strength² + (log ν)²), which centres the strengths (they sum to 0: only "
        "differences are identified) and keeps them finite when a system won or lost every judgment; "
        "each rating weighs 1 / (raters of that pair on that prompt), so one prompt's pair is one unit. "
        f"Intervals: bootstrap over prompts ({n_resamples:,} resamples with replacement, each prompt with "
        f"all its judgments, seed {seed}); strengths and their pairwise differences get the basic "
        "(reverse-percentile) interval, 2 × estimate − the 97.5th and 2.5th percentiles of the resamples, "
        "which takes back the estimate's small-sample bias (strengths spread too far apart) where the "
        "percentile interval doubles it (bench/ranking.py measures both: docs/ranking.md); "
        "ci95_percentile is shown beside it; ranks (1 = strongest) get the percentiles of the resampled "
        "ranks; pairwise p: twice the smaller share of resamples beyond 2 × the difference on either "
        "side, plus one (it rejects exactly when the basic interval excludes 0), Holm-adjusted "
        f"over the pairs; two systems are told apart when the adjusted p < {ALPHA} (with "
        f"{n_resamples:,} resamples the smallest p is {2 / (n_resamples + 1):.4f}, and Holm multiplies it "
        f"by the number of pairs: with more than {int(ALPHA * (n_resamples + 1) / 2)} pairs none can be "
        "told apart, so many systems need more resamples). Only systems joined "
        "by chains of comparisons share one scale; a system outside the largest such group is not ranked."
    )


def _counts(table: JudgmentTable) -> tuple[np.ndarray, np.ndarray]:
    """Per system: judgments that showed it, and prompts on which it was judged."""
    k = len(table.systems)
    shown = np.concatenate([table.system_a, table.system_b])
    ratings = np.bincount(shown, minlength=k)
    cells = np.unique(np.concatenate([table.prompt, table.prompt]) * k + shown)
    prompts = np.bincount(cells % k, minlength=k)
    return ratings, prompts


def _pairwise(names: list[str], theta: np.ndarray, draws: np.ndarray | None) -> list[dict[str, Any]]:
    """Every pair of ranked systems: the difference of strengths (higher − lower by the estimate), its
    bootstrap interval and p, and the Holm-adjusted p over the pairs."""
    rows = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            hi, lo = (i, j) if theta[i] >= theta[j] else (j, i)
            row: dict[str, Any] = {
                "higher": names[hi],
                "lower": names[lo],
                "difference": float(theta[hi] - theta[lo]),
            }
            if draws is None:
                row.update(ci95=None, p=None, reason="an interval needs at least 2 prompts")
            else:
                d = draws[:, hi] - draws[:, lo]
                row["ci95"] = [float(v) for v in basic_interval(np.float64(row["difference"]), d)]
                row["p"] = basic_p(row["difference"], d)
            rows.append(row)
    for row, p_holm in zip(rows, holm([r["p"] for r in rows])):
        row["p_holm"] = p_holm
        row["told_apart"] = p_holm is not None and p_holm < ALPHA
    return rows


def _grouped(pairs: list[dict[str, Any]], order: list[str]) -> str:
    """'A above C and D; B above D' from the pairs told apart, in leaderboard order."""
    parts = []
    for name in order:
        below = [p["lower"] for p in pairs if p["higher"] == name]
        if below:
            below.sort(key=order.index)
            listed = below[0] if len(below) == 1 else ", ".join(below[:-1]) + " and " + below[-1]
            parts.append(f"{name} above {listed}")
    return "; ".join(parts)


def leaderboard_statement(
    order: list[str], pairwise: list[dict[str, Any]], n_prompts: int, n_ratings: int, metric: str
) -> dict[str, Any]:
    """Which differences the data can tell apart, in plain words; refused (saying why, with the
    sentence it would have read) below MIN_PROMPTS_FOR_CLAIM prompts or without intervals."""
    if len(order) < 2:
        reason = "fewer than two systems were compared with each other: nothing to rank"
        return {"metric": metric, "text": None, "refused": True, "reason": reason}
    if any(p["p"] is None for p in pairwise):
        reason = f"only {n_prompts} prompt(s): an interval needs at least 2"
        return {"metric": metric, "text": None, "refused": True, "reason": reason}
    told = [p for p in pairwise if p["told_apart"]]
    untold = [f"{p['higher']} and {p['lower']}" for p in pairwise if not p["told_apart"]]
    scope = (
        f"{n_prompts} prompts, {n_ratings} ratings; bootstrap over prompts, Holm-adjusted over "
        f"{len(pairwise)} pair(s), p < {ALPHA}"
    )
    if not told:
        text = f"The data cannot tell any of the {len(order)} systems apart ({scope})."
    elif not untold:
        text = f"The data tell every pair apart: {' > '.join(order)} ({scope})."
    else:
        text = (
            f"The data tell apart: {_grouped(told, order)}. They cannot tell apart: {'; '.join(untold)} "
            f"({scope})."
        )
    if n_prompts < MIN_PROMPTS_FOR_CLAIM:
        reason = (
            f"only {n_prompts} prompts; a ranking claim needs at least {MIN_PROMPTS_FOR_CLAIM}: the "
            "leaderboard is shown without a claim"
        )
        return {"metric": metric, "text": None, "refused": True, "reason": reason, "would_read": text}
    return {"metric": metric, "text": text, "refused": False, "reason": None}


def _unranked_reason(judged: int, main: list[str]) -> str:
    if judged == 0:
        return "never compared: no judgment shows this system"
    return (
        f"not compared, directly or through other systems, with {', '.join(main)}: its strength would "
        "be on another scale, so it is not ranked"
    )


def ranking(table: JudgmentTable, n_resamples: int, seed: int, metric: str) -> dict[str, Any]:
    """Strengths with intervals, rank intervals, pairwise differences, the tie parameter and the
    leaderboard of the systems in the largest connected group of `table`."""
    ratings, prompts = _counts(table)
    group = components(table)[0] if len(table.systems) else []
    members = group if len(group) >= 2 and ratings[group].sum() else []
    names = [table.systems[i] for i in members]
    out: dict[str, Any] = {
        "n_prompts": 0,
        "n_ratings": 0,
        "strengths": {},
        "pairwise": [],
        "tie_parameter": None,
    }
    rows = {}
    if members:
        inside = np.isin(table.system_a, members) & np.isin(table.system_b, members)
        sub = table.subset(inside)
        per_prompt = per_prompt_counts(sub, members)
        x = fit_point(per_prompt.sum(axis=0), len(members))
        theta = x[: len(members)]
        draws = bootstrap(per_prompt, len(members), x, n_resamples, seed) if sub.n_prompts >= 2 else None
        summary = bootstrap_summary(theta, draws[:, : len(members)]) if draws is not None else None
        out.update(n_prompts=sub.n_prompts, n_ratings=int(inside.sum()))
        nu = float(np.exp(x[-1]))
        out["tie_parameter"] = {
            "nu": nu,
            "ci95": None
            if draws is None
            else [float(v) for v in np.exp(basic_interval(x[-1], draws[:, -1]))],
            "tie_probability_equal_systems": nu / (2 + nu),
        }
        for pos, s in enumerate(members):
            row: dict[str, Any] = {"system": table.systems[s], "strength": float(theta[pos])}
            if summary is None:
                row.update(ci95=None, rank=int(np.argsort(np.argsort(-theta))[pos]) + 1, rank_ci95=None)
                row["ci95_reason"] = "an interval needs at least 2 prompts"
            else:
                row["ci95"] = [float(v) for v in summary["ci95"][pos]]
                row["ci95_percentile"] = [float(v) for v in summary["ci95_percentile"][pos]]
                row["rank"] = int(summary["rank"][pos])
                row["rank_ci95"] = [int(v) for v in summary["rank_ci95"][pos]]
            rows[table.systems[s]] = row
        out["pairwise"] = _pairwise(names, theta, None if draws is None else draws[:, : len(members)])
    for s, name in enumerate(table.systems):
        row = rows.get(name) or {
            "system": name, "strength": None, "ci95": None, "rank": None, "rank_ci95": None,
            "reason": _unranked_reason(int(ratings[s]), names),
        }  # fmt: skip
        row.update(n_ratings=int(ratings[s]), n_prompts=int(prompts[s]))
        out["strengths"][name] = row
    order = sorted(names, key=lambda n: -out["strengths"][n]["strength"])
    board = [out["strengths"][n] for n in order] + [r for n, r in out["strengths"].items() if n not in names]
    out["leaderboard"] = {
        "rows": board,
        "statement": leaderboard_statement(
            order, out["pairwise"], out["n_prompts"], out["n_ratings"], metric
        ),
    }
    return out


def rank_systems(
    judgments: Iterable[Mapping[str, Any]] | JudgmentTable,
    *,
    systems: Sequence[str] | None = None,
    baseline: str | None = None,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    by_task: bool = True,
) -> dict[str, Any]:
    """The many-system analysis of a campaign's judgments (see `systems_table` for their shape):
    overall ranking and leaderboard, win matrix, per-task rankings (`by_task`), and each system
    against `baseline`. Raises ValueError for bad judgments or a baseline that is not a system."""
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    # an already coded table (reports.systems_section builds one from the campaign's arrays) is used as is
    table = judgments if isinstance(judgments, JudgmentTable) else judgment_table(judgments, systems)
    if baseline is not None and baseline not in table.systems:
        raise ValueError(f"baseline {baseline!r} is not one of the systems ({', '.join(table.systems)})")
    out: dict[str, Any] = {
        "method": method_text(n_resamples, seed),
        "systems": list(table.systems),
        "n_judgments": len(table.prompt),
        "n_resamples": n_resamples,
        "seed": seed,
        "min_prompts_for_claim": MIN_PROMPTS_FOR_CLAIM,
    }
    out.update(ranking(table, n_resamples, seed, "systems.leaderboard"))
    out["win_matrix"] = win_matrix(table)
    out["baseline"] = baseline_comparisons(table, baseline)
    if by_task:
        tasks = sorted(set(table.prompt_task[table.prompt].tolist()))
        out["by_task"] = {
            task: ranking(
                table.subset(table.prompt_task[table.prompt] == task),
                n_resamples,
                seed,
                f"systems.leaderboard.{task}",
            )
            for task in tasks
        }
    return out
