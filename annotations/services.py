"""Writes on the annotation side: opening campaigns, handing out blinded pairs, recording ratings.

Plain functions with keyword-only arguments. Every function that hands out or fills a slot of a pair
runs inside `transaction.atomic()` and re-counts the pair's slots under a lock, so concurrent
annotators can never push a pair past its overlap:

* PostgreSQL: candidate pairs are locked with `SELECT ... FOR UPDATE SKIP LOCKED`, so two annotators
  asking at once get different pairs instead of queueing on the same row.
* SQLite: `select_for_update()` is a no-op, but settings open every transaction with
  `BEGIN IMMEDIATE`, so writers are serialised and the re-count is exact.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from generation.models import FINISHED_STATUSES, Answer, GenerationJob, Role

from .models import Assignment, Campaign, GoldPreference, Pair, Rating, Side, User


class AnnotationError(Exception):
    """A request the annotation side refuses; the message is safe to show to an annotator."""


class CampaignClosed(AnnotationError):
    def __init__(self) -> None:
        super().__init__("This campaign is closed; ratings can no longer be added or changed.")


class PairFull(AnnotationError):
    def __init__(self) -> None:
        super().__init__("This pair already has all the ratings it needs; please take the next one.")


class CampaignCreateError(Exception):
    """Why a campaign could not be opened (shown by `create_campaign` as a one-line error)."""


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


# ---------------------------------------------------------------------------------------------------
# Campaigns


def clean_task_questions(value: Any, *, source: str = "task_questions") -> dict[str, str]:
    """{task slug: question text}; anything else is a CampaignCreateError naming what is wrong."""
    if not isinstance(value, dict):
        raise CampaignCreateError(f"{source}: expected a JSON object {{task: question}}, got {type(value).__name__}")
    cleaned: dict[str, str] = {}
    for task, question in value.items():
        if not isinstance(question, str) or not question.strip():
            raise CampaignCreateError(f"{source}: the question for task '{task}' must be non-empty text")
        if len(question) > 500:
            raise CampaignCreateError(f"{source}: the question for task '{task}' is longer than 500 characters")
        cleaned[str(task).strip()] = question.strip()
    return cleaned


GOLD_FIELDS = {"prompt_external_id", "preference", "correct_pretrained", "correct_finetuned"}


def campaign_set_gold(
    *, campaign: Campaign, rows: Iterable[tuple[int, dict]], source: str = "gold"
) -> int:
    """Mark pairs as gold from (line number, row) items: {prompt_external_id, preference (finetuned,
    pretrained, tie, both_bad), correct_pretrained, correct_finetuned (true/false/null, optional)}.
    Every row is checked before anything is written; one bad row writes none. Returns the count."""
    pairs = {
        external_id: pair
        for pair, external_id in (
            (p, p.prompt.external_id) for p in Pair.objects.filter(campaign=campaign).select_related("prompt")
        )
    }
    seen: dict[str, int] = {}
    updates: list[Pair] = []
    for line, row in rows:
        where = f"{source} line {line}"
        if not isinstance(row, dict):
            raise CampaignCreateError(f"{where}: expected a JSON object")
        unknown = sorted(set(row) - GOLD_FIELDS)
        if unknown:
            raise CampaignCreateError(f"{where}: unknown field '{unknown[0]}' (expected {sorted(GOLD_FIELDS)})")
        external_id = row.get("prompt_external_id")
        if not isinstance(external_id, str | int) or str(external_id) == "":
            raise CampaignCreateError(f"{where}: field 'prompt_external_id' is missing")
        external_id = str(external_id)
        pair = pairs.get(external_id)
        if pair is None:
            raise CampaignCreateError(
                f"{where}: field 'prompt_external_id': no pair in this campaign for prompt '{external_id}'"
            )
        if external_id in seen:
            raise CampaignCreateError(
                f"{where}: field 'prompt_external_id': prompt '{external_id}' already given on line {seen[external_id]}"
            )
        seen[external_id] = line
        preference = row.get("preference")
        if preference not in GoldPreference.values:
            raise CampaignCreateError(
                f"{where}: field 'preference' must be one of {', '.join(GoldPreference.values)} (got {preference!r})"
            )
        for field in ("correct_pretrained", "correct_finetuned"):
            if row.get(field) not in (True, False, None):
                raise CampaignCreateError(f"{where}: field '{field}' must be true, false or null")
        pair.gold_preference = preference
        pair.gold_correct_pretrained = row.get("correct_pretrained")
        pair.gold_correct_finetuned = row.get("correct_finetuned")
        updates.append(pair)
    Pair.objects.bulk_update(updates, ["gold_preference", "gold_correct_pretrained", "gold_correct_finetuned"])
    return len(updates)


@transaction.atomic
def campaign_create(
    *,
    job: GenerationJob,
    name: str,
    overlap: int = 3,
    guidelines: str = "",
    task_questions: dict[str, str] | None = None,
    gold: Iterable[tuple[int, dict]] | None = None,
    gold_source: str = "gold",
) -> Campaign:
    """Open a campaign with one pair per prompt that has both a pre-trained and a fine-tuned answer.

    `task_questions` overrides the built-in question wording per task; `gold` marks pairs as gold
    (see `campaign_set_gold`). All or nothing: any error leaves no campaign behind."""
    questions = clean_task_questions(task_questions or {})
    if not name.strip():
        raise CampaignCreateError("campaign name must not be empty")
    if overlap < 1:
        raise CampaignCreateError(f"overlap must be at least 1 (got {overlap})")
    if job.status not in FINISHED_STATUSES:
        raise CampaignCreateError(f"job {job.pk} has not finished yet (status: {job.status})")

    by_prompt: dict[int, dict[str, Answer]] = {}
    for answer in Answer.objects.filter(job=job).order_by("prompt_id", "role"):
        by_prompt.setdefault(answer.prompt_id, {})[answer.role] = answer
    complete = [
        (prompt_id, answers)
        for prompt_id, answers in sorted(by_prompt.items())
        if Role.PRETRAINED in answers and Role.FINETUNED in answers
    ]
    if not complete:
        raise CampaignCreateError(
            f"job {job.pk} has no prompt with both a pre-trained and a fine-tuned answer"
        )

    campaign = Campaign.objects.create(
        job=job, name=name.strip(), overlap=overlap, guidelines=guidelines, task_questions=questions
    )
    Pair.objects.bulk_create(
        Pair(
            campaign=campaign,
            prompt_id=prompt_id,
            pretrained_answer=answers[Role.PRETRAINED],
            finetuned_answer=answers[Role.FINETUNED],
        )
        for prompt_id, answers in complete
    )
    if gold is not None:
        campaign_set_gold(campaign=campaign, rows=gold, source=gold_source)
    return campaign


# ---------------------------------------------------------------------------------------------------
# Handing out pairs


def _holds_slot(now, prefix: str = "") -> Q:
    """An assignment holds a slot of its pair while it is rated, or open and its lock has not expired."""
    return Q(**{f"{prefix}completed_at__isnull": False}) | Q(
        **{
            f"{prefix}completed_at__isnull": True,
            f"{prefix}skipped_at__isnull": True,
            f"{prefix}locked_until__gt": now,
        }
    )


def _count_subquery(filter_q: Q) -> Coalesce:
    counted = (
        Assignment.objects.filter(filter_q, pair=OuterRef("pk"))
        .order_by()
        .values("pair")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _available_pairs(*, campaign: Campaign, annotator: User, now) -> QuerySet[Pair]:
    """Pairs this annotator has not rated and that still have a free slot, fewest ratings first.

    Written without GROUP BY (counts are correlated subqueries) so PostgreSQL accepts FOR UPDATE on it.
    """
    mine = Assignment.objects.filter(pair=OuterRef("pk"), annotator=annotator)
    return (
        Pair.objects.filter(campaign=campaign)
        .exclude(Exists(mine.filter(completed_at__isnull=False)))
        .annotate(
            taken=_count_subquery(_holds_slot(now)),
            rated=_count_subquery(Q(completed_at__isnull=False)),
            skipped_by_me=Exists(mine.filter(skipped_at__isnull=False)),
        )
        .filter(taken__lt=campaign.overlap)
        .order_by("skipped_by_me", "rated", "taken", "id")
    )


def _open_assignment(*, campaign: Campaign, annotator: User, now) -> Assignment | None:
    return (
        Assignment.objects.filter(
            pair__campaign=campaign,
            annotator=annotator,
            completed_at__isnull=True,
            skipped_at__isnull=True,
            locked_until__gt=now,
        )
        .order_by("created_at", "id")
        .first()
    )


def _draw_finetuned_side(*, campaign: Campaign) -> str:
    """Random, but the campaign's left/right counts never drift apart by more than one: the side that is
    behind gets the next assignment; on a tie a fair coin (from the OS's CSPRNG) decides."""
    counts = dict(
        Assignment.objects.filter(pair__campaign=campaign)
        .values_list("finetuned_side")
        .annotate(n=Count("id"))
        .order_by()
    )
    left, right = counts.get(Side.LEFT, 0), counts.get(Side.RIGHT, 0)
    if left < right:
        return Side.LEFT
    if right < left:
        return Side.RIGHT
    return secrets.choice([Side.LEFT, Side.RIGHT])


def assignment_next(*, campaign: Campaign, annotator: User) -> Assignment | None:
    """The annotator's open assignment in this campaign, or a new one; None when nothing is left.

    The same open assignment comes back (with its lock renewed) until it is rated, skipped or its lock
    expires. Otherwise the pair with the fewest ratings that this annotator has not rated and that has a
    free slot is taken; pairs the annotator skipped come last. Takes row locks: the annotator's row (so
    one person's parallel requests queue) and the chosen pair's row (re-counted under the lock).
    """
    if campaign.status != Campaign.Status.OPEN:
        raise CampaignClosed()
    lock_seconds = settings.ASSIGNMENT_LOCK_SECONDS
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=annotator.pk).first()
        now = timezone.now()
        current = _open_assignment(campaign=campaign, annotator=annotator, now=now)
        if current is not None:
            current.locked_until = now + timedelta(seconds=lock_seconds)
            current.save(update_fields=["locked_until"])
            return current

        tried: list[int] = []
        for _ in range(20):  # each round is a lost race on one pair; give up rather than spin
            pair = (
                _available_pairs(campaign=campaign, annotator=annotator, now=now)
                .exclude(id__in=tried)
                .select_for_update(skip_locked=True, of=("self",))
                .first()
            )
            if pair is None:
                return None
            # Re-count under the pair's lock: the candidate query may have read a snapshot taken
            # before another annotator's assignment on this pair committed.
            taken = Assignment.objects.filter(_holds_slot(timezone.now()), pair=pair).exclude(
                annotator=annotator
            )
            if taken.count() >= campaign.overlap:
                tried.append(pair.pk)
                continue
            assignment = Assignment.objects.filter(pair=pair, annotator=annotator).first()
            locked_until = timezone.now() + timedelta(seconds=lock_seconds)
            if assignment is None:
                return Assignment.objects.create(
                    pair=pair,
                    annotator=annotator,
                    finetuned_side=_draw_finetuned_side(campaign=campaign),
                    locked_until=locked_until,
                )
            # Their own expired or skipped go at this pair: reuse the row (one per pair and annotator),
            # keeping its side so a returning annotator sees the order they saw before.
            assignment.locked_until = locked_until
            assignment.skipped_at = None
            assignment.save(update_fields=["locked_until", "skipped_at"])
            return assignment
        return None


