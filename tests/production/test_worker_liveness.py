"""A worker that dies shows as gone, from outside: the README's two roles on one machine (a web node,
`make serve SERVE=web`, and a GPU machine's workers, `make serve SERVE=worker`), the worker SIGKILLed;
within WORKER_LIVENESS_SECONDS `/healthz?workers=1` answers 503 and the job API and the job pages say
that a queued job has no live worker, while plain `/healthz` (the load balancer's) stays 200. A worker
started again under the same name takes the job and finishes it. The lines are in the text format."""

from __future__ import annotations

import json
import signal

import pytest

from tests.production.serve_set import (
    Client,
    ServeSet,
    free_port,
    fresh_postgres_database,
    fresh_redis_url,
    serve_env,
)
from tests.production.test_serve import last_line, wait_for_job
from tests.support.processes import manage

pytestmark = pytest.mark.slow

LIVENESS = 4.0
NO_WORKER_NOTE = "No live worker: nothing answers this job until a worker starts."


def test_a_killed_worker_shows_as_gone_and_a_restarted_one_runs_the_waiting_job(
    tmp_path, dataset_file, tiny_llama_dir, tiny_adapter_dir
):
    port = free_port()
    with fresh_postgres_database() as database_url:
        env = serve_env(database_url=database_url, redis_url=fresh_redis_url(), port=port,
                        var_dir=tmp_path / "var", model_roots=[tiny_llama_dir, tiny_adapter_dir])  # fmt: skip
        env.update(WORKER_HEARTBEAT_SECONDS="1", WORKER_LIVENESS_SECONDS=str(LIVENESS))
        client = Client(port)
        web = ServeSet(env, tmp_path / "web.log", "SERVE=web")
        workers: list[ServeSet] = []
        try:
            client.wait_for("/healthz", 200, web)
            assert client.call("GET", "/healthz?workers=1")[0] == 503  # no worker yet
            workers.append(ServeSet(env, tmp_path / "worker-1.log", "SERVE=worker", "WORKERS=1"))
            manage(env, "create_user", "ops", "--role", "admin", "--password", "ops-password-1234")
            admin = last_line(manage(env, "api_token", "ops"))
            manage(env, "import_prompts", str(dataset_file), "--dataset", "reviews")
            client.log_in("ops", "ops-password-1234")
            client.wait_for("/healthz?workers=1", 200, workers[0])
            celery = workers[0].find("celery", "worker.1@")
            celery.send_signal(signal.SIGKILL)  # killed: no warm shutdown, no stop recorded
            gone_after = client.wait_for("/healthz?workers=1", 503, web, timeout=LIVENESS + 10)
            status, health = client.json("GET", "/healthz?workers=1")
            assert health["workers"] == {"live": 0, "liveness_seconds": LIVENESS}
            assert health["problems"] == {
                "workers": f"no live worker: none has written its heartbeat in the last {LIVENESS:g} s"
            }
            assert client.json("GET", "/healthz") == (200, {"status": "ok"})  # web nodes stay in service
            assert workers[0].stop() == []  # honcho saw its only process die and stopped

            wanted = {"dataset": "reviews", "base_model": str(tiny_llama_dir), "max_new_tokens": 6}
            wanted.update(adapter_path=str(tiny_adapter_dir), batch_size=4, chunk_prompts=2)
            status, job = client.json("POST", "/api/jobs/", wanted, token=admin)
            assert status == 201, job
            assert (job["status"], job["workers_live"], job["waiting_for_worker"]) == ("queued", 0, True)
            assert NO_WORKER_NOTE in client.page(f"/jobs/{job['id']}/")
            listing = client.page("/jobs/")
            assert "<strong>No live worker</strong>: queued jobs wait until one starts." in listing

            workers.append(ServeSet(env, tmp_path / "worker-2.log", "SERVE=worker", "WORKERS=1"))
            job = wait_for_job(client, job["id"], admin, workers[1])
            assert (job["status"], job["done"], job["workers_live"], job["waiting_for_worker"]) == (
                "succeeded", 10, 1, False
            )  # fmt: skip
            page = client.page(f"/jobs/{job['id']}/")
            assert NO_WORKER_NOTE not in page and "worker.1@" in page
            for serve in (*workers, web):
                assert serve.stop() == []
        finally:
            for serve in (*workers, web):
                serve.kill()
    print(json.dumps({"healthz_503_after_kill_s": round(gone_after, 1), "liveness_seconds": LIVENESS}))
    web_log = web.text()
    assert f"INFO generation.jobs: job {job['id']} queued: 10 answers of dataset 'reviews'" in web_log
    worker_log = workers[1].text()
    assert f"job {job['id']} running" in worker_log
    assert f"job {job['id']} succeeded: 10/10 answers" in worker_log
