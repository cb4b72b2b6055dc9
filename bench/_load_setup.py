"""Self-contained set-up for bench/annotate_load.py: a throwaway database (SQLite, or a PostgreSQL
database created and dropped here), a synthetic finished job and campaign with annotators holding API
tokens, and a local server (gunicorn when installed, else runserver) serving it with DEBUG off.

`self_contained()` points this process's Django settings at the throwaway var folder and database, so
it must run before anything imports Django models.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_postgres_database(server_url: str) -> tuple[str, str]:
    """CREATE DATABASE evalsite_bench_<pid> on the server; returns (its name, its DATABASE_URL)."""
    import psycopg

    name = f"evalsite_bench_{os.getpid()}"
    parts = urlsplit(server_url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, urlunsplit(parts._replace(path=f"/{name}"))


def drop_postgres_database(server_url: str, name: str) -> None:
    import psycopg

    admin_url = urlunsplit(urlsplit(server_url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def self_contained(
    args, database_url: str | None = None
) -> tuple[str, int, list[str], subprocess.Popen, str]:
    """Throwaway database (SQLite, or the PostgreSQL one given) with a synthetic finished job, a campaign,
    annotators with API tokens, and a local gunicorn serving it; returns (url, campaign id, tokens, server
    process, a description of the set-up). The caller warms the server up before measuring."""
    env = _throwaway_env(database_url)
    _setup_django()
    campaign_id, tokens = _seed_campaign(args)
    url, server, server_kind = _start_server(args, env)
    database = "PostgreSQL" if database_url else "SQLite"
    return url, campaign_id, tokens, server, f"{server_kind}, {database}, DEBUG off"


def _throwaway_env(database_url: str | None) -> dict:
    """Point this process at a fresh var folder (and the database given, else SQLite in it); returns the
    environment for the server."""
    var_dir = tempfile.mkdtemp(prefix="evalsite-annotate-load-")
    env = {
        **os.environ,
        "EVALSITE_VAR_DIR": var_dir,
        "DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "evalsite.settings",
    }
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    os.environ.update({k: env[k] for k in ("EVALSITE_VAR_DIR", "DEBUG", "DJANGO_SETTINGS_MODULE")})
    os.environ.pop("DATABASE_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    return env


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _seed_campaign(args) -> tuple[int, list[str]]:
    """Migrate, then a finished job with args.prompts pairs, a campaign on it and args.annotators
    annotators with API tokens; returns (campaign id, tokens). Closes the database connections."""
    from django.core.management import call_command
    from django.db import connections
    from rest_framework.authtoken.models import Token

    from annotations.campaigns import campaign_create
    from annotations.models import User

    call_command("migrate", verbosity=0)
    job = _create_finished_job(args.prompts)
    campaign = campaign_create(job=job, name="load", overlap=args.overlap)
    # no passwords: the API is used with tokens, and hashing 50 passwords would dominate the set-up
    User.objects.bulk_create(User(username=f"load{i}", role="annotator") for i in range(args.annotators))
    users = list(User.objects.filter(username__startswith="load").order_by("id"))
    tokens = [Token.objects.create(user=user).key for user in users]
    connections.close_all()
    return campaign.pk, tokens


def _create_finished_job(n_prompts: int):
    """A dataset of n_prompts prompts and a succeeded, imported job with both answers to each."""
    from generation.models import Answer, Dataset, GenerationJob, JobStatus, Prompt, Role

    dataset = Dataset.objects.create(name="load")
    job = GenerationJob.objects.create(
        name="load", dataset=dataset, status=JobStatus.SUCCEEDED, imported=True
    )
    tasks = ["sentiment", "features", "recommendation", "relevance"]
    prompts = Prompt.objects.bulk_create(
        Prompt(
            dataset=dataset,
            external_id=f"p{i}",
            task=tasks[i % len(tasks)],
            text=f"Question {i}: what does this review say about the battery?",
            context=f"Review {i}: " + "The battery lasts about a day and charging is quick. " * 6,
        )
        for i in range(n_prompts)
    )
    Answer.objects.bulk_create(
        Answer(
            job=job,
            prompt=prompt,
            role=role,
            text=f"An answer to question {prompt.external_id}. "
            + "It is mostly positive about the battery. " * 8,
        )
        for prompt in prompts
        for role in (Role.PRETRAINED, Role.FINETUNED)
    )
    return job


def _start_server(args, env: dict) -> tuple[str, subprocess.Popen, str]:
    """Start the server on a free local port and wait until it answers; returns (url, process, kind)."""
    port = free_port()
    # the server runs as in production: DEBUG off (no per-request query log), plain http on localhost
    server_env = {
        **env,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
    }
    command, server_kind = _server_command(args, port)
    server = subprocess.Popen(command, cwd=ROOT, env=server_env, stdout=subprocess.DEVNULL, stderr=sys.stderr)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(f"{url}/login/", timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    return url, server, server_kind


def _server_command(args, port: int) -> tuple[list[str], str]:
    """gunicorn (gthread) when installed, else runserver; returns (command, a description)."""
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
    if gunicorn:
        command = [
            gunicorn,
            "evalsite.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--backlog",
            "2048",
            "--preload",
            "--log-level",
            "warning",
        ]
        return command, f"gunicorn {args.workers} workers x {args.threads} threads (gthread)"
    return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], "runserver"