@transaction.atomic
def assignment_skip(*, assignment: Assignment, annotator: User) -> Assignment | None:
    """Leave an unrated assignment: its slot goes back to the pool. Rated assignments stay as they are.
    None when the assignment is not this annotator's."""
    assignment = Assignment.objects.select_for_update().filter(pk=assignment.pk, annotator=annotator).first()
    if assignment is None:
        return None
    if assignment.completed_at is None:
        assignment.skipped_at = timezone.now()
        assignment.locked_until = None
        assignment.save(update_fields=["skipped_at", "locked_until"])
    return assignment


def annotator_progress(*, campaign: Campaign, annotator: User) -> Progress:
    """done = this annotator's ratings in the campaign; total = done + pairs they could still rate.

    Still to rate: pairs they have not rated that have a free slot, or whose slot they hold themselves
    (their own open assignment may be what makes its pair look full). One query (hot path: every `next`)."""
    now = timezone.now()
    mine = Assignment.objects.filter(pair=OuterRef("pk"), annotator=annotator)
    counts = (
        Pair.objects.filter(campaign=campaign)
        .annotate(
            rated_by_me=Exists(mine.filter(completed_at__isnull=False)),
            open_by_me=Exists(
                mine.filter(completed_at__isnull=True, skipped_at__isnull=True, locked_until__gt=now)
            ),
            taken=_count_subquery(_holds_slot(now)),
        )
        .aggregate(
            done=Count("id", filter=Q(rated_by_me=True)),
            still_open=Count(
                "id", filter=Q(rated_by_me=False) & (Q(taken__lt=campaign.overlap) | Q(open_by_me=True))
            ),
        )
    )
    return Progress(done=counts["done"], total=counts["done"] + counts["still_open"])


