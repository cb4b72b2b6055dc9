"""Rating traffic against a real server: gunicorn (2 workers) on a random loopback port, a throwaway
PostgreSQL database (`evalsite_rel_<pid>` on the suite's server, dropped afterwards), annotators
talking to the API with tokens from threads, as the rating page's JavaScript does.

* Double-clicked submit / client retry: the same rating POSTed twice at the same instant → one Rating
  row, one 201 and one 200.
* A web worker SIGKILLed mid-traffic: every rating the server acknowledged (201/200) is stored, none
  twice; a client whose connection died retries the same POST (which is safe: the retry of a stored
  rating is a 200 update); gunicorn's master starts a new worker.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from tests.conftest import POSTGRES_URL, require_service
from tests.support.figures import figure
from tests.support.processes import ROOT, manage, query

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

ANNOTATORS = 4
PROMPTS = 40
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
RATING = {"score_left": 4, "score_right": 2, "correct_left": True, "correct_right": False,
          "preference": "left", "comment": "ok"}

SETUP = """
import json
from rest_framework.authtoken.models import Token
from annotations.models import User
from tests.support.annotation_data import make_campaign
campaign = make_campaign(prompts={prompts}, overlap={annotators})
tokens = []
for i in range({annotators}):
    user = User.objects.create_user(username=f"rater{{i}}", password="pw-not-used-1234", role="annotator")
    tokens.append(Token.objects.create(user=user).key)
