import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotations.campaigns import (
    CampaignCreateError,
    campaign_create,
    campaign_design,
    clean_task_questions,
)
from generation.models import GenerationJob, job_system_names


def _read(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{option}: cannot read {path}: {exc}") from None


def _gold_rows(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for number, line in enumerate(_read(path, "--gold").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except ValueError as exc:
            raise CommandError(f"--gold: {path} line {number}: not valid JSON ({exc})") from None
    if not rows:
        raise CommandError(f"--gold: {path} has no rows")
    return rows


class Command(BaseCommand):
    help = (
        "Open a rating campaign on a finished generation job; prints the campaign id on the last line. "
        "On a job of more than two systems each pair shows two of them (a balanced design per task, "
        "printed before the id); gold pairs are for campaigns of two systems."
    )

    def add_arguments(self, parser):
        parser.add_argument("--job", required=True, type=int, help="generation job id")
        parser.add_argument("--name", required=True, help="campaign name shown to annotators")
        parser.add_argument(
            "--overlap", type=int, default=3, help="different annotators per pair (default 3)"
        )
        parser.add_argument("--guidelines", type=Path, help="Markdown or text file shown to annotators")
        parser.add_argument(
            "--questions",
            type=Path,
            help='JSON file {task: question} shown above the scores, e.g. {"sentiment": "Is the sentiment '
            'stated correctly?"}; other tasks keep the built-in wording',
        )
        parser.add_argument(
            "--gold",
            type=Path,
            help="JSONL file of gold pairs: {prompt_external_id, preference (finetuned|pretrained|tie|"
            "both_bad), correct_pretrained, correct_finetuned (true|false|null)}",
        )
        parser.add_argument(
            "--allow-not-sure",
            action="store_true",
            help='offer "not sure" as a correctness verdict (default: correct or incorrect is required)',
        )
        parser.add_argument(
            "--gold-feedback",
            action="store_true",
            help="training round: after rating a gold pair the annotator is shown its known verdict",
        )

    def handle(
        self,
        *args,
        job: int,
        name: str,
        overlap: int,
        guidelines: Path | None,
        questions: Path | None,
        gold: Path | None,
        allow_not_sure: bool = False,
        gold_feedback: bool = False,
        **options,
    ):
        job_row = GenerationJob.objects.filter(pk=job).first()
        if job_row is None:
            raise CommandError(f"--job: no generation job with id {job}")
        text = _read(guidelines, "--guidelines") if guidelines is not None else ""
        task_questions = None
        if questions is not None:
            try:
                task_questions = json.loads(_read(questions, "--questions"))
            except ValueError as exc:
                raise CommandError(f"--questions: {questions}: not valid JSON ({exc})") from None
            try:
                task_questions = clean_task_questions(task_questions, source=f"--questions: {questions}")
            except CampaignCreateError as exc:
                raise CommandError(str(exc)) from None
        gold_rows = _gold_rows(gold) if gold is not None else None
        try:
            with transaction.atomic():
                campaign = campaign_create(
                    job=job_row,
                    name=name,
                    overlap=overlap,
                    guidelines=text,
                    task_questions=task_questions,
                    gold=gold_rows,
                    gold_source=f"--gold: {gold}",
                    allow_not_sure=allow_not_sure,
                    gold_feedback=gold_feedback,
                )
        except CampaignCreateError as exc:
            raise CommandError(str(exc)) from None
        pairs = campaign.pairs.count()
        n_gold = campaign.pairs.exclude(gold_preference="").count()
        self.stderr.write(
            f"campaign '{campaign.name}' opened with {pairs} pairs ({n_gold} gold), "
            f'overlap {campaign.overlap}; "not sure" {"allowed" if allow_not_sure else "not offered"}'
            + ("; gold feedback on" if gold_feedback else "")
        )
        if len(job_system_names(job_row)) > 2:
            self.stderr.write(campaign_design(campaign))
        self.stdout.write(str(campaign.pk))
