"""The README's "Production" section, followed as written: `make serve` with the settings in the
environment starts the production set (migrations, static files, gunicorn, one Celery worker) on
PostgreSQL and Redis; a job queued through the API finishes, an annotator rates a pair, the export has
the rating; SIGTERM to `make serve` stops every process it started, and the worker records its stop.
With LOG_FORMAT=json the site's and the worker's log lines are JSON objects, one per state change of
the job, with its id."""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import time

import pytest

from tests.production.serve_set import (
    Client,
    ServeSet,
    free_port,
    fresh_postgres_database,
    fresh_redis_url,
    serve_env,
)
from tests.support.processes import manage, query

pytestmark = pytest.mark.slow

EXPORT_COLUMNS = [
    "campaign_id", "pair_id", "prompt_id", "prompt_external_id", "task", "annotator", "role", "position",
    "score", "correct", "preference", "rated_at", "duration_ms", "answer_chars",
    "comment", "revision", "revisions", "first_rated_at",  # appended after the SPEC's columns (issue 16)
]  # fmt: skip
RATING = {"score_left": 4, "score_right": 2, "correct_left": True, "correct_right": False,
          "preference": "left", "comment": "clear"}  # fmt: skip
WORKER_ROWS = """
import json
from generation.models import WorkerHeartbeat
print(json.dumps([[w.name, w.stopped_at is not None] for w in WorkerHeartbeat.objects.all()]))
"""
# a log record in a text format (Celery's "[2026-01-01 10:00:00,000: INFO/…]", gunicorn's "[2026-… +0000]
# [pid] [INFO]", Django's "2026-01-01 10:00:00,000 INFO name: …"): with LOG_FORMAT=json there is none
TEXT_RECORD = re.compile(r"^\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")


def last_line(result) -> str:
    return result.stdout.strip().splitlines()[-1]


def wait_for_job(client: Client, job_id: int, token: str, serve: ServeSet, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, job = client.json("GET", f"/api/jobs/{job_id}/", token=token)
        assert status == 200, job
        if job["status"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} never finished: {job}\n{serve.tail()}"
        time.sleep(0.5)


def rate_one_pair_and_export(env: dict, client: Client, job_id: int, admin: str) -> list[list[str]]:
    """The README's commands for a campaign and an annotator, one rating through the API, the CSV."""
    manage(env, "create_user", "ann", "--role", "annotator", "--password", "ann-password-1234")
    rater = last_line(manage(env, "api_token", "ann"))
    made = manage(env, "create_campaign", "--job", str(job_id), "--name", "prod", "--overlap", "1")
    campaign = last_line(made)
    status, pair = client.json("GET", f"/api/campaigns/{campaign}/next/", token=rater)
    assert status == 200 and pair["left"]["text"] and pair["right"]["text"], pair
    rating_url = f"/api/assignments/{pair['assignment']}/rating/"
    status, rated = client.json("POST", rating_url, RATING, token=rater)
    assert status == 201, rated
    status, content = client.call("GET", f"/api/campaigns/{campaign}/export.csv", token=admin)
    assert status == 200, content
    return list(csv.reader(io.StringIO(content.decode())))


def test_make_serve_runs_the_production_set_and_stopping_it_leaves_no_process(
    tmp_path, dataset_file, tiny_llama_dir, tiny_adapter_dir
):
    port, var = free_port(), tmp_path / "var"
    with fresh_postgres_database() as database_url:
        env = serve_env(database_url=database_url, redis_url=fresh_redis_url(), port=port, var_dir=var,
                        model_roots=[tiny_llama_dir, tiny_adapter_dir])  # fmt: skip
        env.update(WORKERS="1", LOG_FORMAT="json", WORKER_HEARTBEAT_SECONDS="1", WORKER_LIVENESS_SECONDS="5")
        serve = ServeSet(env, tmp_path / "serve.log")
        try:
            client = Client(port)
            client.wait_for("/healthz", 200, serve)  # migrated; the worker may still be starting
            manage(env, "create_user", "ops", "--role", "admin", "--password", "ops-password-1234")
            admin = last_line(manage(env, "api_token", "ops"))
            manage(env, "import_prompts", str(dataset_file), "--dataset", "reviews")
            client.wait_for("/healthz?workers=1", 200, serve)
            health = {"status": "ok", "database": "ok", "broker": "ok"}
            health["workers"] = {"live": 1, "liveness_seconds": 5}
            assert client.json("GET", "/healthz?workers=1") == (200, health)
            assert (var / "staticfiles" / "generation" / "job-progress.js").exists()  # collectstatic ran
            gunicorn, worker = serve.find("gunicorn", "evalsite.wsgi"), serve.find("celery", "worker.1@")
            assert worker.environ().get("CUDA_VISIBLE_DEVICES") == "0"  # worker N sees GPU N-1 only

            wanted = {"dataset": "reviews", "base_model": str(tiny_llama_dir), "max_new_tokens": 6}
            wanted.update(adapter_path=str(tiny_adapter_dir), batch_size=4, chunk_prompts=2)
            status, job = client.json("POST", "/api/jobs/", wanted, token=admin)
            assert status == 201, job
            job = wait_for_job(client, job["id"], admin, serve)
            assert (job["status"], job["done"], job["total"], job["fallback"]) == ("succeeded", 10, 10, 0)
            assert (job["workers_live"], job["waiting_for_worker"]) == (1, False)

            rows = rate_one_pair_and_export(env, client, job["id"], admin)
            assert rows[0] == EXPORT_COLUMNS and len(rows) == 3  # one rating x two answers
            assert {r[6] for r in rows[1:]} == {"pretrained", "finetuned"}
            assert {(r[7], r[8]) for r in rows[1:]} == {("left", "4"), ("right", "2")}
            assert {(r[14], r[15], r[16]) for r in rows[1:]} == {("clear", "1", "1")}  # comment, revision 1 of 1

            running = serve.processes()
            assert len(running) >= 6, running  # make, honcho + runners, gunicorn + its workers, celery
            alive = serve.stop()
            assert alive == [], f"left running after SIGTERM to make serve: {alive}\n{serve.tail()}"
            assert {gunicorn.pid, worker.pid} <= set(serve.seen)
        finally:
            serve.kill()
        # the warm shutdown was recorded: the worker counts as gone at once, not after the liveness limit
        assert query(env, WORKER_ROWS) == [[f"worker.1@{socket.gethostname()}", True]]

    lines = serve.text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    events = {
        (e.get("source"), e.get("status"))
        for e in entries
        if e.get("job_id") == job["id"] and "chunk_id" not in e
    }
    assert {("web.1", "queued"), ("worker.1", "running"), ("worker.1", "succeeded")} <= events, events
    assert not [line for line in lines if TEXT_RECORD.match(line)]
    assert any(e["logger"] == "gunicorn.error" and e["source"] == "web.1" for e in entries)
