"""`python manage.py import_prompts PATH --dataset NAME` (JSONL or CSV; every row or none)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.importing import DataImportError, import_prompts


class Command(BaseCommand):
    help = (
        "Import prompts (external_id, task, text, context, reference, label) into a dataset; prints its id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="a .jsonl or .csv file")
        parser.add_argument("--dataset", required=True, help="dataset name (created if it does not exist)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            dataset, created = import_prompts(options["path"], dataset_name=options["dataset"])
        except DataImportError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f'imported {created} prompts into dataset "{dataset.name}"')
        self.stdout.write(str(dataset.pk))
