"""Which side the fine-tuned answer is shown on (issue 14, item 2): a fair coin for every assignment,
independent of every other, so neither an annotator's own sequence nor the campaign's draws in id order
tell anything about the next side.

The old rule (the side that is behind gets the next assignment) kept the counts within one, and so made
draws 2, 4, 6 ... of a campaign the opposite of the draw before: `rlrllrrlrl...`. The first two tests
fail on that rule by a wide margin (p < 1e-10) and fail a fair coin with probability about 1e-6 each.
"""

from __future__ import annotations

import itertools
import random

import pytest
from scipy import stats

from annotations.assignment import assignment_next
from annotations.models import Assignment, User
from tests.support.annotation_data import make_campaign

pytestmark = pytest.mark.django_db

# a fair coin fails one of these tests with probability about this (per test)
ALPHA = 1e-6


def raters(n: int) -> list[User]:
    return User.objects.bulk_create(User(username=f"side-rater-{i}", role="annotator") for i in range(n))


def take_and_finish(campaign, rater) -> Assignment | None:
    assignment = assignment_next(campaign=campaign, annotator=rater)
    if assignment is not None:
        Assignment.objects.filter(pk=assignment.pk).update(completed_at=assignment.created_at)
    return assignment


def sides_seen(campaign, rater) -> list[str]:
    """The fine-tuned side of every pair the rater is served, in order, until none is left."""
    return [a.finetuned_side for a in iter(lambda: take_and_finish(campaign, rater), None)]


def runs_test_p(sides: list[str]) -> float:
    """Wald–Wolfowitz runs test, two-sided, normal approximation: too many runs means alternation."""
    n1 = sides.count("left")
    n2 = len(sides) - n1
    runs = 1 + sum(a != b for a, b in itertools.pairwise(sides))
    mean = 1 + 2 * n1 * n2 / (n1 + n2)
    variance = 2 * n1 * n2 * (2 * n1 * n2 - n1 - n2) / ((n1 + n2) ** 2 * (n1 + n2 - 1))
    return float(2 * stats.norm.sf(abs(runs - mean) / variance**0.5))


def assert_unpredictable(sides: list[str], label: str) -> None:
    n = len(sides)
    left = sides.count("left")
    assert stats.binomtest(left, n).pvalue > ALPHA, f"{label}: {left} of {n} on the left"
    assert runs_test_p(sides) > ALPHA, f"{label}: runs test fails: {''.join(s[0] for s in sides)}"
    # draws 2k and 2k+1: the old rule made them opposite every time
    opposite = sum(sides[k] != sides[k + 1] for k in range(0, n - 1, 2))
    blocks = n // 2
    assert stats.binomtest(opposite, blocks).pvalue > ALPHA, f"{label}: {opposite} of {blocks} pairs opposite"
    # knowing the previous draw: the next is the same side about half the time
    same = sum(a == b for a, b in itertools.pairwise(sides))
    assert stats.binomtest(same, n - 1).pvalue > ALPHA, f"{label}: next equals previous {same} of {n - 1}"


def test_an_annotator_alone_sees_no_pattern_in_the_sides():
    campaign = make_campaign(prompts=200, overlap=1)
    (rater,) = raters(1)
    sides = sides_seen(campaign, rater)
    assert len(sides) == 200
    assert_unpredictable(sides, "annotator's sequence")


def test_the_campaigns_draws_in_id_order_and_each_annotators_sequence_show_no_pattern():
    campaign = make_campaign(prompts=60, overlap=4)
    crowd = raters(4)
    for _ in range(60):  # the four take turns, as annotators working at once would
        for rater in crowd:
            take_and_finish(campaign, rater)
    in_id_order = list(
        Assignment.objects.filter(pair__campaign=campaign)
        .order_by("id")
        .values_list("finetuned_side", flat=True)
    )
    assert len(in_id_order) == 240
    assert_unpredictable(in_id_order, "campaign in id order")
    for rater in crowd:
        own = list(
            Assignment.objects.filter(annotator=rater)
            .order_by("created_at", "id")
            .values_list("finetuned_side", flat=True)
        )
        assert len(own) == 60
        # a shorter sequence: only the gross patterns are tested on each one
        assert runs_test_p(own) > ALPHA and stats.binomtest(own.count("left"), 60).pvalue > ALPHA


def test_sides_do_not_come_from_a_seedable_generator():
    # Draws from `random` (or any generator a process seeds) would repeat after the same seed; the
    # CSPRNG's do not. Two campaigns drawn after the same random.seed(): 64 sides each, different.
    (rater,) = raters(1)
    sequences = []
    state = random.getstate()
    try:
        for name in ("seed-a", "seed-b"):
            campaign = make_campaign(prompts=64, overlap=1, dataset_name=name)
            random.seed(1234)
            sequences.append(sides_seen(campaign, rater))
    finally:
        random.setstate(state)
    assert len(sequences[0]) == len(sequences[1]) == 64
    assert sequences[0] != sequences[1]
