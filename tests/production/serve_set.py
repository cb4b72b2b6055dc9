"""evalsite started as the README's "Production" section says: `make serve` (honcho on the Procfile) with
its settings in the environment, on a fresh PostgreSQL database and a Redis database of its own, on a
free loopback port; and a client that talks to it over HTTP with API tokens or a logged-in session.

Each `make serve` runs in a session of its own; every process under it (honcho, gunicorn's master and
workers, the Celery workers) is collected with psutil, so a test can check that stopping it left none
behind, and so that a failing test still cleans up.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from tests.conftest import POSTGRES_URL, require_service
from tests.support.processes import ROOT

# no other test uses this Redis database (15: the shared redis_url fixture, 13: tests/worker, 12: the
# worker fault tests); the broker and the login-limit cache of the production set live here
REDIS_DB = 11
SERVE_TIMEOUT = 300  # migrations on a fresh database, static files, gunicorn and a worker importing torch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the suite's server (its URL); dropped at the end."""
    import psycopg

    require_service("PostgreSQL", "127.0.0.1", 5432)
    server = POSTGRES_URL.rsplit("/", 1)[0]
    name = f"evalsite_serve_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_redis_url() -> str:
    import redis

    require_service("Redis", "127.0.0.1", 6379)
    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    return url


def serve_env(
    *, database_url: str, redis_url: str, port: int, var_dir: Path, model_roots: list[Path]
) -> dict[str, str]:
    """The README's production settings, for this machine's loopback over plain http."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST", "DJANGO_", "MAKE", "MFLAGS", "CELERY_", "EVALSITE_", "WORKER"))
        and k not in {"DATABASE_URL", "CACHE_URL", "DEBUG", "LOG_FORMAT", "LOG_LEVEL", "SECRET_KEY"}
    }
    env.update(
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=redis_url,
        CACHE_URL=redis_url,
        SECRET_KEY=f"serve-test-{uuid.uuid4().hex}",
        ALLOWED_HOSTS="127.0.0.1",
        EVALSITE_BIND=f"127.0.0.1:{port}",
        EVALSITE_VAR_DIR=str(var_dir),
        EVALSITE_MODEL_ROOTS=",".join(str(p) for p in [var_dir, *model_roots]),
        # plain http on loopback: the README's note for a site behind no TLS proxy
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        HF_HUB_OFFLINE="1",
        EVALSITE_TORCH_THREADS="1",
        WEB_CONCURRENCY="2",
    )
    return env


class ServeSet:
    """One `make serve ARGS…`, its output in `log`, and every process it started."""

    def __init__(self, env: dict[str, str], log: Path, *make_args: str) -> None:
        self.log = log
        self.process = subprocess.Popen(
            ["make", "serve", *make_args],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.seen: dict[int, psutil.Process] = {}

    def processes(self) -> list[psutil.Process]:
        """make and everything under it now (remembered, so a later check finds any left over)."""
        try:
            root = psutil.Process(self.process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for proc in tree:
            self.seen.setdefault(proc.pid, proc)
        return tree

    def find(self, *words: str) -> psutil.Process:
        """The process under make whose command line has every one of `words`."""
        for proc in self.processes():
            try:
                cmdline = " ".join(proc.cmdline())
            except psutil.Error:
                continue
            if all(word in cmdline for word in words):
                return proc
        raise AssertionError(f"no process with {words} under make serve:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> list[psutil.Process]:
        """Send `sig` to make (as systemd or a shell's kill does), wait for it to exit, and return the
        processes it had started that are still running (none, if stopping works)."""
        self.processes()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=timeout)
        _, alive = psutil.wait_procs(list(self.seen.values()), timeout=10)
        return alive

    def kill(self) -> None:
        """Clean-up after a failed test: SIGKILL to everything ever seen under make."""
        self.processes()
        for proc in self.seen.values():
            try:
                proc.kill()
            except psutil.Error:
                pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, chars: int = 6000) -> str:
        return self.text()[-chars:]


class Client:
    """HTTP to the site on 127.0.0.1:`port`: JSON with a token, pages with a logged-in session."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.cookies = http.cookiejar.CookieJar()
        self.browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        """(status, body bytes); OSError while the site is not up."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            if token:
                headers["Authorization"] = f"Token {token}"
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        status, content = self.call(method, path, body, token)
        return status, json.loads(content) if content else None

    def wait_for(self, path: str, status: int, serve: ServeSet, timeout: float = SERVE_TIMEOUT) -> float:
        """Poll `path` until it answers `status`; the seconds that took."""
        started = time.monotonic()
        last = None
        while time.monotonic() - started < timeout:
            if serve.process.poll() is not None:
                raise AssertionError(f"make serve exited {serve.process.returncode}:\n{serve.tail()}")
            try:
                last = self.call("GET", path)
                if last[0] == status:
                    return time.monotonic() - started
            except OSError as exc:
                last = exc
            time.sleep(0.25)
        raise AssertionError(f"{path} never answered {status} (last: {last!r}):\n{serve.tail()}")

    def log_in(self, username: str, password: str) -> None:
        """Log in through the login form, as a browser does (CSRF token and cookie)."""
        form = self.browser.open(f"{self.base}/login/", timeout=30).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        data = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token}
        ).encode()
        response = self.browser.open(f"{self.base}/login/", data=data, timeout=30)
        assert "/login/" not in response.geturl(), "the log-in failed"

    def page(self, path: str) -> str:
        return self.browser.open(f"{self.base}{path}", timeout=30).read().decode()
