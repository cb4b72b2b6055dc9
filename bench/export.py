"""Export benchmark: 1,000,000 CSV rows (500,000 ratings) from a throwaway SQLite DB.

    .venv/bin/python bench/export.py [--prompts 50000] [--raters 10] [--format csv]

The data is built in a child process, so this process's peak RSS (`resource.getrusage`, ru_maxrss)
is the export's own, not the insertion's. (The other way round would not work: a child started
with fork+exec inherits its parent's ru_maxrss on Linux.) The export writes to a temporary file.
Prints one JSON object on its last line: rows, peak_rss_mb, baseline_rss_mb (after Django set-up,
before exporting), seconds (the export alone), chars and the machine. Never asserts a time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _campaign_data import build_campaign, machine, migrate, setup_throwaway_django


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def build_only(var_dir: str, n_prompts: int, raters: int, annotators: int) -> None:
    setup_throwaway_django(var_dir)
    migrate()
    print(build_campaign(n_prompts=n_prompts, raters_per_prompt=raters, n_annotators=annotators))


def export(var_dir: str, campaign_id: int, fmt: str) -> dict:
    setup_throwaway_django(var_dir)
    from annotations.models import Campaign
    from reports.exports import stream

    campaign = Campaign.objects.get(pk=campaign_id)
    baseline = _rss_mb()
    rows = 0
    size = 0
    started = time.perf_counter()
    with tempfile.TemporaryFile("w", encoding="utf-8", newline="") as out:
        for piece in stream(campaign, fmt=fmt):
            out.write(piece)
            size += len(piece)
            rows += piece.count("\n")
    seconds = time.perf_counter() - started
    if fmt == "csv":
        rows -= 1  # header
    return {
        "rows": rows,
        "peak_rss_mb": round(_rss_mb(), 1),
        "baseline_rss_mb": round(baseline, 1),
        "seconds": round(seconds, 2),
        "chars": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=50_000)
    parser.add_argument("--raters", type=int, default=10, help="ratings per prompt")
    parser.add_argument("--annotators", type=int, default=40)
    parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    parser.add_argument("--build-only", metavar="VAR_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        build_only(args.build_only, args.prompts, args.raters, args.annotators)
        return

    var_dir = tempfile.mkdtemp(prefix="evalsite-bench-")
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--build-only",
            var_dir,
            "--prompts",
            str(args.prompts),
            "--raters",
            str(args.raters),
            "--annotators",
            str(args.annotators),
        ],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    campaign_id = int(child.stdout.strip().splitlines()[-1])
    result = export(var_dir, campaign_id, args.format)
    result["format"] = args.format
    result["machine"] = machine()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
