"""`python manage.py export_scores --campaign ID [--format csv|jsonl|parquet] [--output PATH]
[--with-usernames] [--with-texts] [--all-revisions]`"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.models import Campaign
from reports.export_formats import FORMATS, stream


class Command(BaseCommand):
    help = (
        "Export a campaign's scores, one row per rating × answer (CSV, JSONL or Parquet), to stdout or "
        "a file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", type=int, required=True, help="campaign id")
        parser.add_argument("--format", choices=FORMATS, default="csv", help="parquet needs --output")
        parser.add_argument("--output", help="file to write (default: standard output)")
        parser.add_argument(
            "--with-usernames",
            action="store_true",
            help="name raters by username instead of their pseudonym (on the web: admins only)",
        )
        parser.add_argument(
            "--with-texts",
            action="store_true",
            help="add prompt_text, prompt_context and answer_text to every row",
        )
        parser.add_argument(
            "--all-revisions",
            action="store_true",
            help="one row per kept version of each rating × answer instead of the current version",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        fmt = options["format"]
        path = options.get("output")
        if fmt == "parquet" and not path:
            raise CommandError("--format parquet: give --output PATH (Parquet is binary)")
        try:
            campaign = Campaign.objects.get(pk=options["campaign"])
        except Campaign.DoesNotExist:
            raise CommandError(f"--campaign: no campaign with id {options['campaign']}") from None
        pieces = stream(
            campaign,
            fmt=fmt,
            with_usernames=options["with_usernames"],
            with_texts=options["with_texts"],
            all_revisions=options["all_revisions"],
        )
        if not path:
            for piece in pieces:
                self.stdout.write(piece, ending="")  # pieces carry their own line ends
            self.stdout.flush()
            return
        try:
            if fmt == "parquet":
                with open(path, "wb") as binary:
                    binary.writelines(pieces)
                return
            # newline="" keeps csv's own \r\n line ends as they are
            with open(path, "w", encoding="utf-8", newline="") as handle:
                for piece in pieces:
                    handle.write(piece)
        except OSError as exc:
            raise CommandError(f"--output: cannot write {path}: {exc.strerror}") from None
