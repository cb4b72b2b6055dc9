"""`python manage.py worker`: the generation worker, i.e.

    celery -A evalsite worker --pool solo --concurrency 1 -l info

One process per GPU; it loads each model once and keeps it (see generation/worker/tasks.py)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from evalsite.celery import app


class Command(BaseCommand):
    help = "Run a Celery worker for generation jobs (solo pool, one task at a time)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loglevel", "-l", default="info")
        parser.add_argument("--hostname", "-n", default=None, help="worker node name (default celery@host)")

    def handle(self, *args: Any, **options: Any) -> None:
        argv = ["worker", "--pool", "solo", "--concurrency", "1", "-l", options["loglevel"]]
        if options["hostname"]:
            argv += ["-n", options["hostname"]]
        app.worker_main(argv)
