"""Handing out blinded pairs: an annotator's next pair (with its left/right draw), skipping one, going
back to an earlier rating, and the annotator's progress.

Every function that hands out a slot of a pair runs inside `transaction.atomic()` and re-counts the
pair's slots under a lock, so concurrent annotators can never push a pair past its overlap:

* PostgreSQL: candidate pairs are locked with `SELECT ... FOR UPDATE SKIP LOCKED`, so two annotators
  asking at once get different pairs instead of queueing on the same row.
* SQLite: `select_for_update()` is a no-op, but settings open every transaction with
  `BEGIN IMMEDIATE`, so writers are serialised and the re-count is exact.

An annotation slot is held by an assignment while it is rated, or open and its lock has not expired;
`ASSIGNMENT_LOCK_SECONDS` is how long an open assignment holds it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .errors import CampaignClosed
from .models import Assignment, Campaign, Pair, Side, User

# each round of `assignment_next` is a race lost on one pair; give up rather than spin
MAX_PAIR_ATTEMPTS = 20


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


def blinded_texts(assignment: Assignment) -> tuple[str, str]:
    """(left text, right text) in the order drawn for this assignment. The only place the stored side
    turns into an order; callers show the texts labelled only left/right."""
    pair = assignment.pair
    finetuned, pretrained = pair.finetuned_answer.text, pair.pretrained_answer.text
    if assignment.finetuned_side == Side.LEFT:
        return finetuned, pretrained
    return pretrained, finetuned


def _holds_slot(now: datetime, prefix: str = "") -> Q:
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


def _available_pairs(*, campaign: Campaign, annotator: User, now: datetime) -> QuerySet[Pair]:
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


def _open_assignment(*, campaign: Campaign, annotator: User, now: datetime) -> Assignment | None:
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


def _take_pair(*, pair: Pair, campaign: Campaign, annotator: User) -> Assignment | None:
    """Give `pair` (locked by the caller) to the annotator, or None when its slots are full after all.

    Re-counts under the pair's lock: the candidate query may have read a snapshot taken before another
    annotator's assignment on this pair committed."""
    taken = Assignment.objects.filter(_holds_slot(timezone.now()), pair=pair).exclude(annotator=annotator)
    if taken.count() >= campaign.overlap:
        return None
    assignment = Assignment.objects.filter(pair=pair, annotator=annotator).first()
    locked_until = timezone.now() + timedelta(seconds=settings.ASSIGNMENT_LOCK_SECONDS)
    if assignment is None:
        return Assignment.objects.create(
            pair=pair,
            annotator=annotator,
            finetuned_side=_draw_finetuned_side(campaign=campaign),
            locked_until=locked_until,
        )
    # Their own expired or skipped go at this pair: reuse the row (one per pair and annotator), keeping
    # its side so a returning annotator sees the order they saw before.
    assignment.locked_until = locked_until
    assignment.skipped_at = None
    assignment.save(update_fields=["locked_until", "skipped_at"])
    return assignment


def assignment_next(*, campaign: Campaign, annotator: User) -> Assignment | None:
    """The annotator's open assignment in this campaign, or a new one; None when nothing is left.

    The same open assignment comes back (with its lock renewed) until it is rated, skipped or its lock
    expires. Otherwise the pair with the fewest ratings that this annotator has not rated and that has a
    free slot is taken; pairs the annotator skipped come last. Takes row locks: the annotator's row (so
    one person's parallel requests queue) and the chosen pair's row (re-counted under the lock).
    """
    if campaign.status != Campaign.Status.OPEN:
        raise CampaignClosed()
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=annotator.pk).first()
        now = timezone.now()
        current = _open_assignment(campaign=campaign, annotator=annotator, now=now)
        if current is not None:
            current.locked_until = now + timedelta(seconds=settings.ASSIGNMENT_LOCK_SECONDS)
            current.save(update_fields=["locked_until"])
            return current

        tried: list[int] = []
        for _ in range(MAX_PAIR_ATTEMPTS):
            pair = (
                _available_pairs(campaign=campaign, annotator=annotator, now=now)
                .exclude(id__in=tried)
                .select_for_update(skip_locked=True, of=("self",))
                .first()
            )
            if pair is None:
                return None
            assignment = _take_pair(pair=pair, campaign=campaign, annotator=annotator)
            if assignment is not None:
                return assignment
            tried.append(pair.pk)
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
