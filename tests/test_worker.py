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

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.generation_fixtures import REVIEWS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).parent / "celery")
WORKER_REDIS_DB = 13  # not the shared redis_url db: a worker there could take other tests' messages


def _postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the server the suite uses; dropped at the end."""
    import dj_database_url
    import psycopg

    base = os.environ["DATABASE_URL"]
    parsed = dj_database_url.parse(base)
    name = f"evalsite_worker_{uuid.uuid4().hex[:10]}"
    admin_kwargs = {
        "host": parsed.get("HOST") or "127.0.0.1",
        "port": int(parsed.get("PORT") or 5432),
        "user": parsed.get("USER") or "postgres",
        "password": parsed.get("PASSWORD") or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**admin_kwargs) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(**admin_kwargs) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def process_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment for the site's processes: own database (migrated), var folder and model cache."""
    var = tmp_path_factory.mktemp("worker-var")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS"))}
    env.update(
        EVALSITE_VAR_DIR=str(var),
        SECRET_KEY="worker-test-secret",
        DEBUG="0",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="evalsite.settings",
    )
    env.pop("CELERY_BROKER_URL", None)
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        databases = _postgres_database()
        env["DATABASE_URL"] = next(databases)
    else:
        databases = iter(())
        env["DATABASE_URL"] = f"sqlite:///{var / 'worker-test.sqlite3'}"
    manage(env, "migrate", "--no-input", "-v", "0")
    yield env
    next(databases, None)  # drops the PostgreSQL database, if one was made


def manage(
    env: dict[str, str], *args: str, check: bool = True, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def query(env: dict[str, str], code: str) -> object:
    """Run Python against the processes' database (via `manage.py shell`); it prints one JSON value."""
    result = manage(env, "shell", "-c", code)
    return json.loads(result.stdout.strip().splitlines()[-1])


JOB_FACTS = """
import json
from generation.models import GenerationJob
job = GenerationJob.objects.get(pk={job_id})
print(json.dumps({{
    "status": job.status, "error": job.error, "total": job.total,
    "answers": sorted([a.prompt.external_id, a.role, a.fallback, a.output_tokens > 0, a.worker]
                      for a in job.answers.select_related("prompt")),
    "chunks": sorted([c.index, c.status, c.worker] for c in job.chunks.all()),
    "loads": [[a.kind, a.success, a.from_cache] for a in job.load_attempts.order_by("id")],
}}))
"""


@pytest.fixture
def dataset_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    rows = [
        {"external_id": f"q{i}", "task": task, "text": text, "context": context, "label": label}
        for i, (task, text, context, label) in enumerate(REVIEWS)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


class Worker:
    """A real `celery worker` process; its log is shown when a test fails."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.name = f"gen-test-{uuid.uuid4().hex[:8]}@%h"
        self.process = subprocess.Popen(
            [
                CELERY,
                "-A",
                "evalsite",
                "worker",
                "--pool",
                "solo",
                "--concurrency",
                "1",
                "-l",
                "info",
                "-n",
                self.name,
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def pid(self) -> int:
        return self.process.pid

    def log_tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown: finishes the current task
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[object]:
    workers: list[Worker] = []

    def start(env: dict[str, str]) -> Worker:
        worker = Worker(env, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


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
        f"queue_generation exited {result.returncode}:\n{result.stdout}\n{result.stderr}\nworker log:\n{worker.log_tail()}"
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
