from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.services import CampaignCreateError, campaign_create
from generation.models import GenerationJob


class Command(BaseCommand):
    help = "Open a rating campaign on a finished generation job; prints the campaign id on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--job", required=True, type=int, help="generation job id")
        parser.add_argument("--name", required=True, help="campaign name shown to annotators")
        parser.add_argument(
            "--overlap", type=int, default=3, help="different annotators per pair (default 3)"
        )
        parser.add_argument("--guidelines", type=Path, help="Markdown or text file shown to annotators")

    def handle(self, *args, job: int, name: str, overlap: int, guidelines: Path | None, **options):
        job_row = GenerationJob.objects.filter(pk=job).first()
        if job_row is None:
            raise CommandError(f"--job: no generation job with id {job}")
        text = ""
        if guidelines is not None:
            try:
                text = guidelines.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"--guidelines: cannot read {guidelines}: {exc}") from None
        try:
            campaign = campaign_create(job=job_row, name=name, overlap=overlap, guidelines=text)
        except CampaignCreateError as exc:
            raise CommandError(str(exc)) from None
        pairs = campaign.pairs.count()
        self.stderr.write(f"campaign '{campaign.name}' opened with {pairs} pairs, overlap {campaign.overlap}")
        self.stdout.write(str(campaign.pk))
