"""`python manage.py import_answers PATH --job NAME`: bring your own generations.

Each JSONL row has the prompt fields plus `pretrained` and `finetuned` answer texts. Makes a dataset
named after the job, a finished job and both answers of every prompt; prints the job id."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.importing import DataImportError, import_answers


class Command(BaseCommand):
    help = "Import ready-made pretrained/finetuned answers as a finished job; prints its id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="a .jsonl file")
        parser.add_argument("--job", required=True, help="job name (also the name of the new dataset)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            job = import_answers(options["path"], job_name=options["job"])
        except DataImportError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f'imported {job.total} answers as job "{job.name}"')
        self.stdout.write(str(job.pk))
