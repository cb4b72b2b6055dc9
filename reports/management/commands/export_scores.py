"""`python manage.py export_scores --campaign ID [--format csv|jsonl] [--output PATH] [--with-usernames]`"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.models import Campaign
from reports.exports import stream


class Command(BaseCommand):
    help = "Export a campaign's scores, one row per rating × answer (CSV or JSONL), to stdout or a file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", type=int, required=True, help="campaign id")
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        parser.add_argument("--output", help="file to write (default: standard output)")
        parser.add_argument(
            "--with-usernames",
            action="store_true",
            help="name raters by username instead of their pseudonym (on the web: admins only)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            campaign = Campaign.objects.get(pk=options["campaign"])
        except Campaign.DoesNotExist:
            raise CommandError(f"--campaign: no campaign with id {options['campaign']}") from None
        pieces = stream(campaign, fmt=options["format"], with_usernames=options["with_usernames"])
        path = options.get("output")
        if not path:
            for piece in pieces:
                self.stdout.write(piece, ending="")  # pieces carry their own line ends
            self.stdout.flush()
            return
        try:
            # newline="" keeps csv's own \r\n line ends as they are
            with open(path, "w", encoding="utf-8", newline="") as handle:
                for piece in pieces:
                    handle.write(piece)
        except OSError as exc:
            raise CommandError(f"--output: cannot write {path}: {exc.strerror}") from None
