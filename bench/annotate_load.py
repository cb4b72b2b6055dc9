"""Annotation load benchmark: N concurrent annotators doing next + rate cycles over the HTTP API.

    # against a running server, with a campaign and one API token per annotator:
    .venv/bin/python bench/annotate_load.py --url http://127.0.0.1:8000 --campaign 3 --tokens t1,t2,t3
    .venv/bin/python bench/annotate_load.py --url ... --campaign 3 --tokens @tokens.txt   # one per line

    # self-contained: a throwaway SQLite database, a synthetic campaign and a local gunicorn server
    .venv/bin/python bench/annotate_load.py --annotators 8 --prompts 200 --overlap 3

    # the production shape (issue 4's target: 50 annotators, p95 < 150 ms): a throwaway PostgreSQL
    # database evalsite_bench_<pid> on the server given (default postgres://postgres@127.0.0.1:5432/),
    # migrated, a campaign, gunicorn with DEBUG off; the database is dropped at the end
    .venv/bin/python bench/annotate_load.py --postgres
    .venv/bin/python bench/annotate_load.py --postgres postgres://user@db:5432/ --annotators 50 --workers 3

--think-ms N pauses about N ms between receiving a pair and rating it (people read before they score);
the default 0 is a stress test: every annotator always has a request in flight, so latency is mostly
queueing (Little's law: annotators / requests_per_s). All annotators start together (a barrier), so the
first 50 `next` calls arrive at once and show in p95 of short runs.

Each annotator loops: GET /api/campaigns/{id}/next/ → POST /api/assignments/{id}/rating/, until the
campaign has nothing left for them (204) or --cycles is reached. Prints one JSON object on its last
line: annotators, requests_per_s, p50_ms, p95_ms, errors, double_assignments (an assignment handed to
two annotators, or one annotator handed the same prompt twice after rating it), ratings, seconds and
the machine. Never asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load_setup import create_postgres_database, drop_postgres_database, self_contained


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


def request(
    url: str, token: str, method: str = "GET", body: dict | None = None
) -> tuple[int, dict | None, float]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Token {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    elapsed_ms = (time.perf_counter() - started) * 1000
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    return status, payload, elapsed_ms


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


def run_load(url: str, campaign: int, tokens: list[str], cycles: int, think_ms: float = 0) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    holders: dict[int, str] = {}  # assignment id -> token that received it
    rated_prompts: dict[str, set[str]] = {token: set() for token in tokens}
    double: list[str] = []
    ratings = 0
    lock = threading.Lock()
    barrier = threading.Barrier(len(tokens))

    def annotator(token: str) -> None:
        nonlocal ratings
        rng = random.Random(token)
        barrier.wait()
        for _ in range(cycles):
            status, body, ms = request(f"{url}/api/campaigns/{campaign}/next/", token)
            with lock:
                latencies.append(ms)
            if status == 204:
                return
            if status != 200 or not body:
                with lock:
                    errors.append(f"next {status}")
                return
            prompt_key = json.dumps(body["prompt"], sort_keys=True)
            with lock:
                other = holders.setdefault(body["assignment"], token)
                if other != token:
                    double.append(f"assignment {body['assignment']} given to two annotators")
                if prompt_key in rated_prompts[token]:
                    double.append("an annotator got a prompt they had already rated")
            if think_ms:
                time.sleep(rng.uniform(0.5, 1.5) * think_ms / 1000)
            rating = {
                "score_left": rng.randint(1, 5),
                "score_right": rng.randint(1, 5),
                # the campaign (bench/_load_setup.py) requires a verdict: no "not sure" (null)
                "correct_left": rng.choice([True, False]),
                "correct_right": rng.choice([True, False]),
                "preference": rng.choice(["left", "right", "tie", "both_bad"]),
                "comment": "",
                "duration_ms": 1000,
            }
            status, _, ms = request(
                f"{url}/api/assignments/{body['assignment']}/rating/", token, "POST", rating
            )
            with lock:
                latencies.append(ms)
                if status == 201:
                    ratings += 1
                    rated_prompts[token].add(prompt_key)
                elif status != 409:  # 409: the lock had expired and the pair filled up; not a server fault
                    errors.append(f"rating {status}")

    threads = [threading.Thread(target=annotator, args=(token,)) for token in tokens]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return {
        "annotators": len(tokens),
        "think_ms": think_ms,
        "requests_per_s": round(len(latencies) / seconds, 1) if seconds else None,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "errors": len(errors),
        "double_assignments": len(double),
        "requests": len(latencies),
        "ratings": ratings,
        "seconds": round(seconds, 2),
        "error_samples": sorted(set(errors))[:5],
    }


def warm_up(url: str, token: str, n: int) -> None:
    """Concurrent read-only requests so every worker has imported its URLconf and views before the
    measured run (the first request in a fresh worker is slow and is not what annotators see)."""

    def hit(_: int) -> None:
        for path in ("/healthz", "/api/campaigns/999999999/next/"):
            try:
                request(f"{url}{path}", token)
            except OSError:
                pass

    threads = [threading.Thread(target=hit, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover — not Linux
        return os.cpu_count() or 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="base URL of a running evalsite (omit for a self-contained run)")
    parser.add_argument("--campaign", type=int, help="campaign id (with --url)")
    parser.add_argument(
        "--tokens", help="comma-separated API tokens, or @FILE with one per line (with --url)"
    )
    parser.add_argument(
        "--annotators", type=int, help="self-contained run: annotators (8; 50 with --postgres)"
    )
    parser.add_argument(
        "--prompts", type=int, help="self-contained run: pairs in the campaign (100; 200 with --postgres)"
    )
    parser.add_argument("--overlap", type=int, default=3, help="self-contained run: overlap")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="postgres://postgres@127.0.0.1:5432/",
        metavar="SERVER_URL",
        help="self-contained run on a throwaway PostgreSQL database on this server "
        "(default postgres://postgres@127.0.0.1:5432/), dropped at the end",
    )
    parser.add_argument(
        "--workers", type=int, default=_cpu_count() + 1,
        help="self-contained run: gunicorn workers (CPUs + 1)",
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="self-contained run: threads per gunicorn worker"
    )
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0,
        help="mean pause between receiving a pair and rating it (uniform 0.5-1.5x); 0 = no pause, a stress "
        "test in which every annotator always has a request in flight",
    )
    parser.add_argument("--cycles", type=int, default=1000, help="at most this many next+rate cycles each")
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()

    if args.annotators is None:
        args.annotators = 50 if args.postgres else 8
    if args.prompts is None:
        args.prompts = 200 if args.postgres else 100
    server = None
    bench_db = None
    if args.postgres and args.url:
        parser.error("--postgres makes its own server; leave out --url")
    if args.url:
        if not args.campaign or not args.tokens:
            parser.error("--url needs --campaign and --tokens")
        raw = (
            Path(args.tokens[1:]).read_text()
            if args.tokens.startswith("@")
            else args.tokens.replace(",", "\n")
        )
        tokens = [line.strip() for line in raw.splitlines() if line.strip()]
        url, campaign, setup = args.url.rstrip("/"), args.campaign, "external server"
    try:
        if not args.url:
            database_url = None
            if args.postgres:
                bench_db, database_url = create_postgres_database(args.postgres)
            url, campaign, tokens, server, setup = self_contained(args, database_url)
            warm_up(url, tokens[0], args.workers * args.threads * 4)
        result = run_load(url, campaign, tokens, args.cycles, args.think_ms)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if bench_db is not None:
            from django.db import connections

            connections.close_all()
            drop_postgres_database(args.postgres, bench_db)
    load = os.getloadavg()
    result.update(
        {
            "server": setup,
            "machine": machine(),
            "load_average_at_end": [round(x, 2) for x in load],
            "note": "load generator and server share this machine's CPUs",
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