print(json.dumps({{"campaign": campaign.pk, "tokens": tokens}}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_admin():
    import psycopg

    return psycopg.connect(POSTGRES_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True)


def production_env(*, database_url: str, var_dir: Path) -> dict[str, str]:
    """The environment of a site run as in production (DEBUG off), over plain http on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS"))}
    env.update(
        DATABASE_URL=database_url,
        EVALSITE_VAR_DIR=str(var_dir),
        SECRET_KEY="reliability-test-secret-key",
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        DJANGO_SETTINGS_MODULE="evalsite.settings",
        PYTHONPATH=str(ROOT),
    )
    env.pop("CELERY_BROKER_URL", None)
    return env


class Site:
    def __init__(self, env: dict[str, str], port: int, log: Path, data: dict) -> None:
        self.env, self.port, self.log, self.data = env, port, log, data
        self.process = subprocess.Popen(
            [GUNICORN, "evalsite.wsgi:application", "--workers", "2", "--bind", f"127.0.0.1:{port}",
             "--timeout", "60", "--graceful-timeout", "2"],
            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/healthz")[0] == 200 and len(self.workers()) == 2:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"gunicorn did not come up:\n{log.read_text()[-3000:]}")

    def workers(self) -> list[int]:
        return [child.pid for child in psutil.Process(self.process.pid).children()]

    def request(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Token {token}"
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@contextmanager
def migrated_database(name: str, var_dir: Path) -> Iterator[dict[str, str]]:
    """A throwaway, migrated PostgreSQL database on the suite's server; yields the production
    environment that points at it, and drops the database afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with _postgres_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        env = production_env(database_url=POSTGRES_URL.rsplit("/", 1)[0] + "/" + name, var_dir=var_dir)
        manage(env, "migrate", "--no-input", "-v", "0")
        yield env
    finally:
        with _postgres_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with migrated_database(f"evalsite_rel_{os.getpid()}", tmp_path) as env:
        data = query(env, SETUP.format(prompts=PROMPTS, annotators=ANNOTATORS))
        server = Site(env, _free_port(), tmp_path / "gunicorn.log", data)
        try:
            yield server
        finally:
            server.stop()


def _stored_ratings(site: Site) -> dict[int, int]:
    import psycopg

    with psycopg.connect(site.env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)) as conn:
        rows = conn.execute(
            "SELECT r.assignment_id, r.score_left FROM annotations_rating r"
            " JOIN annotations_assignment a ON a.id = r.assignment_id"
            " JOIN annotations_pair p ON p.id = a.pair_id WHERE p.campaign_id = %s",
            (site.data["campaign"],),
        ).fetchall()
    return dict(rows)


def _with_retries(call, attempts: int = 30):
    """A client that retries when its connection dies (the worker serving it was killed)."""
    retries = 0
    for _ in range(attempts):
        try:
            return call(), retries
        except (OSError, http.client.HTTPException):
            retries += 1
            time.sleep(0.2)
    raise AssertionError("no answer after retries")


def test_double_clicked_and_retried_submits_make_one_rating(site: Site):
    campaign = site.data["campaign"]
    statuses: Counter[int] = Counter()
    pairs = 0
    for token in site.data["tokens"]:
        for _ in range(3):
            status, body = site.request("GET", f"/api/campaigns/{campaign}/next/", token=token)
            assert status == 200, body
            assignment = json.loads(body)["assignment"]
            barrier = threading.Barrier(2)
            results: list[int] = []

            def submit(assignment=assignment, token=token, barrier=barrier, results=results):
                barrier.wait()
                results.append(site.request("POST", f"/api/assignments/{assignment}/rating/", RATING, token)[0])

            threads = [threading.Thread(target=submit) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert sorted(results) == [200, 201], results
            statuses.update(results)
            # and a client retry after the answer was lost: another 200, still one row
            assert site.request("POST", f"/api/assignments/{assignment}/rating/", RATING, token)[0] == 200
            statuses[200] += 1
            pairs += 1
    stored = _stored_ratings(site)
    posts = sum(statuses.values())
    figure("rating-double-submit", pairs=pairs, posts=posts, created=statuses[201], updated=statuses[200],
           stored=len(stored), duplicates=0 if len(stored) == pairs else len(stored) - pairs)
    assert len(stored) == pairs


def test_web_worker_sigkilled_during_rating_traffic_loses_no_rating(site: Site):
    campaign = site.data["campaign"]
    acknowledged: dict[int, int] = {}
    errors: list[str] = []
    retries = Counter()
    lock = threading.Lock()
    kill_at = PROMPTS * ANNOTATORS // 3

    def annotate(i: int, token: str) -> None:
        while True:
            (status, body), r = _with_retries(
                lambda: site.request("GET", f"/api/campaigns/{campaign}/next/", token=token)
            )
            retries["next"] += r
            if status == 204:
                return
            if status != 200:
                errors.append(f"next {status} {body[:200]!r}")
                return
            assignment = json.loads(body)["assignment"]
            score = 1 + (assignment % 5)
            (status, body), r = _with_retries(
                lambda: site.request(
                    "POST", f"/api/assignments/{assignment}/rating/", {**RATING, "score_left": score}, token
                )
            )
            retries["rating"] += r
            if status in (200, 201):
                with lock:
                    acknowledged[assignment] = score
            else:
                errors.append(f"rating {status} {body[:200]!r}")

    threads = [threading.Thread(target=annotate, args=(i, t)) for i, t in enumerate(site.data["tokens"])]
    workers_before = site.workers()
    for t in threads:
        t.start()
    while len(acknowledged) < kill_at and any(t.is_alive() for t in threads):
        time.sleep(0.02)
    victim = workers_before[0]
    os.kill(victim, signal.SIGKILL)
    killed_at = len(acknowledged)
    for t in threads:
        t.join(300)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (len(site.workers()) < 2 or victim in site.workers()):
        time.sleep(0.2)
    workers_after = site.workers()
    stored = _stored_ratings(site)
    lost = [a for a in acknowledged if a not in stored]
    wrong = [a for a, score in acknowledged.items() if a in stored and stored[a] != score]
    figure(
        "rating-traffic-web-worker-kill",
        acknowledged=len(acknowledged),
        stored=len(stored),
        lost=len(lost),
        wrong=len(wrong),
        killed_after=killed_at,
        client_retries=retries["next"] + retries["rating"],
        errors=len(errors),
        worker_restarted="yes" if len(workers_after) == 2 and victim not in workers_after else "no",
    )
    assert not errors, errors[:5]
    assert len(acknowledged) == PROMPTS * ANNOTATORS
    assert not lost and not wrong and len(stored) == len(acknowledged)
    assert victim not in workers_after and len(workers_after) == 2, (workers_before, workers_after)


def _failed_login(port: int, username: str) -> int:
    """One log-in with a wrong password through the form, as a browser does it (CSRF cookie + field)."""
    from urllib.parse import urlencode

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/login/")
        page = conn.getresponse()
        html = page.read().decode()
        cookie = page.getheader("Set-Cookie", "").split(";")[0]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        form = urlencode({"csrfmiddlewaretoken": token, "username": username, "password": "wrong"})
        conn.request(
            "POST", "/login/", body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
        )
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _restart_web_workers(server: Site) -> None:
    before = server.workers()
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = server.workers()
        if len(now) == 2 and not set(now) & set(before):
            try:
                if server.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
        time.sleep(0.2)
    raise AssertionError(f"gunicorn did not restart its workers:\n{server.log.read_text()[-3000:]}")


def test_with_cache_url_the_login_limit_outlives_the_web_process(tmp_path: Path, redis_url: str):
    """Five failed log-ins, every gunicorn worker killed and replaced, then a sixth: refused when the
    counts live in Redis (CACHE_URL); with each process's own memory the new workers forget them."""
    sixth: dict[str, int] = {}
    with migrated_database(f"evalsite_rel_login_{os.getpid()}", tmp_path) as env:
        for label, extra in (("shared", {"CACHE_URL": redis_url}), ("per_process", {})):
            server = Site({**env, **extra}, _free_port(), tmp_path / f"gunicorn-{label}.log", {})
            try:
                user = f"mallory-{label}"
                assert [_failed_login(server.port, user) for _ in range(5)] == [200] * 5
                _restart_web_workers(server)
                sixth[label] = _failed_login(server.port, user)
            finally:
                server.stop()
    figure("login-limit-across-restart", shared_cache=sixth["shared"], per_process_cache=sixth["per_process"])
    assert sixth == {"shared": 429, "per_process": 200}
