"""Coverage of the report's 95% intervals and the error rate of its claims, on simulated campaigns.

    .venv/bin/python bench/coverage.py [--reps 200] [--ns 5,10,15,20,30,50,100,200]
                                       [--processes leniency,...] [--workers 2] [--seed 1]

Each simulated campaign goes through the report's own code path: `relevance`, `win_rate`,
`campaign_coverage`, `relevance_claim` and `win_rate_claim` from `reports.statistics`, the functions
`reports.building.campaign_report` calls (the database read is skipped, and so is `wilcoxon_p`, which
no claim uses). Per data-generating
process and number of prompts it prints how often the 95% intervals miss the truth and how often a
claim is made under the null, and, on its last line, one JSON object with every figure, the target
(at most 6% wherever the report makes claims: n >= MIN_PROMPTS_FOR_CLAIM) and whether it was met.

Scores are integers 1-5: a latent quality per answer (prompt effect shared by both answers, the
fine-tuning effect on the fine-tuned one, rater leniency on both, rater taste on the fine-tuned one,
noise per rating) rounded and clipped to 1-5. Null campaigns have no fine-tuning effect: both answers
of a prompt have the same distribution. The truth an interval is judged against is the expected
figure over new prompts from the same process, scored by the same raters in the same pattern (what
the headline intervals generalise over); it is estimated from `--truth-copies` re-draws of the
campaign's prompts and noise, which can only add misses (about +0.1 points at 50 copies). A second
truth, over new raters too, shows what the headline intervals do not promise (the `rater_taste`
process), and is the truth of `across_raters`, the interval that counts raters as a sample too, and
of its claim (`new_raters_claim`): columns `null:raters-claim`, `alt:raters-CI-miss`, `alt:raters-claim`.
Rates are shares of `--reps` campaigns; their Monte Carlo standard error at 5% is
sqrt(0.05 × 0.95 / reps) (1.5 points at 200 reps, 0.5 at 2,000).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# one BLAS thread per worker process: the sign-flip products are small, and threads of several
# workers fighting over a few cores made them ten times slower
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._machine import machine
from reports.statistics.campaign_coverage import campaign_coverage
from reports.statistics.claims import (
    MIN_PROMPTS_FOR_CLAIM,
    new_raters_claim,
    ratings_each,
    relevance_claim,
    win_rate_claim,
)
from reports.statistics.intervals import wilson_interval
from reports.statistics.raters import across_raters
from reports.statistics.relevance import relevance, win_rate

TARGET = 0.06
QUESTION = {"task": "How good is each answer?"}


@dataclass(frozen=True)
class Process:
    """One data-generating process; latent values are on the 1-5 score scale before rounding."""

    name: str
    description: str
    raters: tuple[int, int] = (3, 3)  # ratings per prompt, drawn uniformly from this range
    pool: int = 6  # annotators in the campaign
    pt_mean: float = 3.0
    prompt_sd: float = 0.8  # prompt quality, shared by both answers
    effect: float = 0.4  # mean fine-tuning effect (alternative campaigns)
    effect_sd: float = 0.5  # its spread across prompts
    broken: tuple[float, float] = (0.0, 0.0)  # (share of prompts, latent drop) fine-tuning breaks
    noise_sd: float = 0.7  # per rating and answer
    leniency_sd: float = 0.5  # per rater, on both answers
    taste_sd: float = 0.0  # per rater, on the fine-tuned answer only


PROCESSES = (
    Process("leniency", "3 raters per prompt from 6; raters differ in leniency (sd 0.7)", leniency_sd=0.7),
    Process(
        "one_rater",
        "1 rating per prompt from 2 annotators; noisy (sd 1.0)",
        raters=(1, 1),
        pool=2,
        noise_sd=1.0,
    ),
    Process("raters_1_to_5", "1 to 5 raters per prompt from 8", raters=(1, 5), pool=8),
    Process(
        "ceiling_ties",
        "scores piled at 5: most differences 0 (skewed, tied)",
        pool=5,
        pt_mean=4.4,
        prompt_sd=0.5,
        effect=0.3,
        effect_sd=0.3,
        noise_sd=0.5,
        leniency_sd=0.3,
    ),
    Process(
        "coarse",
        "1 rater, little noise: differences mostly 0 or ±1 (ordinal rounding)",
        raters=(1, 1),
        pool=3,
        prompt_sd=0.6,
        effect=0.3,
        effect_sd=0.2,
        noise_sd=0.3,
        leniency_sd=0.2,
    ),
    Process(
        "skewed_effect",
        "helps 85% of prompts by 0.8, breaks 15% by 2.5 (skewed differences)",
        effect=0.8,
        effect_sd=0.2,
        broken=(0.15, 3.3),
    ),
    Process(
        "rater_taste",
        "4 annotators who differ in how much they like the fine-tuned answer (sd 0.4)",
        pool=4,
        effect=0.3,
        taste_sd=0.4,
    ),
)


def _design(proc: Process, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Which raters rate which prompt: (prompt code, rater) per rating, distinct raters per prompt."""
    k = rng.integers(proc.raters[0], proc.raters[1] + 1, size=n)
    order = np.argsort(rng.random((n, proc.pool)), axis=1)
    take = np.arange(proc.pool)[None, :] < k[:, None]
    prompts = np.repeat(np.arange(n), k)
    return prompts, order[take]


