"""Simulated raters for campaigns of more than two systems (issue 17), written through the ORM.

`rate_by_strength` gives every pair of a campaign `raters` ratings from raters whose taste follows known
Bradley–Terry strengths: the answer of system i is preferred to system j's with probability
1 / (1 + exp(s_j − s_i)) (a tie one time in ten), scored 4 against 2 and judged correct against
incorrect; stored left/right by a side drawn per assignment, as the app stores them. `copy_pairs`
lays some of a campaign's pairs, with their assignments and ratings, into a new campaign on the same
job (the report of "only these pairs" to compare with).
"""

from __future__ import annotations

import math
import random

from annotations.models import Assignment, Campaign, Pair, Rating, User


def _rate(rng: random.Random, strength: dict[str, float], a: str, b: str) -> tuple[str, int, int, bool, bool]:
    """(preference in slot terms "a"/"b"/"tie", score a, score b, a correct, b correct)."""
    if rng.random() < 0.1:
        return "tie", 3, 3, True, True
    b_wins = rng.random() < 1 / (1 + math.exp(strength[a] - strength[b]))
    return ("b", 2, 4, False, True) if b_wins else ("a", 4, 2, True, False)


def rate_by_strength(
    campaign: Campaign, strength: dict[str, float], *, raters: int = 3, seed: int = 0
) -> list[User]:
    """Every pair of `campaign` rated by `raters` simulated annotators of the given taste."""
    rng = random.Random(seed)
    users = [
        User.objects.create(username=f"{campaign.name[:20]}-sim{i}-{campaign.pk}", role="annotator")
        for i in range(raters)
    ]
    pairs = Pair.objects.filter(campaign=campaign).select_related("pretrained_answer", "finetuned_answer")
    for pair in pairs.order_by("id"):
        a, b = pair.pretrained_answer.role, pair.finetuned_answer.role
        for user in users:
            side = rng.choice(("left", "right"))  # where b (the "finetuned" slot) is shown
            pref, score_a, score_b, ok_a, ok_b = _rate(rng, strength, a, b)
            b_left = side == "left"
            preference = "tie" if pref == "tie" else ("left" if (pref == "b") == b_left else "right")
            assignment = Assignment.objects.create(pair=pair, annotator=user, finetuned_side=side)
            Rating.objects.create(
                assignment=assignment,
                score_left=score_b if b_left else score_a,
                score_right=score_a if b_left else score_b,
                correct_left=ok_b if b_left else ok_a,
                correct_right=ok_a if b_left else ok_b,
                preference=preference,
                duration_ms=4000,
            )
    return users


def copy_pairs(campaign: Campaign, pairs: list[Pair], name: str) -> Campaign:
    """A new campaign on `campaign`'s job holding copies of `pairs` (in their order) with every
    assignment and rating of each."""
    copy = Campaign.objects.create(job=campaign.job, name=name, overlap=campaign.overlap)
    for pair in pairs:
        new = Pair.objects.create(
            campaign=copy,
            prompt=pair.prompt,
            pretrained_answer=pair.pretrained_answer,
            finetuned_answer=pair.finetuned_answer,
            gold_preference=pair.gold_preference,
        )
        for assignment in Assignment.objects.filter(pair=pair).select_related("rating").order_by("id"):
            rating = assignment.rating
            moved = Assignment.objects.create(
                pair=new,
                annotator=assignment.annotator,
                finetuned_side=assignment.finetuned_side,
                completed_at=assignment.completed_at,
            )
            Rating.objects.create(
                assignment=moved,
                score_left=rating.score_left,
                score_right=rating.score_right,
                correct_left=rating.correct_left,
                correct_right=rating.correct_right,
                preference=rating.preference,
                duration_ms=rating.duration_ms,
            )
    return copy
