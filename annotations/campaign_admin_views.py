"""Opening a campaign from a finished job in the browser, in one step (admins only): name, overlap,
guidelines in Markdown with a preview, the question per task, "not sure" and gold feedback, and an
optional gold file. It does what `create_campaign` does, through `campaign_create`: all or nothing.
On a job of more than two systems the page names the systems the campaign will compare (two of them
per pair) and offers no gold pairs or gold feedback (those are for campaigns of two systems).

The preview is drawn by the rating page's own renderer (annotations.display.guidelines_html), so what
the admin sees is what annotators will see: on "Preview" (no script needed) or live, from
static/generation/campaign-preview.js posting to the preview endpoint."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from evalsite.access import ADMINISTER, role_required
from generation.models import FINISHED_STATUSES, GenerationJob, Prompt, job_system_names

from .campaign_design import system_label
from .campaigns import MAX_QUESTION_CHARS, CampaignCreateError, campaign_create, campaign_design
from .display import guidelines_html
from .models import DEFAULT_TASK_QUESTIONS, FALLBACK_QUESTION, Campaign

MAX_GUIDELINES_CHARS = 50_000
MAX_GOLD_BYTES = 5 * 1024 * 1024
QUESTION_PREFIX = "question_"


def default_question(task: str) -> str:
    return DEFAULT_TASK_QUESTIONS.get(task, FALLBACK_QUESTION)


class CampaignNewForm(forms.Form):
    """The campaign's fields; one question box per task of the job's prompts (`tasks`)."""

    name = forms.CharField(max_length=200, label="Campaign name (annotators see it)")
    overlap = forms.IntegerField(
        min_value=1, max_value=1000, initial=3, label="Overlap", help_text="different annotators per pair"
    )
    guidelines = forms.CharField(
        required=False,
        max_length=MAX_GUIDELINES_CHARS,
        widget=forms.Textarea(attrs={"rows": 10}),
        label="Guidelines (Markdown: # headings, - lists, **bold**, *italic*, `code`, links)",
    )
    allow_not_sure = forms.BooleanField(
        required=False,
        label_suffix="",
        label='Offer "not sure" as a correctness verdict (else correct or incorrect is required)',
    )
    gold_feedback = forms.BooleanField(
        required=False,
        label_suffix="",
        label="Training round: show the known verdict after a gold pair is rated",
    )
    gold = forms.FileField(
        required=False,
        label="Gold pairs (optional JSONL)",
        help_text="one row a line: prompt_external_id, preference (finetuned, pretrained, tie, both_bad), "
        "optional correct_pretrained / correct_finetuned (true, false or null)",
    )

    def __init__(self, *args: Any, tasks: list[str], gold_allowed: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tasks = tasks
        if not gold_allowed:  # a job of more than two systems: gold pairs are for two-system campaigns
            del self.fields["gold"], self.fields["gold_feedback"]
        self.gold_name = "gold"  # the uploaded file's name once there is one: gold errors start with it
        for task in tasks:
            self.fields[QUESTION_PREFIX + task] = forms.CharField(
                required=False,
                max_length=MAX_QUESTION_CHARS,
                initial=default_question(task),
                label=f"Question for “{task}”",
                help_text="shown above the scores; empty: the built-in wording",
            )

    def question_fields(self) -> list[forms.BoundField]:
        return [self[QUESTION_PREFIX + task] for task in self.tasks]

    def clean_gold(self) -> list[tuple[int, object]] | None:
        upload = self.cleaned_data.get("gold")
        if not upload:
            return None
        self.gold_name = upload.name
        if upload.size > MAX_GOLD_BYTES:
            raise forms.ValidationError(f"larger than {MAX_GOLD_BYTES // (1024 * 1024)} MiB")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError(f"{upload.name}: not UTF-8 text (byte {exc.start})") from None
        rows: list[tuple[int, object]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((number, json.loads(line)))
            except ValueError as exc:
                raise forms.ValidationError(f"{upload.name} line {number}: not valid JSON ({exc})") from None
        if not rows:
            raise forms.ValidationError(f"{upload.name} has no rows")
        return rows

    def task_questions(self) -> dict[str, str]:
        """The questions that differ from the built-in wording (the others keep following it)."""
        questions = {}
        for task in self.tasks:
            text = (self.cleaned_data.get(QUESTION_PREFIX + task) or "").strip()
            if text and text != default_question(task):
                questions[task] = text
        return questions


def _job_tasks(job: GenerationJob) -> list[str]:
    """The tasks of the prompts this job answered, in name order."""
    return sorted(set(Prompt.objects.filter(answers__job=job).values_list("task", flat=True)))


def _open(form: CampaignNewForm, job: GenerationJob) -> Campaign | None:
    """campaign_create with the form's values, plus the two options it does not take, in one
    transaction; None with the error on the form when it refuses (nothing is saved then)."""
    data = form.cleaned_data
    try:
        with transaction.atomic():
            campaign = campaign_create(
                job=job,
                name=data["name"],
                overlap=data["overlap"],
                guidelines=data.get("guidelines") or "",
                task_questions=form.task_questions(),
                gold=data.get("gold"),
                gold_source=form.gold_name,
                allow_not_sure=data["allow_not_sure"],
                gold_feedback=data.get("gold_feedback", False),
            )
    except CampaignCreateError as exc:
        message = str(exc)
        form.add_error("gold" if message.startswith(f"{form.gold_name} line ") else None, message)
        return None
    return campaign


@role_required(ADMINISTER)
def campaign_new_page(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the form, prefilled. POST with "preview": the same form with the guidelines drawn, nothing
    saved. POST: open the campaign and go to its page, or show every error (400), nothing saved."""
    job = get_object_or_404(GenerationJob.objects.select_related("dataset"), pk=pk)
    systems = job_system_names(job)
    form = CampaignNewForm(
        request.POST or None, request.FILES or None, tasks=_job_tasks(job), gold_allowed=len(systems) == 2
    )
    previewing = "preview" in request.POST
    if request.method == "POST" and not previewing and form.is_valid():
        campaign = _open(form, job)
        if campaign is not None:
            pairs = campaign.pairs.count()
            gold = campaign.pairs.exclude(gold_preference="").count()
            design = f" {campaign_design(campaign)}." if len(systems) > 2 else ""
            messages.success(
                request,
                f'Campaign "{campaign.name}" opened: {pairs} pairs ({gold} gold), overlap {campaign.overlap}.'
                + design,
            )
            return redirect("campaign-report", pk=campaign.pk)
    if request.method != "POST":
        form.initial["name"] = job.name or job.dataset.name
    context = {
        "job": job,
        "form": form,
        "preview": guidelines_html(form["guidelines"].value() or ""),
        "previewing": previewing,
        "finished": job.status in FINISHED_STATUSES,
        "answered": Prompt.objects.filter(answers__job=job).distinct().count(),
        "systems": [system_label(name) for name in systems],
    }
    status = 400 if request.method == "POST" and not previewing and form.errors else 200
    return render(request, "annotations/campaign_new.html", context, status=status)


@role_required(ADMINISTER)
@require_POST
def guidelines_preview(request: HttpRequest) -> HttpResponse:
    """The guidelines Markdown as annotators will see it (an HTML fragment, for the live preview)."""
    text = request.POST.get("guidelines", "")[:MAX_GUIDELINES_CHARS]
    return HttpResponse(guidelines_html(text), content_type="text/html; charset=utf-8")
