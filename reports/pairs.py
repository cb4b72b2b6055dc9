"""One pair, unblinded, for researchers and admins: the prompt, both answers by role, every rating.

A pair's two answers are labelled by the systems that wrote them (each answer's `role`): "pre-trained"
and "fine-tuned" in a two-system campaign, else the job's system names (issue 17); a rater's
preference is named by the preferred answer's system the same way.

The disagreement queue and the comments section of the report link here, so a researcher can read
what the raters read and see how each of them judged it, in role terms (the raters saw left/right;
this page translates by each assignment's stored side). Annotators get 403 (the page names the
roles); a pair of another campaign is 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from annotations.models import Pair, Rating
from evalsite.access import READ_REPORTS, role_required
from generation.models import GenerationJob, JobSystem
from reports.labels import system_label, system_preference_label

VERDICT_WORDS = {True: "correct", False: "incorrect", None: "not sure"}


@dataclass(frozen=True)
class RatingRow:
    """One rating of the pair, in role terms."""

    rater: str
    pretrained_score: int
    finetuned_score: int
    pretrained_verdict: str
    finetuned_verdict: str
    preference: str  # the preferred answer's system (finetuned / pretrained / ...), tie or both_bad
    preference_text: str  # the same in words: "fine-tuned better", "epoch-005 better", "tie"
    finetuned_side: str  # where the pair's later system (its `finetuned_answer`) was shown
    comment: str
    revisions: int
    duration_ms: int | None
    first_rated: datetime
    last_rated: datetime


def _system_preference(preference: str, finetuned_side: str, systems: tuple[str, str]) -> str:
    """A left/right preference as the preferred answer's system (`systems`: the pair's earlier and
    later system); tie and both_bad unchanged."""
    if preference in ("left", "right"):
        return systems[1] if preference == finetuned_side else systems[0]
    return preference


def rating_rows(pair: Pair) -> list[RatingRow]:
    """Every rating of the pair, first rated first, with the number of versions each has kept."""
    systems = (pair.pretrained_answer.role, pair.finetuned_answer.role)
    ratings = (
        Rating.objects.filter(assignment__pair=pair)
        .select_related("assignment__annotator")
        .annotate(n_revisions=Count("revisions"))
        .order_by("created_at", "pk")
    )
    rows = []
    for rating in ratings:
        side = rating.assignment.finetuned_side
        ft_left = side == "left"
        chosen = _system_preference(rating.preference, side, systems)
        rows.append(
            RatingRow(
                rater=rating.assignment.annotator.pseudonym,
                pretrained_score=rating.score_right if ft_left else rating.score_left,
                finetuned_score=rating.score_left if ft_left else rating.score_right,
                pretrained_verdict=VERDICT_WORDS[rating.correct_right if ft_left else rating.correct_left],
                finetuned_verdict=VERDICT_WORDS[rating.correct_left if ft_left else rating.correct_right],
                preference=chosen,
                preference_text=system_preference_label(chosen, systems),
                finetuned_side=side,
                comment=rating.comment,
                # a rating saved before revisions were kept has none: it is still one version
                revisions=max(rating.n_revisions, rating.revision, 1),
                duration_ms=rating.duration_ms,
                first_rated=rating.created_at,
                last_rated=rating.updated_at,
            )
        )
    return rows


def _heading(name: str) -> str:
    """A system's label at the start of a heading: "Pre-trained", "Fine-tuned"; a further system's
    name exactly as it is."""
    label = system_label(name)
    return label[:1].upper() + label[1:] if label != name else label


def _system_model(job: GenerationJob, name: str) -> str:
    """What a system is, for the pair page: the model's name for the two; an adapter's path (and
    epoch) or "imported answers" for a further system of the job."""
    if name == "pretrained":
        return job.pretrained_model.name if job.pretrained_model else ""
    if name == "finetuned":
        return job.finetuned_model.name if job.finetuned_model else ""
    system = JobSystem.objects.filter(job=job, name=name).first()
    if system is None:
        return ""
    if system.kind == JobSystem.Kind.IMPORTED:
        return "imported answers"
    epoch = f" (epoch {system.epoch})" if system.epoch is not None else ""
    return f"adapter {system.adapter_path}{epoch}" if system.adapter_path else f"adapter{epoch}"


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


@role_required(READ_REPORTS)
def pair_detail_page(request: HttpRequest, campaign_id: int, pk: int) -> HttpResponse:
    """`/campaigns/<campaign_id>/pairs/<pk>/`: the pair with its answers by role and all its ratings."""
    pair = get_object_or_404(
        Pair.objects.select_related(
            "campaign",
            "campaign__job__pretrained_model",
            "campaign__job__finetuned_model",
            "prompt",
            "pretrained_answer",
            "finetuned_answer",
        ),
        pk=pk,
        campaign_id=campaign_id,
    )
    rows = rating_rows(pair)
    job = pair.campaign.job
    earlier, later = pair.pretrained_answer.role, pair.finetuned_answer.role
    answers = [
        {
            "role": earlier,
            "heading": _heading(earlier),
            "model": _system_model(job, earlier),
            "answer": pair.pretrained_answer,
            "gold_correct": pair.gold_correct_pretrained,
            "mean_score": _mean([r.pretrained_score for r in rows]),
        },
        {
            "role": later,
            "heading": _heading(later),
            "model": _system_model(job, later),
            "answer": pair.finetuned_answer,
            "gold_correct": pair.gold_correct_finetuned,
            "mean_score": _mean([r.finetuned_score for r in rows]),
        },
    ]
    context = {
        "earlier_label": _heading(earlier),
        "later_label": _heading(later),
        "campaign": pair.campaign,
        "pair": pair,
        "prompt": pair.prompt,
        "question": pair.campaign.question_for(pair.prompt.task),
        "answers": answers,
        "ratings": rows,
    }
    return render(request, "reports/pair_detail.html", context)
