"""What the "My ratings" page lists: an annotator's own ratings in a campaign, and the pairs they
skipped and may still rate.

Blinding: every row is in the sides THIS annotator saw (a Rating is stored by side: `score_left` is the
score of the answer they saw on the left), so nothing here turns a side into a role; rows carry texts
and labels only, never a Pair, an Answer or the assignment's side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from generation.models import Prompt

from .models import Assignment, Campaign, Preference, Rating, User

SNIPPET_CHARS = 110
# the same words the rating page puts on its buttons
PREFERENCE_LABELS = {
    Preference.LEFT: "Left is better",
    Preference.RIGHT: "Right is better",
    Preference.TIE: "Tie",
    Preference.BOTH_BAD: "Both bad",
}
PRODUCT_PREFIX = "product:"


@dataclass(frozen=True)
class PairSummary:
    """How a pair is named in a list: its product (when the context names one), the start of what it
    asks about, and its task."""

    product: str
    snippet: str
    task: str


def pair_summary(prompt: Prompt) -> PairSummary:
    """The product and the start of the prompt's own material. The instruction (`text`) is much the
    same from one prompt to the next ("Read the review and tell me..."), so the context comes first:
    a leading "Product: NAME" line gives the product, the rest (the review) the snippet. Without a
    context the instruction's start is all there is."""
    context = prompt.context.strip()
    product = ""
    first, _, rest = context.partition("\n")
    if first.lower().startswith(PRODUCT_PREFIX):
        product = first[len(PRODUCT_PREFIX) :].strip()
        context = rest.strip()
    body = " ".join((context or prompt.text).split())
    if len(body) > SNIPPET_CHARS:
        body = body[: SNIPPET_CHARS - 1].rstrip() + "…"
    return PairSummary(product=product, snippet=body, task=prompt.task)


def verdict_label(correct: bool | None) -> str:
    if correct is None:
        return "Not sure"
    return "Correct" if correct else "Incorrect"


@dataclass(frozen=True)
class RatedRow:
    pair: PairSummary
    score_left: int
    score_right: int
    verdict_left: str
    verdict_right: str
    preference: str
    comment: str
    rated_at: datetime
    edited: bool
    edit_url: str


@dataclass(frozen=True)
class SkippedRow:
    pair: PairSummary
    skipped_at: datetime
    rate_url: str | None  # None when enough others have rated the pair since: it needs no more ratings


def rated_rows(ratings: list[Rating]) -> list[RatedRow]:
    """One row per rating (select_related `assignment__pair__prompt` for one query)."""
    return [
        RatedRow(
            pair=pair_summary(rating.assignment.pair.prompt),
            score_left=rating.score_left,
            score_right=rating.score_right,
            verdict_left=verdict_label(rating.correct_left),
            verdict_right=verdict_label(rating.correct_right),
            preference=PREFERENCE_LABELS.get(rating.preference, rating.preference),
            comment=rating.comment,
            rated_at=rating.updated_at,
            edited=rating.revision > 1,
            edit_url=reverse("annotate-assignment", args=[rating.assignment_id]),
        )
        for rating in ratings
    ]


def my_ratings(*, campaign: Campaign, annotator: User) -> QuerySet[Rating]:
    """This annotator's ratings in the campaign, the latest rated first (a queryset: the page slices
    it). Another annotator's ratings are never in it."""
    return (
        Rating.objects.filter(assignment__pair__campaign=campaign, assignment__annotator=annotator)
        .select_related("assignment__pair__prompt")
        .order_by("-assignment__completed_at", "-assignment_id")
    )


def skipped_rows(*, campaign: Campaign, annotator: User) -> list[SkippedRow]:
    """The pairs this annotator skipped and has not rated, the latest skipped first. A pair whose
    slots others have filled since (rated, or held open right now) gets no "rate now" link: a rating
    posted for it would be refused."""
    now = timezone.now()
    others_holding = (
        Assignment.objects.filter(pair=OuterRef("pair"))
        .exclude(annotator=annotator)
        .filter(Q(completed_at__isnull=False) | Q(skipped_at__isnull=True, locked_until__gt=now))
        .order_by()
        .values("pair")
        .annotate(n=Count("id"))
        .values("n")
    )
    skipped = (
        Assignment.objects.filter(
            pair__campaign=campaign,
            annotator=annotator,
            completed_at__isnull=True,
            skipped_at__isnull=False,
        )
        .select_related("pair__prompt")
        .annotate(taken=Coalesce(Subquery(others_holding, output_field=IntegerField()), Value(0)))
        .order_by("-skipped_at", "-id")
    )
    open_campaign = campaign.status == Campaign.Status.OPEN
    return [
        SkippedRow(
            pair=pair_summary(assignment.pair.prompt),
            skipped_at=assignment.skipped_at,
            rate_url=(
                reverse("annotate-assignment", args=[assignment.pk])
                if open_campaign and assignment.taken < campaign.overlap
                else None
            ),
        )
        for assignment in skipped
    ]
