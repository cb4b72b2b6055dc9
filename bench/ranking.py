"""Ranking many systems from blind pairwise judgments: how often the order is recovered and how often
the intervals cover the truth, on simulated campaigns of four systems.

    .venv/bin/python bench/ranking.py [--reps 500] [--ns 36,60,120,240] [--processes bt,...]
                                      [--resamples 2000] [--workers 2] [--seed 1]

Every campaign goes through the report's own function, `reports.statistics.systems.rank_systems`
(per-task rankings left out: `by_task=False`). Design: four systems, two tasks, prompts split evenly
between the tasks; within each task every pair of systems is shown on the same number of prompts
(a balanced design: the sizes are multiples of 12), one pair per prompt, 3 of 6 raters per pair,
which answer is A drawn at random per rating.

Processes: `bt` — Davidson's Bradley–Terry with ties, known strengths (0.6, 0.2, −0.2, −0.6) and
ν = 0.6, raters independent (the truth is the known strengths); `bt_prompt` — the same with each
system's strength varying by prompt (sd 0.5, shared by the prompt's raters, so they agree more than
chance; the truth is the fit on a campaign of 24,000 prompts from the same process and design);
`scores` — a score process: latent quality per system (3.45, 3.15, 2.85, 2.55) + prompt effect
(sd 0.8, shared by its answers) + prompt × system effect (sd 0.3) + rater leniency (sd 0.5) + noise
per answer (sd 0.7), rounded and clipped to 1–5; the preference follows the scores (equal scores: a
tie, both_bad when both are 2 or less); its truths (strengths, and each system's mean score
difference to the weakest, the baseline) come from a campaign of 24,000 prompts.

Strengths are identified only up to a shift, so coverage compares centred strengths (the fit's and
the truth's both sum to 0). Per process and number of prompts it prints (percent): the true order
recovered by the point estimates; each strength's 95% interval covering the truth (the report's basic
bootstrap interval: mean over systems and the worst system; and the percentile interval, mean, for
comparison); each rank interval covering the true rank, and all four at once; pairs told apart;
campaigns with a pair told apart in the wrong direction; and, for `scores`, the baseline difference
intervals covering the truth. Monte Carlo standard error at 95% coverage: sqrt(0.05 × 0.95 / reps)
per system (1.0 point at 500 reps). The last line is one JSON object with every figure, the machine
and the run time.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._machine import machine
from reports.statistics.systems import rank_systems
from reports.statistics.systems_fit import fit_point
from reports.statistics.systems_table import judgment_table, per_prompt_counts

SYSTEMS = ("s1", "s2", "s3", "s4")
TASKS = ("qa", "summary")
PAIRS = [(i, j) for i in range(4) for j in range(i + 1, 4)]
RATERS_PER_PAIR, POOL = 3, 6
POPULATION_PROMPTS = 24_000


@dataclass(frozen=True)
class Process:
    """One data-generating process for four systems."""

    name: str
    kind: str  # "bt" (Davidson draws) or "scores" (latent 1-5 scores, preference from them)
    strengths: tuple[float, ...] = (0.6, 0.2, -0.2, -0.6)
    nu: float = 0.6
    prompt_sd: float = 0.0  # bt: per prompt × system strength; scores: per prompt, shared
    quality: tuple[float, ...] = (3.45, 3.15, 2.85, 2.55)
    interaction_sd: float = 0.3
    leniency_sd: float = 0.5
    noise_sd: float = 0.7


PROCESSES = (
    Process("bt", "bt"),
    Process("bt_prompt", "bt", prompt_sd=0.5),
    Process("scores", "scores", prompt_sd=0.8),
)


def design(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per prompt its task and pair (balanced within each task, order shuffled), and per prompt the
    raters of its pair (distinct, from the pool)."""
    task = np.arange(n) % len(TASKS)
    pair = np.empty(n, dtype=np.int64)
    for t in range(len(TASKS)):
        where = np.flatnonzero(task == t)
        pair[where] = rng.permutation(np.arange(len(where)) % len(PAIRS))
    raters = np.argsort(rng.random((n, POOL)), axis=1)[:, :RATERS_PER_PAIR]
    return task, pair, raters


def _davidson(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, nu: float) -> np.ndarray:
    """Outcome per row: 0 = a preferred, 1 = b preferred, 2 = tie."""
    weights = np.stack([np.exp(a), np.exp(b), nu * np.exp((a + b) / 2)], axis=1)
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    return (rng.random(len(a))[:, None] > cum).sum(axis=1)


