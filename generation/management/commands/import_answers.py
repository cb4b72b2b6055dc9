"""`python manage.py import_answers PATH --job NAME [--systems A,B]`: bring your own generations.

Each JSONL row has the prompt fields plus `pretrained` and `finetuned` answer texts, and one text for
each outside system named with `--systems`. Makes a dataset named after the job, a finished job and
every answer of every prompt; prints the job id.

`python manage.py import_answers PATH --add-system NAME --job ID` adds one outside system to a finished
job: rows {"prompt_external_id", "answer"}, one for every prompt the job answered; prints the job id."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.importing import DataImportError, import_answers
from generation.importing_systems import import_system_answers


class Command(BaseCommand):
    help = (
        "Import ready-made pretrained/finetuned (and --systems) answers as a finished job, or with "
        "--add-system one more system's answers into a finished job; prints the job id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="a .jsonl file")
        parser.add_argument(
            "--job",
            required=True,
            help="job name (also the name of the new dataset); with --add-system the id of a finished job",
        )
        parser.add_argument(
            "--systems",
            default="",
            metavar="NAME[,NAME...]",
            help="further columns of the file, each an outside system's answers (names are slugs)",
        )
        parser.add_argument(
            "--add-system",
            default=None,
            metavar="NAME",
            help="add this outside system's answers (rows: prompt_external_id, answer) to job --job ID",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["add_system"] is not None:
                if options["systems"]:
                    raise DataImportError("--systems: not with --add-system (add one system a file)")
                job, added = import_system_answers(
                    options["path"], job_id=options["job"], system_name=options["add_system"]
                )
                name = options["add_system"].strip()
                self.stderr.write(f'added {added} answers of "{name}" to job {job.pk}')
            else:
                job = import_answers(options["path"], job_name=options["job"], systems=options["systems"])
                self.stderr.write(f'imported {job.total} answers as job "{job.name}"')
        except DataImportError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(job.pk))
