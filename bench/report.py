"""Report benchmark: `campaign_report` over 100,000 ratings of 10,000 prompts in a throwaway SQLite DB.

    .venv/bin/python bench/report.py [--prompts 10000] [--raters 10]

Prints one JSON object on its last line: ratings, prompts, seconds (the first full report: queries
+ statistics, including the 10,000-pattern sign-flip test), warm_seconds (a second report),
relevance_seconds (the headline block alone on 10,000 prompts: intervals, sign-flip test, Wilcoxon)
and the machine. Never asserts a time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _campaign_data import build_campaign, machine, migrate, setup_throwaway_django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--raters", type=int, default=10, help="ratings per prompt")
    parser.add_argument("--annotators", type=int, default=40)
    args = parser.parse_args()

    setup_throwaway_django()
    migrate()
    campaign_id = build_campaign(
        n_prompts=args.prompts, raters_per_prompt=args.raters, n_annotators=args.annotators
    )

    import numpy as np

    from annotations.models import Campaign
    from reports.building import campaign_report
    from reports.statistics.relevance import relevance

    campaign = Campaign.objects.select_related("job", "job__finetune_run").get(pk=campaign_id)
    started = time.perf_counter()
    report = campaign_report(campaign)
    seconds = time.perf_counter() - started
    # a second run: the first also pays for warming imports (scipy.stats, krippendorff) and caches
    started = time.perf_counter()
    campaign_report(campaign)
    warm_seconds = time.perf_counter() - started

    rng = np.random.default_rng(0)
    pt = rng.integers(1, 6, args.prompts)
    ft = np.clip(pt + rng.integers(-1, 3, args.prompts), 1, 5)
    started = time.perf_counter()
    relevance(np.arange(args.prompts), pt, ft, args.prompts)
    relevance_seconds = time.perf_counter() - started

    print(
        json.dumps(
            {
                "ratings": report["n_ratings"],
                "prompts": report["n_prompts"],
                "seconds": round(seconds, 3),
                "warm_seconds": round(warm_seconds, 3),
                "relevance_seconds": round(relevance_seconds, 3),
                "difference": report["relevance"]["difference"],
                "difference_ci95": report["relevance"]["difference_ci95"],
                "improvement": report["relevance"]["improvement"],
                "ci95": report["relevance"]["ci95"],
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