def simulate(proc: Process, rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """One campaign's judgments (the shape `rank_systems` reads)."""
    task, pair, raters = design(rng, n)
    first = np.array([p[0] for p in PAIRS])[pair]
    second = np.array([p[1] for p in PAIRS])[pair]
    swap = rng.random((n, RATERS_PER_PAIR)) < 0.5
    sys_a = np.where(swap, second[:, None], first[:, None]).ravel()
    sys_b = np.where(swap, first[:, None], second[:, None]).ravel()
    prompt = np.repeat(np.arange(n), RATERS_PER_PAIR)
    rater = raters.ravel()
    if proc.kind == "bt":
        shift = rng.normal(0, proc.prompt_sd, (n, len(SYSTEMS)))
        base = np.array(proc.strengths)
        outcome = _davidson(
            rng, base[sys_a] + shift[prompt, sys_a], base[sys_b] + shift[prompt, sys_b], proc.nu
        )
        score_a = np.where(outcome == 0, 4, 3)
        score_b = np.where(outcome == 1, 4, 3)
        preference = np.array(["a", "b", "tie"])[outcome]
    else:
        quality = np.array(proc.quality)[None, :] + rng.normal(0, proc.prompt_sd, (n, 1))
        quality = quality + rng.normal(0, proc.interaction_sd, (n, len(SYSTEMS)))
        leniency = rng.normal(0, proc.leniency_sd, POOL)[rater]

        def scored(s: np.ndarray) -> np.ndarray:
            latent = quality[prompt, s] + leniency + rng.normal(0, proc.noise_sd, len(s))
            return np.clip(np.rint(latent), 1, 5).astype(np.int64)

        score_a, score_b = scored(sys_a), scored(sys_b)
        equal = np.where(np.maximum(score_a, score_b) <= 2, "both_bad", "tie")
        preference = np.where(score_a > score_b, "a", np.where(score_a < score_b, "b", equal))
    return [
        {
            "prompt": int(p),
            "task": TASKS[task[p]],
            "system_a": SYSTEMS[a],
            "system_b": SYSTEMS[b],
            "score_a": int(sa),
            "score_b": int(sb),
            "preference": str(pref),
        }
        for p, a, b, sa, sb, pref in zip(prompt, sys_a, sys_b, score_a, score_b, preference)
    ]


@functools.lru_cache(maxsize=8)
def truth(proc: Process, seed: int) -> dict[str, Any]:
    """The centred strengths (known for `bt`, else fitted on a campaign of POPULATION_PROMPTS prompts),
    the true ranks, and for `scores` each system's expected mean score difference to the baseline."""
    if proc.kind == "bt" and proc.prompt_sd == 0:
        strengths = np.array(proc.strengths) - np.mean(proc.strengths)
        return {"strengths": strengths, "baseline_difference": None}
    judgments = simulate(proc, np.random.default_rng(seed), POPULATION_PROMPTS)
    table = judgment_table(judgments, SYSTEMS)
    strengths = fit_point(per_prompt_counts(table, list(range(len(SYSTEMS)))).sum(axis=0), len(SYSTEMS))
    out: dict[str, Any] = {"strengths": strengths[: len(SYSTEMS)], "baseline_difference": None}
    if proc.kind == "scores":
        # by symmetry of the design every prompt's pair is as likely: the expected difference is the
        # difference of the expected scores, estimated from every rating of the large campaign
        scores = np.concatenate([table.score_a, table.score_b]).astype(float)
        shown = np.concatenate([table.system_a, table.system_b])
        means = np.bincount(shown, weights=scores) / np.bincount(shown)
        out["baseline_difference"] = {
            SYSTEMS[s]: float(means[s] - means[-1]) for s in range(len(SYSTEMS) - 1)
        }
    return out


def _covers(ci: list[float] | None, value: float) -> bool | None:
    return None if ci is None else ci[0] <= value <= ci[1]


def one_campaign(
    proc: Process, rng: np.random.Generator, n: int, resamples: int, seed: int
) -> dict[str, Any]:
    """Simulate a campaign, rank it through `rank_systems`, and judge the result against the truth."""
    true = truth(proc, seed)
    true_rank = {SYSTEMS[i]: int(r) for i, r in enumerate(np.argsort(np.argsort(-true["strengths"])) + 1)}
    centred = {SYSTEMS[i]: float(v) for i, v in enumerate(true["strengths"])}
    out = rank_systems(
        simulate(proc, rng, n), systems=SYSTEMS, baseline=SYSTEMS[-1], n_resamples=resamples,
        seed=int(rng.integers(2**31)), by_task=False,
    )  # fmt: skip
    rows = out["strengths"]
    order = sorted(SYSTEMS, key=lambda s: -rows[s]["strength"])
    wrong = any(p["told_apart"] and centred[p["higher"]] < centred[p["lower"]] for p in out["pairwise"])
    baseline = out["baseline"]["comparisons"]
    base_cover = None
    if true["baseline_difference"]:
        judged = [_covers(baseline[s]["ci95"], d) for s, d in true["baseline_difference"].items()]
        base_cover = [c for c in judged if c is not None]
    return {
        "order": order == sorted(SYSTEMS, key=lambda s: true_rank[s]),
        "cover": [_covers(rows[s]["ci95"], centred[s]) for s in SYSTEMS],
        "cover_percentile": [_covers(rows[s].get("ci95_percentile"), centred[s]) for s in SYSTEMS],
        "rank_cover": [_covers(rows[s]["rank_ci95"], true_rank[s]) for s in SYSTEMS],
        "told_apart": float(np.mean([p["told_apart"] for p in out["pairwise"]])),
        "wrong": wrong,
        "refused": out["leaderboard"]["statement"]["refused"],
        "baseline_cover": base_cover,
    }


def _share(values: list[Any]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def run_cell(task: tuple[Process, int, int, int, int]) -> dict[str, Any]:
    """`reps` campaigns of one process and size; their rates."""
    proc, n, reps, resamples, seed = task
    rng = np.random.default_rng(seed)
    results = [one_campaign(proc, rng, n, resamples, seed=7_919 + PROCESSES.index(proc)) for _ in range(reps)]
    per_system = [_share([r["cover"][i] for r in results]) for i in range(len(SYSTEMS))]
    base = [c for r in results if r["baseline_cover"] is not None for c in r["baseline_cover"]]
    return {
        "process": proc.name,
        "n": n,
        "reps": reps,
        "truth": [float(v) for v in truth(proc, 7_919 + PROCESSES.index(proc))["strengths"]],
        "order_recovered": _share([r["order"] for r in results]),
        "strength_cover_mean": float(np.mean([c for c in per_system if c is not None])),
        "strength_cover_by_system": per_system,
        "strength_cover_worst": min(c for c in per_system if c is not None),
        "strength_cover_percentile": _share([c for r in results for c in r["cover_percentile"]]),
        "rank_cover_mean": _share([c for r in results for c in r["rank_cover"]]),
        "rank_cover_all": _share([all(r["rank_cover"]) for r in results]),
        "pairs_told_apart": _share([r["told_apart"] for r in results]),
        "wrong_direction": _share([r["wrong"] for r in results]),
        "statement_refused": _share([r["refused"] for r in results]),
        "baseline_cover": _share(base) if base else None,
    }


COLUMNS = (
    ("order", "order_recovered"),
    ("cover", "strength_cover_mean"),
    ("cover-worst", "strength_cover_worst"),
    ("cover-pct", "strength_cover_percentile"),
    ("rank-cover", "rank_cover_mean"),
    ("all-ranks", "rank_cover_all"),
    ("told-apart", "pairs_told_apart"),
    ("wrong-dir", "wrong_direction"),
    ("base-cover", "baseline_cover"),
)


def print_table(rows: list[dict[str, Any]]) -> None:
    """One line per process and size, figures in percent."""
    print(f"{'process':<10} {'n':>4} " + " ".join(f"{h:>11}" for h, _ in COLUMNS))
    for row in rows:
        cells = ["          —" if row[k] is None else f"{row[k] * 100:11.1f}" for _, k in COLUMNS]
        print(f"{row['process']:<10} {row['n']:>4} " + " ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=500, help="campaigns per process and size")
    parser.add_argument("--ns", default="36,60,120,240", help="numbers of prompts (multiples of 12)")
    parser.add_argument("--processes", default="", help="comma-separated names (default: all)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples per campaign")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    ns = [int(x) for x in args.ns.split(",")]
    if any(n % (len(TASKS) * len(PAIRS)) for n in ns):
        parser.error(f"every size must be a multiple of {len(TASKS) * len(PAIRS)} (a balanced design)")
    chosen = [p for p in PROCESSES if not args.processes or p.name in args.processes.split(",")]
    tasks = [
        (proc, n, args.reps, args.resamples, args.seed * 1_000_003 + i * 10_007 + j * 101)
        for i, proc in enumerate(chosen)
        for j, n in enumerate(ns)
    ]
    started = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            rows = list(pool.map(run_cell, tasks))
    else:
        rows = [run_cell(t) for t in tasks]
    seconds = time.perf_counter() - started
    print_table(rows)
    summary = {
        "reps": args.reps,
        "resamples": args.resamples,
        "monte_carlo_se_at_95pct": float(np.sqrt(0.05 * 0.95 / args.reps)),
        "processes": [asdict(p) for p in chosen],
        "rows": rows,
        "seconds": round(seconds, 1),
        "workers": args.workers,
        "machine": machine(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