def _scores(
    proc: Process,
    rng: np.random.Generator,
    prompts: np.ndarray,
    raters: np.ndarray,
    rater_params: tuple,
    n: int,
    alternative: bool,
    copies: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores of `copies` independent draws of the campaign's prompts and noise (same raters, same
    design); prompt codes of copy c are offset by c × n."""
    leniency, taste = rater_params
    codes = (prompts[None, :] + n * np.arange(copies)[:, None]).ravel()
    rater = np.tile(raters, copies)
    quality = proc.pt_mean + rng.normal(0, proc.prompt_sd, n * copies)
    effect = np.zeros(n * copies)
    if alternative:
        effect = proc.effect + rng.normal(0, proc.effect_sd, n * copies)
        share, drop = proc.broken
        if share:
            effect -= drop * (rng.random(n * copies) < share)
    base = quality[codes] + leniency[rater]
    size = len(codes)
    pt = np.clip(np.rint(base + rng.normal(0, proc.noise_sd, size)), 1, 5)
    ft = np.clip(np.rint(base + effect[codes] + taste[rater] + rng.normal(0, proc.noise_sd, size)), 1, 5)
    return codes, pt.astype(np.int64), ft.astype(np.int64)


def _figures(codes: np.ndarray, pt: np.ndarray, ft: np.ndarray, n_prompts: int) -> tuple[float, float, float]:
    """(difference, improvement, fine-tuned share of prompts won): the truth from many copies."""
    counts = np.bincount(codes, minlength=n_prompts)
    pt_m = np.bincount(codes, weights=pt, minlength=n_prompts) / counts
    ft_m = np.bincount(codes, weights=ft, minlength=n_prompts) / counts
    d = np.bincount(codes, weights=ft - pt, minlength=n_prompts)
    return float(ft_m.mean() - pt_m.mean()), float(ft_m.mean() / pt_m.mean() - 1), float(np.mean(d > 0))


def population_truth(proc: Process, alternative: bool, seed: int, n: int = 100_000) -> tuple:
    """The figures over new prompts and new raters: every rating by a rater of its own."""
    rng = np.random.default_rng(seed)
    k = rng.integers(proc.raters[0], proc.raters[1] + 1, size=n)
    prompts = np.repeat(np.arange(n), k)
    params = (rng.normal(0, proc.leniency_sd, len(prompts)), rng.normal(0, proc.taste_sd, len(prompts)))
    codes, pt, ft = _scores(proc, rng, prompts, np.arange(len(prompts)), params, n, alternative, 1)
    return _figures(codes, pt, ft, n)


def _outside(ci: list[float] | None, truth: float) -> bool:
    return ci is not None and not ci[0] <= truth <= ci[1]


def one_campaign(proc: Process, rng: np.random.Generator, n: int, alternative: bool, copies: int) -> dict:
    """Simulate one campaign, build its figures and claims as the report does, and the truth."""
    prompts, raters = _design(proc, rng, n)
    params = (rng.normal(0, proc.leniency_sd, proc.pool), rng.normal(0, proc.taste_sd, proc.pool))
    codes, pt, ft = _scores(proc, rng, prompts, raters, params, n, alternative, 1)
    truth = _figures(*_scores(proc, rng, prompts, raters, params, n, alternative, copies), n * copies)
    rel = relevance(codes, pt, ft, n, wilcoxon=False)  # no claim uses wilcoxon_p (see `relevance`)
    rel["across_raters"] = across_raters(codes, raters, pt, ft, n)
    win = win_rate(pt, ft, codes, n)
    counts = np.bincount(codes, minlength=n)
    coverage = campaign_coverage(["task"] * n, counts, QUESTION)
    rel_claim = relevance_claim(rel, coverage, ratings_each(counts), len(np.unique(raters)))
    win_claim = win_rate_claim(win, coverage)
    return {
        "truth": truth,
        "difference": rel["difference"],
        "cis": (rel["difference_ci95"], rel["ci95"], win["by_prompt"]["ci95"], rel["across_raters"]["ci95"]),
        "claim": not rel_claim["refused"],
        "claim_win": not win_claim["refused"],
        "claim_new_raters": not new_raters_claim(rel, coverage)["refused"],
    }


def _miss_rate(results: list[dict], which: int, truths: list[float]) -> float | None:
    """Share of the campaigns showing interval `which` whose interval misses its truth."""
    judged = [_outside(r["cis"][which], t) for r, t in zip(results, truths) if r["cis"][which] is not None]
    return float(np.mean(judged)) if judged else None


def run_cell(task: tuple[Process, int, bool, int, int, int]) -> dict[str, Any]:
    """`reps` campaigns of one process, size and hypothesis; their rates."""
    proc, n, alternative, reps, copies, seed = task
    rng = np.random.default_rng(seed)
    population = population_truth(proc, alternative, seed + 1)
    results = [one_campaign(proc, rng, n, alternative, copies) for _ in range(reps)]
    claims = [r["claim"] for r in results]
    wrong = [r["claim"] and (r["difference"] > 0) != (r["truth"][0] > 0) for r in results]
    return {
        "process": proc.name,
        "n": n,
        "hypothesis": "alternative" if alternative else "null",
        "reps": reps,
        "claims_allowed": n >= MIN_PROMPTS_FOR_CLAIM,
        "panel_null": proc.taste_sd == 0,
        "truth_difference": float(np.mean([r["truth"][0] for r in results])),
        "ci_shown": float(np.mean([r["cis"][0] is not None for r in results])),
        "miss_difference": _miss_rate(results, 0, [r["truth"][0] for r in results]),
        "miss_improvement": _miss_rate(results, 1, [r["truth"][1] for r in results]),
        "miss_win_share": _miss_rate(results, 2, [r["truth"][2] for r in results]),
        "miss_difference_new_raters": _miss_rate(results, 0, [population[0]] * reps),
        "miss_across_raters": _miss_rate(results, 3, [population[0]] * reps),
        "claim_rate": float(np.mean(claims)),
        "new_raters_claim_rate": float(np.mean([r["claim_new_raters"] for r in results])),
        "win_claim_rate": float(np.mean([r["claim_win"] for r in results])),
        "wrong_direction_claims": float(np.mean(wrong)),
    }


def _cells(args: argparse.Namespace) -> list[tuple]:
    chosen = [p for p in PROCESSES if p.name in args.processes.split(",")] if args.processes else PROCESSES
    ns = [int(x) for x in args.ns.split(",")]
    tasks = []
    for i, proc in enumerate(chosen):
        for j, n in enumerate(ns):
            for alternative in (False, True):
                seed = args.seed * 1_000_003 + i * 10_007 + j * 101 + int(alternative)
                tasks.append((proc, n, alternative, args.reps, args.truth_copies, seed))
    return tasks


def _fmt(x: float | None) -> str:
    return "    —" if x is None else f"{x * 100:5.1f}"


COLUMNS = (
    # (header, hypothesis, key)
    ("null:claim", "null", "claim_rate"),
    ("null:win-claim", "null", "win_claim_rate"),
    ("null:CI-miss", "null", "miss_difference"),
    ("alt:CI-miss", "alternative", "miss_difference"),
    ("alt:impr-miss", "alternative", "miss_improvement"),
    ("alt:win-miss", "alternative", "miss_win_share"),
    ("alt:CI-shown", "alternative", "ci_shown"),
    ("alt:claim", "alternative", "claim_rate"),
    ("alt:miss-new-raters", "alternative", "miss_difference_new_raters"),
    ("null:raters-claim", "null", "new_raters_claim_rate"),
    ("alt:raters-CI-miss", "alternative", "miss_across_raters"),
    ("alt:raters-claim", "alternative", "new_raters_claim_rate"),
)


def print_table(rows: list[dict[str, Any]]) -> None:
    """One line per process and n (percent): null campaigns' claim rates and interval misses, then
    the alternative campaigns' misses, intervals shown and claims made (power)."""
    by = {(r["process"], r["n"], r["hypothesis"]): r for r in rows}
    print(f"{'process':<14} {'n':>4} {'claims':>6} " + " ".join(f"{h:>{len(h)}}" for h, _, _ in COLUMNS))
    for process, n in dict.fromkeys((r["process"], r["n"]) for r in rows):
        allowed = "yes" if by[(process, n, "null")]["claims_allowed"] else "no"
        cells = [f"{_fmt(by[(process, n, hyp)][key]):>{len(h)}}" for h, hyp, key in COLUMNS]
        print(f"{process:<14} {n:>4} {allowed:>6} " + " ".join(cells))


