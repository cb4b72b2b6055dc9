"""`python manage.py report --campaign ID [--format json|text]`"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotations.models import Campaign
from reports.building import campaign_report
from reports.text import report_as_text


class Command(BaseCommand):
    help = "Print a campaign's report: every figure with its sample size, CI and method."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", type=int, required=True, help="campaign id")
        parser.add_argument("--format", choices=["json", "text"], default="json")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            campaign = Campaign.objects.select_related("job", "job__finetune_run").get(pk=options["campaign"])
        except Campaign.DoesNotExist:
            raise CommandError(f"--campaign: no campaign with id {options['campaign']}") from None
        report = campaign_report(campaign)
        if options["format"] == "json":
            self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            self.stdout.write(report_as_text(report))
