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

Serving order: every annotator has an order of the campaign's pairs of their own (`serving_order`),
random and stratified by task, so tasks interleave from the first pair and a campaign rated only in
part covers every task in proportion. It is drawn from a generator seeded with an HMAC of
`SECRET_KEY`, the campaign and the annotator: the same after a restart, on every web process, with
no table of its own, and not guessable without the key. Among the pairs an annotator can take, the
ones with the fewest ratings still come first (so coverage spreads over prompts); this order decides
among equals.

Sides: each new assignment's side is a fair coin from the OS's CSPRNG (`secrets`), independent of
every other draw, so no sequence of sides, an annotator's own or the campaign's, says anything about
the next one. Balance is left to chance (about ±√n); the report measures position bias instead.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
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


def serving_order(*, campaign: Campaign, annotator_id: int) -> list[int]:
    """The campaign's pair ids in the order this annotator is offered them: random within each task,
    tasks interleaved in proportion from the start (systematic stratification: the r-th of a task's
    n pairs sits at (r + u) / n on a common line, u a random offset per task, so any first m pairs hold
    each task's share of m within 1 + (tasks × its share of the pairs): within 2 for tasks of equal
    size). Deterministic per (campaign, annotator) given the key; pairs never change after a campaign
    is opened, so neither does the order."""
    return _stratified_order(campaign.pk, annotator_id)


def _stratified_order(campaign_id: int, annotator_id: int) -> list[int]:
    pairs = Pair.objects.filter(campaign_id=campaign_id).order_by("id").values_list("id", "prompt__task")
    by_task: dict[str, list[int]] = {}
    for pair_id, task in pairs:
        by_task.setdefault(task, []).append(pair_id)
    message = f"evalsite:serving-order:{campaign_id}:{annotator_id}".encode()
    seed = hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()
    rng = random.Random(int.from_bytes(seed, "big"))  # a shuffle, not a secret: the key is the secret
    placed: list[tuple[float, float, int]] = []
    for task in sorted(by_task):
        ids = by_task[task]
        rng.shuffle(ids)
        offset = rng.random()
        placed.extend(((rank + offset) / len(ids), rng.random(), pair_id) for rank, pair_id in enumerate(ids))
    placed.sort()
    return [pair_id for _, _, pair_id in placed]


def _candidate_pairs(*, campaign: Campaign, annotator: User, now: datetime) -> list[int]:
    """Ids of the pairs this annotator has not rated and that still have a free slot, best first: pairs
    they skipped last, then fewest ratings, fewest slots taken, and their own serving order.

    Read without locks (the caller locks and re-counts the pair it takes): one query for the counts
    (correlated subqueries); the order is kept per process (`_serving_ranks`)."""
    mine = Assignment.objects.filter(pair=OuterRef("pk"), annotator=annotator)
    rows = (
        Pair.objects.filter(campaign=campaign)
        .exclude(Exists(mine.filter(completed_at__isnull=False)))
        .annotate(
            taken=_count_subquery(_holds_slot(now)),
            rated=_count_subquery(Q(completed_at__isnull=False)),
            skipped_by_me=Exists(mine.filter(skipped_at__isnull=False)),
        )
        .filter(taken__lt=campaign.overlap)
        .order_by()
        .values_list("id", "skipped_by_me", "rated", "taken")
    )
    rank = _serving_ranks(campaign, annotator.pk)
    ordered = sorted(rows, key=lambda r: (r[1], r[2], r[3], rank.get(r[0], len(rank))))
    return [row[0] for row in ordered]


def _serving_ranks(campaign: Campaign, annotator_id: int) -> dict[int, int]:
    """{pair id: place in the annotator's serving order}, kept per process: the order never changes
    (pairs are fixed when a campaign opens), and computing it is most of a `next` call's Python time on
    a campaign of thousands of pairs. Keyed by the campaign's creation time too (ids come back after a
    database reset) and by a digest of the key the order is drawn with."""
    secret = hashlib.sha256(settings.SECRET_KEY.encode()).hexdigest()
    return _cached_ranks(campaign.pk, campaign.created_at.isoformat(), annotator_id, secret)


@functools.lru_cache(maxsize=64)  # about 1 MB per 10,000-pair order
def _cached_ranks(campaign_id: int, opened: str, annotator_id: int, secret: str) -> dict[int, int]:
    return {pair_id: i for i, pair_id in enumerate(_stratified_order(campaign_id, annotator_id))}


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


def _draw_finetuned_side() -> str:
    """A fair coin from the OS's CSPRNG, independent of every earlier draw (no balancing: a rule that
    gives the next draw to the side behind makes every second draw predictable)."""
    return Side.LEFT if secrets.randbits(1) else Side.RIGHT


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
            finetuned_side=_draw_finetuned_side(),
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
    free slot is taken, ties going by their serving order; pairs the annotator skipped come last. Takes
    row locks: the annotator's row (so one person's parallel requests queue) and the chosen pair's row
    (re-counted under the lock; a pair locked by someone else is passed over, SKIP LOCKED).
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

        lost = 0
        for pair_id in _candidate_pairs(campaign=campaign, annotator=annotator, now=now):
            # another annotator taking this pair right now holds its lock: go on to the next one
            pair = Pair.objects.select_for_update(skip_locked=True, of=("self",)).filter(pk=pair_id).first()
            if pair is None:
                continue
            assignment = _take_pair(pair=pair, campaign=campaign, annotator=annotator)
            if assignment is not None:
                return assignment
            lost += 1
            if lost >= MAX_PAIR_ATTEMPTS:
                break
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
