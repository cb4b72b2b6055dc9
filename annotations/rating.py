"""Recording ratings: an annotator's scores for the two answers of an assignment, kept by side."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .errors import CampaignClosed, PairFull
from .models import Assignment, Campaign, Pair, Rating, RatingRevision, User

# Time on a pair. One visit (one post of the form or API) may report at most MAX_VISIT_MS: beyond that the
# page sat open and the figure says nothing about rating. A rating keeps the sum over its visits, capped at
# MAX_TOTAL_MS, far below the column's 2**31 - 1 however often it is posted again.
MAX_VISIT_MS = 4 * 3600 * 1000
MAX_TOTAL_MS = 24 * 3600 * 1000


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
    and the slot went to others). `duration_ms` is one visit's time (callers refuse more than MAX_VISIT_MS);
    a later post's is added to the earlier ones: the rating keeps the total time spent on the pair, capped
    at MAX_TOTAL_MS. Every post also appends a RatingRevision (the version and that visit's time), so an
    edit keeps what it replaced. Locks the assignment and its pair.
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
                rating.duration_ms = min((rating.duration_ms or 0) + duration_ms, MAX_TOTAL_MS)
            rating.revision += 1
            rating.save()
            _keep_revision(rating, fields, duration_ms)
            return rating, False

        Pair.objects.select_for_update().filter(pk=assignment.pair_id).first()
        rated = Assignment.objects.filter(pair_id=assignment.pair_id, completed_at__isnull=False).count()
        if rated >= campaign.overlap:
            raise PairFull()
        if duration_ms is not None:
            duration_ms = min(duration_ms, MAX_TOTAL_MS)
        rating = Rating.objects.create(assignment=assignment, duration_ms=duration_ms, **fields)
        _keep_revision(rating, fields, duration_ms)
        assignment.completed_at = timezone.now()
        assignment.skipped_at = None
        assignment.locked_until = None
        assignment.save(update_fields=["completed_at", "skipped_at", "locked_until"])
        return rating, True


def _keep_revision(rating: Rating, fields: dict, duration_ms: int | None) -> None:
    """Append the version just saved as revision `rating.revision`, with this visit's time alone."""
    RatingRevision.objects.create(
        rating=rating,
        number=rating.revision,
        duration_ms=None if duration_ms is None else min(duration_ms, MAX_TOTAL_MS),
        rated_at=rating.updated_at,
        **fields,
    )