# ---------------------------------------------------------------------------------------------------
# Ratings


def rating_submit(
    *,
    assignment: Assignment,
    annotator: User,
    score_left: int,
    score_right: int,
    correct_left: bool | None,
    correct_right: bool | None,
    preference: str,
    comment: str = "",
    duration_ms: int | None = None,
) -> tuple[Rating, bool] | None:
    """Create the annotator's rating of an assignment, or update it when they post again.

    Returns (rating, created), or None when the assignment is not this annotator's (callers answer 404,
    so nobody learns which assignments exist). Raises CampaignClosed once the campaign is closed, and
    PairFull when a first rating would take the pair past its overlap (the annotator's lock had expired
    and the slot went to others). `duration_ms` of a later post is added to the earlier one: the rating
    keeps the total time spent on the pair. Locks the assignment and its pair.
    """
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update()
            .select_related("pair__campaign")
            .filter(pk=assignment.pk, annotator=annotator)
            .first()
        )
        if assignment is None:
            return None
        campaign = assignment.pair.campaign
        if campaign.status != Campaign.Status.OPEN:
            raise CampaignClosed()
        fields = {
            "score_left": score_left,
            "score_right": score_right,
            "correct_left": correct_left,
            "correct_right": correct_right,
            "preference": preference,
            "comment": comment or "",
        }
        rating = Rating.objects.filter(assignment=assignment).first()
        if rating is not None:
            for name, value in fields.items():
                setattr(rating, name, value)
            if duration_ms is not None:
                rating.duration_ms = (rating.duration_ms or 0) + duration_ms
            rating.save()
            return rating, False

        Pair.objects.select_for_update().filter(pk=assignment.pair_id).first()
        rated = Assignment.objects.filter(pair_id=assignment.pair_id, completed_at__isnull=False).count()
        if rated >= campaign.overlap:
            raise PairFull()
        rating = Rating.objects.create(assignment=assignment, duration_ms=duration_ms, **fields)
        assignment.completed_at = timezone.now()
        assignment.skipped_at = None
        assignment.locked_until = None
        assignment.save(update_fields=["completed_at", "skipped_at", "locked_until"])
        return rating, True


def assignment_previous(
    *, campaign: Campaign, annotator: User, before: Assignment | None = None
) -> Assignment | None:
    """The annotator's rated assignment just before `before` (or their latest one), for the 'back' key."""
    rated = Assignment.objects.filter(
        pair__campaign=campaign, annotator=annotator, completed_at__isnull=False
    ).order_by("-completed_at", "-id")
    if before is not None and before.completed_at is not None:
        rated = rated.filter(
            Q(completed_at__lt=before.completed_at) | Q(completed_at=before.completed_at, id__lt=before.id)
        )
    elif before is not None:
        rated = rated.exclude(pk=before.pk)
    return rated.first()
