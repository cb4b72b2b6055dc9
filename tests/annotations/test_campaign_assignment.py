"""Opening campaigns and handing out pairs: overlap, locks, skips and sides (serving order and the
side draws have their own files: test_serving_order.py, test_side_draws.py)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotations.assignment import Progress, annotator_progress, assignment_next, assignment_skip
from annotations.campaigns import CampaignCreateError, campaign_create
from annotations.errors import PairFull
from annotations.models import Assignment, Pair, Rating, User
from annotations.rating import rating_submit
from generation.models import Answer, JobStatus, Role
from tests.support.annotation_data import VALID_RATING, make_campaign, make_job

pytestmark = pytest.mark.django_db


def annotators(n: int) -> list[User]:
    return [
        User.objects.create_user(username=f"rater{i}", password="x" * 12, role="annotator") for i in range(n)
    ]


def rate(assignment: Assignment, **changes):
    return rating_submit(
        assignment=assignment, annotator=assignment.annotator, **{**VALID_RATING, **changes}
    )


# --- campaign_create ------------------------------------------------------------------------------


def test_campaign_has_one_pair_per_prompt_with_both_answers(db):
    job = make_job(prompts=4)
    Answer.objects.filter(job=job, prompt__external_id="p3", role=Role.FINETUNED).delete()
    campaign = campaign_create(job=job, name="c", overlap=2)
    assert campaign.pairs.count() == 3
    for pair in Pair.objects.filter(campaign=campaign):
        assert pair.pretrained_answer.role == Role.PRETRAINED and pair.finetuned_answer.role == Role.FINETUNED
        assert pair.pretrained_answer.prompt_id == pair.finetuned_answer.prompt_id == pair.prompt_id


def test_campaign_needs_a_finished_job_with_answers(db):
    running = make_job(prompts=2, dataset_name="a", status=JobStatus.RUNNING)
    with pytest.raises(CampaignCreateError, match="has not finished yet"):
        campaign_create(job=running, name="c")
    empty = make_job(prompts=2, dataset_name="b", with_answers=False)
    with pytest.raises(CampaignCreateError, match="no prompt with both"):
        campaign_create(job=empty, name="c")
    assert not Pair.objects.exists()


# --- assignment_next --------------------------------------------------------------------------------


def test_no_pair_exceeds_overlap_and_nobody_gets_a_pair_twice(db):
    campaign = make_campaign(prompts=5, overlap=3)
    raters = annotators(7)
    for _ in range(10):  # rounds: everybody takes and rates until nothing is left
        for rater in raters:
            assignment = assignment_next(campaign=campaign, annotator=rater)
            if assignment is not None:
                rate(assignment)
    per_pair = Counter(
        Assignment.objects.filter(completed_at__isnull=False).values_list("pair_id", flat=True)
    )
    assert per_pair == {pair.pk: 3 for pair in campaign.pairs.all()}
    per_rater_pair = Counter(Assignment.objects.values_list("pair_id", "annotator_id"))
    assert max(per_rater_pair.values()) == 1
    assert Rating.objects.count() == 15
    for rater in raters:
        assert assignment_next(campaign=campaign, annotator=rater) is None


def test_pairs_with_the_fewest_ratings_come_first(db):
    campaign = make_campaign(prompts=3, overlap=3)
    a, b, c = annotators(3)
    seen_by_a = assignment_next(campaign=campaign, annotator=a)
    rate(seen_by_a)
    assert assignment_next(campaign=campaign, annotator=b).pair_id != seen_by_a.pair_id


def test_open_assignments_hold_their_slot_until_the_lock_expires(db):
    campaign = make_campaign(prompts=1, overlap=1)
    a, b = annotators(2)
    held = assignment_next(campaign=campaign, annotator=a)
    assert assignment_next(campaign=campaign, annotator=b) is None
    Assignment.objects.filter(pk=held.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    taken = assignment_next(campaign=campaign, annotator=b)
    assert taken is not None and taken.pair_id == held.pair_id


def test_an_expired_assignment_comes_back_to_its_annotator_as_the_same_row(db):
    campaign = make_campaign(prompts=1, overlap=2)
    (a,) = annotators(1)
    first = assignment_next(campaign=campaign, annotator=a)
    Assignment.objects.filter(pk=first.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    again = assignment_next(campaign=campaign, annotator=a)
    assert again.pk == first.pk and again.finetuned_side == first.finetuned_side
    assert again.locked_until > timezone.now()


def test_a_late_rating_cannot_push_a_pair_past_its_overlap(db):
    campaign = make_campaign(prompts=1, overlap=1)
    a, b = annotators(2)
    late = assignment_next(campaign=campaign, annotator=a)
    Assignment.objects.filter(pk=late.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    rate(assignment_next(campaign=campaign, annotator=b))
    with pytest.raises(PairFull):
        rate(late)
    assert Rating.objects.count() == 1


def test_skipped_pairs_free_their_slot_and_come_back_last(db):
    campaign = make_campaign(prompts=2, overlap=1)
    a, b = annotators(2)
    first = assignment_next(campaign=campaign, annotator=a)
    assignment_skip(assignment=first, annotator=a)
    second = assignment_next(campaign=campaign, annotator=a)
    assert second.pair_id != first.pair_id
    # the skipped slot is free for somebody else
    assert assignment_next(campaign=campaign, annotator=b).pair_id == first.pair_id
    rate(second)
    assert assignment_next(campaign=campaign, annotator=a) is None


def test_a_skipped_pair_returns_when_nothing_else_is_left(db):
    campaign = make_campaign(prompts=1, overlap=1)
    (a,) = annotators(1)
    first = assignment_next(campaign=campaign, annotator=a)
    assignment_skip(assignment=first, annotator=a)
    again = assignment_next(campaign=campaign, annotator=a)
    assert again.pk == first.pk and again.skipped_at is None


def test_sides_are_not_a_fixed_pattern(db):
    # Over many campaigns the first side drawn is random: both outcomes turn up.
    firsts = set()
    (a,) = annotators(1)
    for i in range(24):
        campaign = make_campaign(prompts=1, dataset_name=f"d{i}")
        firsts.add(assignment_next(campaign=campaign, annotator=a).finetuned_side)
        if firsts == {"left", "right"}:
            break
    assert firsts == {"left", "right"}


def test_only_the_owner_can_rate_or_skip(db):
    campaign = make_campaign(prompts=1)
    a, b = annotators(2)
    assignment = assignment_next(campaign=campaign, annotator=a)
    assert rating_submit(assignment=assignment, annotator=b, **VALID_RATING) is None
    assert assignment_skip(assignment=assignment, annotator=b) is None


def test_progress_total_is_what_this_annotator_can_still_rate(db):
    campaign = make_campaign(prompts=3, overlap=1)
    a, b = annotators(2)
    rate(assignment_next(campaign=campaign, annotator=b))
    assert annotator_progress(campaign=campaign, annotator=a) == Progress(done=0, total=2)
    mine = assignment_next(campaign=campaign, annotator=a)
    assert annotator_progress(campaign=campaign, annotator=a) == Progress(done=0, total=2)
    rate(mine)
    assert annotator_progress(campaign=campaign, annotator=a) == Progress(done=1, total=2)


@pytest.mark.django_db(transaction=True)
def test_concurrent_annotators_never_overfill_a_pair(db):
    """Real threads, each with its own database connection (PostgreSQL: SKIP LOCKED; SQLite: IMMEDIATE)."""
    if connection.vendor == "sqlite" and "memory" in str(connection.settings_dict["NAME"]):
        pytest.skip("in-memory SQLite shares one cache between threads; run with a file or PostgreSQL")
    campaign = make_campaign(prompts=6, overlap=2)
    raters = annotators(8)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(raters))

    def work(rater: User) -> None:
        from django.db import connections

        try:
            barrier.wait()
            for _ in range(6):
                assignment = assignment_next(campaign=campaign, annotator=rater)
                if assignment is None:
                    return
                rate(assignment)
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(rater,)) for rater in raters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    per_pair = Counter(
        Assignment.objects.filter(completed_at__isnull=False).values_list("pair_id", flat=True)
    )
    assert per_pair == {pair.pk: 2 for pair in campaign.pairs.all()}
    assert max(Counter(Assignment.objects.values_list("pair_id", "annotator_id")).values()) == 1
