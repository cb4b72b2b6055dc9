"""Annotation load benchmark: N concurrent annotators doing next + rate cycles over the HTTP API.

    # against a running server, with a campaign and one API token per annotator:
    .venv/bin/python bench/annotate_load.py --url http://127.0.0.1:8000 --campaign 3 --tokens t1,t2,t3
    .venv/bin/python bench/annotate_load.py --url ... --campaign 3 --tokens @tokens.txt   # one per line

    # self-contained: a throwaway SQLite database, a synthetic campaign and a local gunicorn server
    .venv/bin/python bench/annotate_load.py --annotators 8 --prompts 200 --overlap 3

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
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


def run_load(url: str, campaign: int, tokens: list[str], cycles: int) -> dict:
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
            rating = {
                "score_left": rng.randint(1, 5),
                "score_right": rng.randint(1, 5),
                "correct_left": rng.choice([True, False, None]),
                "correct_right": rng.choice([True, False, None]),
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_contained(args) -> tuple[str, int, list[str], subprocess.Popen, str]:
    """Throwaway SQLite database with a synthetic finished job, a campaign, annotators and tokens."""
    var_dir = tempfile.mkdtemp(prefix="evalsite-annotate-load-")
    env = {
        **os.environ,
        "EVALSITE_VAR_DIR": var_dir,
        "DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "evalsite.settings",
    }
    env.pop("DATABASE_URL", None)
    os.environ.update({k: env[k] for k in ("EVALSITE_VAR_DIR", "DEBUG", "DJANGO_SETTINGS_MODULE")})
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotations.models import User
    from annotations.services import campaign_create
    from generation.models import Answer, Dataset, GenerationJob, JobStatus, Prompt, Role

    call_command("migrate", verbosity=0)
    dataset = Dataset.objects.create(name="load")
    job = GenerationJob.objects.create(
        name="load", dataset=dataset, status=JobStatus.SUCCEEDED, imported=True
    )
    prompts = Prompt.objects.bulk_create(
        Prompt(dataset=dataset, external_id=f"p{i}", task="relevance", text=f"Question {i}?", context="")
        for i in range(args.prompts)
    )
    Answer.objects.bulk_create(
        Answer(job=job, prompt=prompt, role=role, text=f"An answer to question {prompt.external_id}.")
        for prompt in prompts
        for role in (Role.PRETRAINED, Role.FINETUNED)
    )
    campaign = campaign_create(job=job, name="load", overlap=args.overlap)
    tokens = []
    for i in range(args.annotators):
        user = User.objects.create_user(username=f"load{i}", password="load-password-123", role="annotator")
        tokens.append(Token.objects.create(user=user).key)
    from django.db import connections

    connections.close_all()

    port = free_port()
    if shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn"):
        gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
        command = [
            gunicorn,
            "evalsite.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(args.workers),
            "--threads",
            "4",
            "--log-level",
            "warning",
        ]
        server_kind = f"gunicorn {args.workers} workers x 4 threads"
    else:
        command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        server_kind = "runserver"
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=sys.stderr)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(f"{url}/login/", timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    return url, campaign.pk, tokens, server, f"{server_kind}, SQLite"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="base URL of a running evalsite (omit for a self-contained run)")
    parser.add_argument("--campaign", type=int, help="campaign id (with --url)")
    parser.add_argument(
        "--tokens", help="comma-separated API tokens, or @FILE with one per line (with --url)"
    )
    parser.add_argument("--annotators", type=int, default=8, help="self-contained run: annotators")
    parser.add_argument("--prompts", type=int, default=100, help="self-contained run: pairs in the campaign")
    parser.add_argument("--overlap", type=int, default=3, help="self-contained run: overlap")
    parser.add_argument("--workers", type=int, default=2, help="self-contained run: gunicorn workers")
    parser.add_argument("--cycles", type=int, default=1000, help="at most this many next+rate cycles each")
    args = parser.parse_args()

    server = None
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
    else:
        url, campaign, tokens, server, setup = self_contained(args)
    try:
        result = run_load(url, campaign, tokens, args.cycles)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    result.update({"server": setup, "machine": machine()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
