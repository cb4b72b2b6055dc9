"""Exactly once under faults: a worker SIGKILLed mid-chunk, messages delivered twice, poison chunks.

The real-process tests run two `celery worker` processes on Redis against a database of their own
(the helpers and fixtures of tests/support/processes.py), with a short visibility timeout so that the
message of a killed worker is delivered again within seconds instead of hours. The in-process tests
pin down chunk_run's rules for deliveries that find their chunk running, finished or given up.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from generation.configs import GenerationSettings
from generation.jobs import job_create
from generation.models import Answer, FailureKind, GenerationChunk, JobStatus
from generation.worker import chunks as worker_chunks
from generation.worker.chunks import chunk_run
from generation.worker.role_models import RoleModels
from tests.support.generation_data import make_dataset
from tests.support.processes import ROOT, Worker, manage, process_env  # noqa: F401 (process_env: fixture)

WORKER_REDIS_DB = 12  # not 13 (tests/worker/test_worker.py) nor 15 (the shared redis_url fixture)
VISIBILITY_TIMEOUT_S = 6
PROMPTS = 12
CHUNK_PROMPTS = 2

# kombu's Redis transport looks for unacknowledged messages older than the visibility timeout only
# every unacked_restore_interval x unacked_restore_throttle seconds (10 x 10 by default): with the
# defaults a killed worker's chunk would come back after up to 100 s more. The test workers sweep
# every second so redelivery takes about the visibility timeout; production settings keep the
# 4-hour timeout, where the extra 100 s do not matter.
WORKER_MAIN = """
import sys
from evalsite.celery import app
app.conf.broker_transport_options = {
    **app.conf.broker_transport_options, "unacked_restore_interval": 1, "unacked_restore_throttle": 1,
}
app.worker_main(["worker", "--pool", "solo", "--concurrency", "1", "-l", "info", "-n", sys.argv[1]])
"""


class FaultWorker(Worker):
    """A `celery worker` (solo pool) on the evalsite app that sweeps for lost messages every second."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.name = f"fault-test-{uuid.uuid4().hex[:8]}@%h"
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER_MAIN, self.name],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def redis_env(process_env, redis_url) -> dict[str, str]:  # noqa: F811
    import redis

    broker = redis_url.rsplit("/", 1)[0] + f"/{WORKER_REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    return {
        **process_env,
        "CELERY_BROKER_URL": broker,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S),
        "EVALSITE_TORCH_THREADS": "1",  # two workers on a shared 2-core machine
    }


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[object]:
    started: list[FaultWorker] = []

    def start(env: dict[str, str]) -> FaultWorker:
        worker = FaultWorker(env, tmp_path / f"fault-worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


class Database:
    """Read the worker processes' database directly (a `manage.py shell` takes seconds per query)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.url.startswith("sqlite:///"):
            conn = sqlite3.connect(self.url[len("sqlite:///") :], timeout=30)
            try:
                return conn.execute(sql, params).fetchall()
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()

    def chunks(self, job_id: int) -> list[tuple]:
        """(id, index, status, worker, attempts, finished) per chunk, in order."""
        return [
            (r[0], r[1], r[2], r[3], r[4], r[5] is not None)
            for r in self.rows(
                "SELECT id, \"index\", status, worker, attempts, finished_at FROM generation_generationchunk"
                " WHERE job_id = ? ORDER BY \"index\"",
                (job_id,),
            )
        ]

    def answers(self, job_id: int) -> list[tuple]:
        """(prompt_id, role, worker) per answer."""
        return self.rows("SELECT prompt_id, role, worker FROM generation_answer WHERE job_id = ?", (job_id,))

    def job(self, job_id: int) -> tuple:
        sql = "SELECT status, error, total FROM generation_generationjob WHERE id = ?"
        return self.rows(sql, (job_id,))[0]

    def wait_finished(self, job_id: int, timeout: float, logs) -> tuple:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job[0] not in ("queued", "running"):
                return job
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} still {self.job(job_id)[0]} after {timeout} s:\n{logs()}")


def import_prompts(env: dict[str, str], tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.jsonl"
    rows = [
        {"external_id": f"p{i}", "task": "relevance", "text": f"Question {i}: is the product any good?"}
        for i in range(PROMPTS)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = manage(env, "import_prompts", str(path), "--dataset", name)
    assert result.stdout.strip().splitlines()[-1].isdigit()


def check_exactly_once(db: Database, job_id: int) -> list[tuple]:
    """The job succeeded with one answer per (prompt, role) and no chunk left unfinished."""
    status, error, total = db.job(job_id)
    answers = db.answers(job_id)
    keys = [(a[0], a[1]) for a in answers]
    chunks = db.chunks(job_id)
    assert (status, error) == ("succeeded", ""), (status, error, chunks)
    assert total == 2 * PROMPTS and len(answers) == 2 * PROMPTS
    assert len(set(keys)) == len(keys)
    assert {role for _, role in keys} == {"pretrained", "finetuned"}
    assert [c[2] for c in chunks] == ["succeeded"] * (PROMPTS // CHUNK_PROMPTS), chunks
    assert all(c[5] for c in chunks)
    return chunks


@pytest.mark.slow
def test_a_worker_killed_mid_chunk_loses_and_duplicates_no_answer(
    redis_env, workers, tmp_path, tiny_llama_dir, tiny_adapter_dir
):
    env = redis_env
    db = Database(env["DATABASE_URL"])
    import_prompts(env, tmp_path, "sigkill")
    victim, survivor = workers(env), workers(env)

    def logs() -> str:
        return f"victim log:\n{victim.log_tail()}\nsurvivor log:\n{survivor.log_tail()}"

    started = time.monotonic()
    result = manage(
        env,
        "queue_generation",
        "--dataset", "sigkill",
        "--base", str(tiny_llama_dir),
        "--adapter", str(tiny_adapter_dir),
        "--max-new-tokens", "400",  # about a second per role batch on a loaded core
        "--batch-size", "2",
        "--chunk-prompts", str(CHUNK_PROMPTS),
    )  # fmt: skip
    job_id = int(result.stdout.strip().splitlines()[-1])

    # Kill the victim while it holds a chunk it has half answered (one role's batch saved, the other
    # being generated), or, failing that within a minute, while it holds any chunk.
    victim_tag = f":{victim.pid()}"
    deadline = time.monotonic() + 60
    while True:
        assert victim.process.poll() is None, logs()
        assert time.monotonic() < deadline + 60, f"the victim never held a chunk:\n{logs()}"
        held = [c for c in db.chunks(job_id) if c[2] == "running" and c[3].endswith(victim_tag) and not c[5]]
        if held:
            chunk_id, index = held[0][:2]
            raw = db.rows("SELECT prompt_ids FROM generation_generationchunk WHERE id = ?", (chunk_id,))[0][0]
            prompt_ids = raw if isinstance(raw, list) else json.loads(raw)  # jsonb on PostgreSQL
            made = [a for a in db.answers(job_id) if a[0] in prompt_ids]
            if 0 < len(made) < 2 * len(prompt_ids) or time.monotonic() > deadline:
                victim.kill()
                break
        time.sleep(0.02)
    made_before_kill = made
    killed_at = time.monotonic()

    job = db.wait_finished(job_id, timeout=180, logs=logs)
    finished_after_kill = time.monotonic() - killed_at
    chunks = check_exactly_once(db, job_id)
    assert job[0] == "succeeded", logs()
    taken_over = next(c for c in chunks if c[0] == chunk_id)
    # the survivor picked the killed chunk up after the visibility timeout and made only what was missing
    assert taken_over[3].endswith(f":{survivor.pid()}"), (taken_over, logs())
    assert taken_over[4] >= 2, taken_over
    answers = db.answers(job_id)
    for prompt_id, role, worker in made_before_kill:
        assert (prompt_id, role, worker) in answers  # kept, not made again
    assert f"chunk {index}: attempt 1 by" in survivor.log.read_text(), logs()
    print(
        f"SIGKILL test: job finished {finished_after_kill:.1f} s after the kill, "
        f"{time.monotonic() - started:.1f} s after queueing; answers saved before the kill: "
        f"{len(made_before_kill)}"
    )


SEND_TWICE = """
import json
from generation.models import Dataset
from evalsite.celery import app
from generation.configs import GenerationSettings
from generation.jobs import job_create
job = job_create(dataset=Dataset.objects.get(name="twice"), base_model={base!r}, adapter_path={adapter!r},
                 settings=GenerationSettings(max_new_tokens=200, batch_size=2, chunk_prompts={chunk}))
for chunk in job.chunks.order_by("index"):
    app.send_task("generation.run_chunk", args=[chunk.pk])
    app.send_task("generation.run_chunk", args=[chunk.pk])  # again, as a broker may deliver it twice
print(json.dumps(job.pk))
"""


@pytest.mark.slow
def test_every_chunk_sent_twice_to_two_workers_makes_each_answer_once(
    redis_env, workers, tmp_path, tiny_llama_dir, tiny_adapter_dir
):
    env = redis_env
    db = Database(env["DATABASE_URL"])
    import_prompts(env, tmp_path, "twice")
    first, second = workers(env), workers(env)
    code = SEND_TWICE.format(base=str(tiny_llama_dir), adapter=str(tiny_adapter_dir), chunk=CHUNK_PROMPTS)
    job_id = int(manage(env, "shell", "-c", code).stdout.strip().splitlines()[-1])
    db.wait_finished(
        job_id, timeout=180, logs=lambda: f"{first.log_tail()}\n---\n{second.log_tail()}"
    )
    chunks = check_exactly_once(db, job_id)
    # each chunk was started once or twice (twice when both copies ran at the same time); a copy
    # that came after the chunk had finished did nothing
    assert all(1 <= c[4] <= 2 for c in chunks), chunks
    # both copies of all 6 messages were consumed and acknowledged: nothing is left in the broker
    import redis

    client = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    deadline = time.monotonic() + 10
    while (client.llen("celery") or client.hlen("unacked")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.llen("celery") == 0 and client.hlen("unacked") == 0


# ---------------------------------------------------------------------------------------------
# chunk_run's delivery rules, in this process


@pytest.mark.django_db
def test_a_duplicate_delivery_of_a_finished_chunk_changes_nothing_while_the_job_runs():
    job = job_create(
        dataset=make_dataset(n=4), base_model="no-such-model", settings=GenerationSettings(chunk_prompts=2)
    )
    first, second = job.chunks.order_by("index")
    done = job.created_at
    GenerationChunk.objects.filter(pk=first.pk).update(
        status=JobStatus.SUCCEEDED, attempts=1, finished_at=done
    )
    job.status = JobStatus.RUNNING
    job.save(update_fields=["status"])
    chunk_run(chunk_id=first.pk)  # the message again, after the chunk finished (no model is loaded)
    first.refresh_from_db()
    job.refresh_from_db()
    assert (first.status, first.attempts, first.finished_at) == (JobStatus.SUCCEEDED, 1, done)
    assert job.status == JobStatus.RUNNING


@pytest.mark.django_db
def test_a_chunk_that_keeps_killing_its_worker_is_given_up_and_the_job_ends(settings):
    settings.GENERATION_CHUNK_MAX_ATTEMPTS = 3
    job = job_create(
        dataset=make_dataset(n=2), base_model="no-such-model", settings=GenerationSettings(chunk_prompts=1)
    )
    poison, other = job.chunks.order_by("index")
    # three deliveries started it and died with their worker (SIGKILL, out of memory...)
    GenerationChunk.objects.filter(pk=poison.pk).update(status=JobStatus.RUNNING, attempts=3, worker="w:1")
    GenerationChunk.objects.filter(pk=other.pk).update(
        status=JobStatus.SUCCEEDED, attempts=1, finished_at=job.created_at
    )
    Answer.objects.bulk_create(
        [Answer(job=job, prompt_id=pid, role=role, text="ok") for pid in other.prompt_ids
         for role in ("pretrained", "finetuned")]
    )  # fmt: skip
    job.status = JobStatus.RUNNING
    job.save(update_fields=["status"])

    chunk_run(chunk_id=poison.pk)  # the fourth delivery gives up instead of loading anything

    poison.refresh_from_db()
    job.refresh_from_db()
    assert poison.status == JobStatus.FAILED and poison.attempts == 3 and poison.finished_at
    assert poison.error == "chunk 0: given up after 3 attempts that never finished (last on w:1)"
    assert poison.failure_kind == FailureKind.GAVE_UP
    assert job.status == JobStatus.PARTIALLY_FAILED
    assert job.error == f"2 of 4 answers were not made: {poison.error}"


@pytest.mark.django_db
def test_planned_retries_do_not_count_against_the_crash_limit(settings):
    settings.GENERATION_CHUNK_MAX_ATTEMPTS = 2
    job = job_create(dataset=make_dataset(n=1), base_model="no-such-model")
    chunk = job.chunks.get()
    GenerationChunk.objects.filter(pk=chunk.pk).update(status=JobStatus.RUNNING, attempts=2)
    chunk_run(chunk_id=chunk.pk, retries=1)  # the task's own retry after a database error: it runs
    chunk.refresh_from_db()
    job.refresh_from_db()
    assert chunk.attempts == 3
    assert chunk.status == JobStatus.FAILED and "cannot load the base model" in chunk.error
    assert job.status == JobStatus.FAILED


@pytest.mark.django_db
def test_an_answer_with_a_nul_character_is_saved_without_it(monkeypatch):
    """A random tiny model emitted U+0000 on PostgreSQL, which refuses it in text: the chunk failed."""
    from types import SimpleNamespace

    from generation.ml import engine, prompting

    job = job_create(dataset=make_dataset(n=1), base_model="tiny")
    entry = SimpleNamespace(tokenizer=None, device="cpu")
    monkeypatch.setattr(worker_chunks, "load_role_models", lambda runtime, job: RoleModels(entry, None, True))
    monkeypatch.setattr(prompting, "render_prompt", lambda tokenizer, prompt: prompt.text)

    def generate(entry, requests, **kwargs):
        yield [engine.Result(r.key, "yes\x00 it is", 3, 4, 1.0, 2.0) for r in requests]

    monkeypatch.setattr(engine, "generate", generate)
    chunk_run(chunk_id=job.chunks.get().pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert sorted(job.answers.values_list("role", "text")) == [
        ("finetuned", "yes it is"),
        ("pretrained", "yes it is"),
    ]


# ---------------------------------------------------------------------------------------------
# Redis restarting


REDIS_RESTART_PORT = 6390  # a server of this test's own: never the shared one on 6379


class RedisServer:
    """A redis-server this test starts, kills and starts again (append-only file, fsync always)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--port", str(REDIS_RESTART_PORT), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder)],
            stdout=(self.folder / "redis.log").open("a"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        client = redis.Redis(port=REDIS_RESTART_PORT)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, (self.folder / "redis.log").read_text()
                time.sleep(0.1)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()  # no shutdown save: only what the append-only file already holds
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    import shutil
    import socket

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", REDIS_RESTART_PORT)) == 0:
            pytest.skip(f"port {REDIS_RESTART_PORT} is taken")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    yield server
    server.kill()


@pytest.mark.slow
def test_a_job_queued_before_redis_restarts_is_still_run(
    process_env, own_redis, workers, tmp_path, tiny_llama_dir, tiny_adapter_dir  # noqa: F811
):
    """Production Redis keeps an append-only file: messages queued before a crash are there after it."""
    import redis

    env = {
        **process_env,
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{REDIS_RESTART_PORT}/0",
        "EVALSITE_TORCH_THREADS": "1",
    }
    db = Database(env["DATABASE_URL"])
    import_prompts(env, tmp_path, "restart")
    result = manage(
        env, "queue_generation", "--dataset", "restart", "--base", str(tiny_llama_dir),
        "--adapter", str(tiny_adapter_dir), "--max-new-tokens", "8", "--chunk-prompts", str(CHUNK_PROMPTS),
    )  # fmt: skip
    job_id = int(result.stdout.strip().splitlines()[-1])
    assert redis.Redis(port=REDIS_RESTART_PORT).llen("celery") == PROMPTS // CHUNK_PROMPTS

    own_redis.kill()  # no worker has taken anything yet
    own_redis.start()
    assert redis.Redis(port=REDIS_RESTART_PORT).llen("celery") == PROMPTS // CHUNK_PROMPTS
    worker = workers(env)
    db.wait_finished(job_id, timeout=180, logs=worker.log_tail)
    check_exactly_once(db, job_id)


@pytest.mark.slow
@pytest.mark.reliability
def test_redis_restarted_while_a_job_is_running_finishes_it_exactly_once(
    process_env, own_redis, workers, tmp_path, tiny_llama_dir, tiny_adapter_dir  # noqa: F811
):
    """Redis SIGKILLed (append-only file, fsync always) while one chunk is done and another running,
    and started again a second later: the workers reconnect, the running chunk's message (in kombu's
    `unacked` hash, which the append-only file keeps) and the queued ones are delivered again, and the
    job ends succeeded with every answer made once."""
    import redis

    from tests.support.figures import figure

    env = {
        **process_env,
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{REDIS_RESTART_PORT}/0",
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S),
        "EVALSITE_TORCH_THREADS": "1",
    }
    db = Database(env["DATABASE_URL"])
    import_prompts(env, tmp_path, "restart-mid-job")
    first, second = workers(env), workers(env)

    def logs() -> str:
        redis_log = (own_redis.folder / "redis.log").read_text()[-2000:]
        return f"worker 1:\n{first.log_tail()}\nworker 2:\n{second.log_tail()}\nredis:\n{redis_log}"

    started = time.monotonic()
    result = manage(
        env,
        "queue_generation",
        "--dataset", "restart-mid-job",
        "--base", str(tiny_llama_dir),
        "--adapter", str(tiny_adapter_dir),
        "--max-new-tokens", "300",
        "--batch-size", "2",
        "--chunk-prompts", str(CHUNK_PROMPTS),
    )  # fmt: skip
    job_id = int(result.stdout.strip().splitlines()[-1])

    # wait until at least one chunk has finished and another is being generated, its message
    # delivered and not yet acknowledged (in kombu's `unacked` hash)
    client = redis.Redis(port=REDIS_RESTART_PORT)
    deadline = time.monotonic() + 120
    while True:
        assert first.process.poll() is None and second.process.poll() is None, logs()
        chunks = db.chunks(job_id)
        done = [c for c in chunks if c[5]]
        running = [c for c in chunks if c[2] == "running" and not c[5]]
        if done and running and len(done) < len(chunks):
            in_flight = client.hlen("unacked")
            if in_flight and db.chunks(job_id) == chunks:  # still running after reading the hash
                break
        assert time.monotonic() < deadline, f"never one chunk done and one running: {chunks}\n{logs()}"
        time.sleep(0.05)
    own_redis.kill()
    killed_at = time.monotonic()
    time.sleep(1)
    own_redis.start()

    job = db.wait_finished(job_id, timeout=90, logs=logs)
    seconds_after_kill = time.monotonic() - killed_at
    assert job[0] == "succeeded", logs()
    chunks = check_exactly_once(db, job_id)
    answers = db.answers(job_id)
    keys = [(a[0], a[1]) for a in answers]
    duplicates = len(keys) - len(set(keys))
    unfinished = "SELECT COUNT(*) FROM generation_generationjob WHERE status IN ('queued', 'running')"
    stuck = db.rows(unfinished)[0][0]
    left_running = [c for c in chunks if c[2] == "running" or not c[5]]
    assert duplicates == 0 and stuck == 0 and not left_running, (chunks, stuck)
    # both workers came back to the restarted server and are still serving
    assert first.process.poll() is None and second.process.poll() is None, logs()
    # messages whose ack failed while Redis was down are restored and delivered again, find their
    # chunk finished and do nothing: within a few visibility timeouts the broker holds nothing
    deadline = time.monotonic() + 6 * VISIBILITY_TIMEOUT_S
    while (client.llen("celery") or client.hlen("unacked")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (client.llen("celery"), client.hlen("unacked")) == (0, 0), logs()
    assert db.chunks(job_id) == chunks  # those late deliveries changed nothing
    received = sum(
        len([line for line in w.log.read_text().splitlines() if line.endswith("] received")])
        for w in (first, second)
    )
    figure(
        "redis-restart-mid-job",
        answers=len(answers),
        expected=2 * PROMPTS,
        duplicates=duplicates,
        stuck_jobs=stuck,
        chunks_done_before_kill=len(done),
        unacked_at_kill=in_flight,
        max_attempts=max(c[4] for c in chunks),
        deliveries=received,
        seconds_after_kill=f"{seconds_after_kill:.1f}",
        seconds=f"{time.monotonic() - started:.1f}",
    )
