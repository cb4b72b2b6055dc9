"""The order pairs are served in (issue 14, item 1): each annotator's own, random, and stratified by task,
so a campaign rated only in part is balanced across tasks instead of being the first tasks of the file."""

from __future__ import annotations

from collections import Counter

import pytest
from django.test import override_settings
from scipy import stats

from annotations.assignment import assignment_next, assignment_skip, serving_order
from annotations.campaigns import campaign_create
from annotations.models import Assignment, Campaign, User
from generation.models import Prompt
from tests.support.annotation_data import make_job

pytestmark = pytest.mark.django_db

TASKS = ("sentiment", "features", "recommendation", "relevance")


def blocked_campaign(
    *, per_task: int = 25, overlap: int = 3, sizes: tuple[int, ...] | None = None
) -> Campaign:
    """A campaign whose file lists its tasks one block after another (the demo's layout): 25 sentiment
    prompts, then 25 features prompts, and so on."""
    sizes = sizes or (per_task,) * len(TASKS)
    job = make_job(prompts=sum(sizes), dataset_name=f"blocked-{sum(sizes)}-{len(sizes)}")
    prompt_ids = list(Prompt.objects.filter(dataset=job.dataset).order_by("id").values_list("id", flat=True))
    start = 0
    for task, size in zip(TASKS, sizes, strict=False):
        Prompt.objects.filter(pk__in=prompt_ids[start : start + size]).update(task=task)
        start += size
    return campaign_create(job=job, name="blocked", overlap=overlap)


def served_tasks(campaign: Campaign, annotator: User, n: int) -> list[str]:
    """The tasks of the first n pairs the annotator is served, rating (marking done) each in turn."""
    tasks = []
    for _ in range(n):
        assignment = assignment_next(campaign=campaign, annotator=annotator)
        if assignment is None:
            break
        tasks.append(assignment.pair.prompt.task)
        Assignment.objects.filter(pk=assignment.pk).update(completed_at=assignment.created_at)
    return tasks


def worst_prefix_gap(tasks: list[str], shares: dict[str, float]) -> float:
    """The largest distance, over every prefix, between a task's count and its proportional share."""
    counts: Counter = Counter()
    worst = 0.0
    for m, task in enumerate(tasks, start=1):
        counts[task] += 1
        worst = max(worst, max(abs(counts[t] - m * share) for t, share in shares.items()))
    return worst


def test_a_new_annotator_gets_every_task_from_the_first_pairs(annotator):
    # Served in file order, the first 22 pairs were all sentiment; now the first 20 hold each task ~5 times.
    campaign = blocked_campaign()
    tasks = served_tasks(campaign, annotator, 20)
    assert len(tasks) == 20
    assert all(3 <= Counter(tasks)[task] <= 7 for task in TASKS), Counter(tasks)
    assert worst_prefix_gap(tasks, {task: 0.25 for task in TASKS}) <= 2


def test_every_prefix_is_balanced_with_tasks_of_unequal_size(annotator):
    sizes = (40, 20, 10, 10)
    campaign = blocked_campaign(sizes=sizes, overlap=1)
    tasks = served_tasks(campaign, annotator, 80)
    assert len(tasks) == 80 and Counter(tasks) == dict(zip(TASKS, sizes, strict=True))
    shares = {task: size / 80 for task, size in zip(TASKS, sizes, strict=True)}
    # the bound of systematic stratification: 1 + tasks × share (3 for the largest task here)
    assert worst_prefix_gap(tasks, shares) <= 1 + len(TASKS) * max(shares.values())


def test_the_order_is_the_annotators_own_and_survives_a_restart(annotator, other_annotator):
    campaign = blocked_campaign(overlap=1)
    mine = serving_order(campaign=campaign, annotator_id=annotator.pk)
    assert sorted(mine) == sorted(campaign.pairs.values_list("id", flat=True))
    # computed again (another request, another process): the same order; another annotator's differs
    assert serving_order(campaign=campaign, annotator_id=annotator.pk) == mine
    assert serving_order(campaign=campaign, annotator_id=other_annotator.pk) != mine
    # it comes from the site's secret key: another key, another order
    with override_settings(SECRET_KEY="another-secret-key-for-this-test-only-0123456789"):
        assert serving_order(campaign=campaign, annotator_id=annotator.pk) != mine
    # and it is the order assignment_next follows for an annotator alone in the campaign
    served = []
    while (assignment := assignment_next(campaign=campaign, annotator=annotator)) is not None:
        served.append(assignment.pair_id)
        Assignment.objects.filter(pk=assignment.pk).update(completed_at=assignment.created_at)
    assert served == mine


def test_every_pair_is_equally_likely_to_come_first_within_its_task(db):
    # Over 800 annotators, the first sentiment pair each is offered is spread evenly over the 25 (a
    # chi-square test; the old file order gave the same pair to everyone).
    campaign = blocked_campaign()
    sentiment = set(campaign.pairs.filter(prompt__task="sentiment").values_list("id", flat=True))
    firsts = Counter()
    for annotator_id in range(1, 801):
        order = serving_order(campaign=campaign, annotator_id=annotator_id)
        firsts[next(pair_id for pair_id in order if pair_id in sentiment)] += 1
    observed = [firsts[pair_id] for pair_id in sorted(sentiment)]
    assert stats.chisquare(observed).pvalue > 1e-6, observed


def test_fewest_ratings_still_come_first_and_skips_still_come_last(annotator, other_annotator):
    campaign = blocked_campaign(per_task=3, overlap=2)
    served_tasks(campaign, other_annotator, 4)  # four pairs now have one rating
    rated_once = set(Assignment.objects.filter(annotator=other_annotator).values_list("pair_id", flat=True))
    first = assignment_next(campaign=campaign, annotator=annotator)
    assert first.pair_id not in rated_once
    assignment_skip(assignment=first, annotator=annotator)
    order = []
    while (assignment := assignment_next(campaign=campaign, annotator=annotator)) is not None:
        order.append(assignment.pair_id)
        Assignment.objects.filter(pk=assignment.pk).update(completed_at=assignment.created_at)
    assert len(order) == 12
    assert set(order[:7]).isdisjoint(rated_once) and order[-1] == first.pair_id
    assert set(order[7:11]) == rated_once
