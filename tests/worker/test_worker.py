"""Real processes end to end: `import_prompts`, a real Celery worker
(`celery -A evalsite worker --pool solo --concurrency 1`) and `queue_generation --wait`, through Redis
and through the server-less filesystem broker, on the tiny model.

The worker is a separate process, so it cannot see pytest-django's test database (in memory on
SQLite, inside a rolled-back transaction otherwise). These tests give the processes a database of
their own instead: a SQLite file, or, when the suite runs on PostgreSQL (DATABASE_URL=postgres://…),
a fresh PostgreSQL database created here and dropped afterwards. Everything is set up and checked
through the management commands, as an operator would.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.processes import JOB_FACTS, WORKER_REDIS_DB, Worker, manage, query

pytestmark = pytest.mark.slow


def run_job_through_a_worker(env, worker, dataset_file, name, tiny_llama_dir, tiny_adapter_dir, adapter=None):
    dataset_id = (
        manage(env, "import_prompts", str(dataset_file), "--dataset", name).stdout.strip().splitlines()[-1]
    )
    assert dataset_id.isdigit()
    started = time.monotonic()
    result = manage(
        env,
        "queue_generation",
        "--dataset",
        name,
        "--base",
        str(tiny_llama_dir),
        "--adapter",
        str(adapter or tiny_adapter_dir),
        "--max-new-tokens",
        "6",
        "--batch-size",
        "4",
        "--chunk-prompts",
        "2",
        "--wait",
        "--poll",
        "0.3",
        check=False,
        timeout=240,
    )
    assert result.returncode == 0, (
        f"queue_generation exited {result.returncode}:\n{result.stdout}\n{result.stderr}\n"
        f"worker log:\n{worker.log_tail()}"
    )
    job_id = result.stdout.strip().splitlines()[-1]
    assert job_id.isdigit()
    assert "10/10 answers" in result.stderr and "succeeded" in result.stderr
    return int(job_id), time.monotonic() - started


def check_job(facts: dict, worker: Worker, *, fallback: bool) -> None:
    assert facts["status"] == "succeeded", facts
    assert facts["total"] == 10 and len(facts["answers"]) == 10
    assert {(a[0], a[1]) for a in facts["answers"]} == {
        (f"q{i}", r) for i in range(5) for r in ("pretrained", "finetuned")
    }
    # made by the worker process, not by this one or queue_generation
    assert {a[4].rsplit(":", 1)[1] for a in facts["answers"]} == {str(worker.pid())}
    assert all(a[3] for a in facts["answers"])
    assert {a[2] for a in facts["answers"] if a[1] == "finetuned"} == {fallback}
    assert [c[1] for c in facts["chunks"]] == ["succeeded"] * 3


def test_a_real_worker_runs_jobs_through_redis(
    process_env, redis_url, start_worker, dataset_file, tiny_llama_dir, tiny_adapter_dir, tmp_path
):
    import redis

    broker = redis_url.rsplit("/", 1)[0] + f"/{WORKER_REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    env = {**process_env, "CELERY_BROKER_URL": broker}
    worker = start_worker(env)
    job_id, _ = run_job_through_a_worker(
        env, worker, dataset_file, "via-redis", tiny_llama_dir, tiny_adapter_dir
    )
    facts = query(env, JOB_FACTS.format(job_id=job_id))
    check_job(facts, worker, fallback=False)
    assert facts["loads"] == [["base", True, False], ["adapter", True, False]]

    # A second job on the same worker: the base stays loaded; a broken adapter means fallback answers.
    broken = tmp_path / "broken-adapter"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{not json")
    job_id, _ = run_job_through_a_worker(
        env, worker, dataset_file, "via-redis-2", tiny_llama_dir, tiny_adapter_dir, adapter=broken
    )
    facts = query(env, JOB_FACTS.format(job_id=job_id))
    check_job(facts, worker, fallback=True)
    assert facts["loads"] == [["base", True, True], ["adapter", False, False]]


def test_a_real_worker_runs_a_job_through_the_filesystem_broker(
    process_env, start_worker, dataset_file, tiny_llama_dir, tiny_adapter_dir
):
    env = dict(process_env)  # no CELERY_BROKER_URL: the default filesystem:// broker in EVALSITE_VAR_DIR
    worker = start_worker(env)
    job_id, _ = run_job_through_a_worker(
        env, worker, dataset_file, "via-files", tiny_llama_dir, tiny_adapter_dir
    )
    facts = query(env, JOB_FACTS.format(job_id=job_id))
    check_job(facts, worker, fallback=False)
    assert Path(env["EVALSITE_VAR_DIR"], "broker", "queue").is_dir()


def test_an_unreachable_broker_fails_the_job_and_queue_generation_exits_non_zero(process_env, dataset_file):
    env = {**process_env, "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"}
    manage(env, "import_prompts", str(dataset_file), "--dataset", "no-broker")
    result = manage(
        env, "queue_generation", "--dataset", "no-broker", "--base", "smollm2-demo", check=False, timeout=120
    )
    assert result.returncode == 1
    job_id = result.stdout.strip().splitlines()[-1]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(
        f"CommandError: job {job_id} failed: broker unreachable (redis://127.0.0.1:1/0)"
    ), error
    facts = query(env, JOB_FACTS.format(job_id=job_id))
    assert facts["status"] == "failed" and facts["answers"] == []