def _worst(rows: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The row with the highest rate under `key`, with the rate's Wilson 95% interval over its reps."""
    judged = [r for r in rows if r[key] is not None]
    if not judged:
        return None
    row = max(judged, key=lambda r: r[key])
    lo, hi = wilson_interval(round(row[key] * row["reps"]), row["reps"])  # type: ignore[misc]
    return {"rate": row[key], "ci95": [lo, hi], "process": row["process"], "n": row["n"]}


def _targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per kind of error, the worst cell where the report makes claims. Each rate is a share of a
    finite number of campaigns, so `meets_target` asks that no cell be clearly above TARGET (the lower
    end of its 95% interval above it); `all_within_target` asks it of every point estimate. Null claim
    rates count only processes whose null holds for the campaign's own raters too (a `rater_taste`
    panel has a taste, and claims describe that panel's scores correctly)."""
    allowed = [r for r in rows if r["claims_allowed"]]
    null = [r for r in allowed if r["hypothesis"] == "null" and r["panel_null"]]
    worst = {
        "null_claim_rate": _worst(null, "claim_rate"),
        "null_win_claim_rate": _worst(null, "win_claim_rate"),
        "ci_miss_difference": _worst(allowed, "miss_difference"),
        "ci_miss_improvement": _worst(allowed, "miss_improvement"),
        "ci_miss_win_share": _worst(allowed, "miss_win_share"),
        "null_new_raters_claim_rate": _worst(
            [r for r in allowed if r["hypothesis"] == "null"], "new_raters_claim_rate"
        ),
        "ci_miss_across_raters": _worst(allowed, "miss_across_raters"),
        "wrong_direction_claims": _worst(allowed, "wrong_direction_claims"),
    }
    present = [w for w in worst.values() if w is not None]
    reps = max(r["reps"] for r in rows)
    return {
        "worst_where_claims_made": worst,
        "monte_carlo_se_at_5pct": float(np.sqrt(0.05 * 0.95 / reps)),
        "meets_target": all(w["ci95"][0] <= TARGET for w in present),
        "all_within_target": all(w["rate"] <= TARGET for w in present),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=200, help="campaigns per process, size and hypothesis")
    parser.add_argument("--ns", default="5,10,15,20,30,50,100,200", help="numbers of prompts")
    parser.add_argument("--processes", default="", help="comma-separated names (default: all)")
    parser.add_argument("--truth-copies", type=int, default=50, help="re-draws behind each campaign's truth")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    tasks = _cells(args)
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            rows = list(pool.map(run_cell, tasks))
    else:
        rows = [run_cell(t) for t in tasks]
    seconds = time.perf_counter() - started
    print_table(rows)
    summary = _targets(rows)
    print(
        json.dumps(
            {
                "reps": args.reps,
                "truth_copies": args.truth_copies,
                "min_prompts_for_claim": MIN_PROMPTS_FOR_CLAIM,
                "target": TARGET,
                **summary,
                "processes": [asdict(p) for p in PROCESSES if any(r["process"] == p.name for r in rows)],
                "rows": rows,
                "seconds": round(seconds, 1),
                "workers": args.workers,
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
