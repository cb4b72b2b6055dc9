"""PostgreSQL restarted during rating traffic: on a private PostgreSQL 15 cluster (initdb into a temp
folder, its own loopback port; the system server is never touched), gunicorn (2 workers) serves
annotators who rate through the API with tokens; midway the cluster is restarted (`pg_ctl restart -m
fast`: open transactions are aborted, connections cut). Requests that fail meanwhile answer 5xx and
the client retries them; every acknowledged (201/200) rating is stored, once, with its value.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.figures import figure
from tests.reliability.test_reliability_web import (
    ANNOTATORS,
    PROMPTS,
    RATING,
    SETUP,
    Site,
    _free_port,
    _stored_ratings,
    _with_retries,
    production_env,
)
from tests.support.processes import manage, query

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class OwnPostgres:
    def __init__(self, folder: Path) -> None:
        if not (PG_BIN / "initdb").exists():
            pytest.skip("PostgreSQL 15 server binaries are not installed")
        self.folder = folder
        self.data = folder / "data"
        self.port = _free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(folder, "postgres")
        self.run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def run(self, *args: str) -> None:
        result = subprocess.run([*self.as_postgres, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(args[:2])} exited {result.returncode}: {result.stdout}{result.stderr}")

    def pg_ctl(self, action: str, *extra: str) -> None:
        self.run(
            str(PG_BIN / "pg_ctl"), action, "-D", str(self.data), "-w", "-t", "60",
            "-l", str(self.folder / "postgres.log"),
            "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off", *extra,
        )

    def start(self) -> None:
        self.pg_ctl("start")

    def restart(self) -> None:
        self.pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        subprocess.run(
            [*self.as_postgres, str(PG_BIN / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate"],
            capture_output=True, timeout=60,
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def pg_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, OwnPostgres]]:
    # not under pytest's 0700 temp root: the server runs as the postgres user and must reach it
    folder = Path(tempfile.mkdtemp(prefix="evalsite-own-pg-"))
    pg = OwnPostgres(folder)
    var = tmp_path_factory.mktemp("pg-site-var")
    env = production_env(database_url=pg.url, var_dir=var)
    server = None
    try:
        manage(env, "migrate", "--no-input", "-v", "0")
        data = query(env, SETUP.format(prompts=PROMPTS, annotators=ANNOTATORS))
        server = Site(env, _free_port(), var / "gunicorn.log", data)
        yield server, pg
    finally:
        if server is not None:
            server.stop()
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_restarted_during_rating_traffic_loses_no_rating(pg_site):
    site, pg = pg_site
    campaign = site.data["campaign"]
    acknowledged: dict[int, int] = {}
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    restart_at = PROMPTS * ANNOTATORS // 3

    def until_answered(method: str, path: str, body=None, token=None):
        """Retry dropped connections and 5xx (the database is away) for up to a minute."""
        deadline = time.monotonic() + 60
        while True:
            (status, payload), _ = _with_retries(lambda: site.request(method, path, body, token))
            with lock:
                statuses[status] += 1
            if status < 500 or time.monotonic() > deadline:
                return status, payload
            time.sleep(0.2)

    def annotate(token: str) -> None:
        while True:
            status, body = until_answered("GET", f"/api/campaigns/{campaign}/next/", token=token)
            if status == 204:
                return
            if status != 200:
                errors.append(f"next {status} {body[:200]!r}")
                return
            assignment = json.loads(body)["assignment"]
            score = 1 + (assignment % 5)
            status, body = until_answered(
                "POST", f"/api/assignments/{assignment}/rating/", {**RATING, "score_left": score}, token
            )
            if status in (200, 201):
                with lock:
                    acknowledged[assignment] = score
            else:
                errors.append(f"rating {status} {body[:200]!r}")

    threads = [threading.Thread(target=annotate, args=(t,)) for t in site.data["tokens"]]
    for t in threads:
        t.start()
    while len(acknowledged) < restart_at and any(t.is_alive() for t in threads):
        time.sleep(0.02)
    restarted_after = len(acknowledged)
    started = time.monotonic()
    pg.restart()
    downtime = time.monotonic() - started
    for t in threads:
        t.join(300)
    stored = _stored_ratings(site)
    lost = [a for a in acknowledged if a not in stored]
    wrong = [a for a, score in acknowledged.items() if a in stored and stored[a] != score]
    health = site.request("GET", "/healthz")[0]
    figure(
        "rating-traffic-pg-restart",
        acknowledged=len(acknowledged),
        stored=len(stored),
        lost=len(lost),
        wrong=len(wrong),
        restarted_after=restarted_after,
        restart_s=f"{downtime:.1f}",
        server_errors_retried=sum(n for s, n in statuses.items() if s >= 500),
        answered_500=statuses.get(500, 0),
        errors=len(errors),
        healthz_after=health,
    )
    assert not errors, errors[:5]
    assert len(acknowledged) == PROMPTS * ANNOTATORS
    assert not lost and not wrong and len(stored) == len(acknowledged)
    assert health == 200
