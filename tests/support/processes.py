"""Real processes for the tests that start them: a database of their own, `manage.py` commands and
`celery worker` processes, as an operator runs them.

The worker is a separate process, so it cannot see pytest-django's test database (in memory on
SQLite, inside a rolled-back transaction otherwise). These helpers give the processes a database of
their own instead: a SQLite file, or, when the suite runs on PostgreSQL (DATABASE_URL=postgres://…),
a fresh PostgreSQL database created here and dropped afterwards. Fixtures here are registered for the
whole suite by tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.support.generation_data import REVIEWS


ROOT = Path(__file__).resolve().parents[2]
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
