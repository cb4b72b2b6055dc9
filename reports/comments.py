"""The annotators' comments for the report: which pair, which rater (by pseudonym), what they wrote.

Annotators write a comment with a rating; before this section nothing showed them to anyone. The
report lists each rating's current comment, newest first, with its pair so a researcher can open the
pair unblinded (reports/pairs.py), and the two systems the pair compares (`systems`: its answers'
systems, earlier then later in job order; ["pretrained", "finetuned"] in a two-system campaign). One
query for the comments and one for the raters' pseudonyms.
"""

from __future__ import annotations

from typing import Any

from annotations.models import Campaign, Rating, User

COMMENTS_METHOD = (
    "each rating's current comment (an edit replaces it; earlier versions are in the rating's "
    "revisions), newest first; rater = the annotator's pseudonym; rated_at = when the rating was last "
    "posted"
)


def campaign_comments(campaign: Campaign) -> list[dict[str, Any]]:
    """Every non-empty comment of the campaign's ratings, newest first."""
    rows = list(
        Rating.objects.filter(assignment__pair__campaign=campaign)
        .exclude(comment="")
        .order_by("-updated_at", "-pk")
        .values_list(
            "assignment__pair_id",
            "assignment__pair__prompt__external_id",
            "assignment__pair__prompt__task",
            "assignment__annotator_id",
            "comment",
            "updated_at",
            "revision",
            "assignment__pair__pretrained_answer__role",
            "assignment__pair__finetuned_answer__role",
        )
    )
    ids = {row[3] for row in rows}
    users = {u.pk: u for u in User.objects.filter(pk__in=ids).only("id")}
    return [
        {
            "pair": pair_id,
            "prompt_external_id": external_id,
            "task": task,
            "rater": (users.get(user_id) or User(pk=user_id)).pseudonym,
            "comment": comment,
            "rated_at": rated_at.isoformat(),
            "revision": revision,
            "systems": [earlier, later],
        }
        for pair_id, external_id, task, user_id, comment, rated_at, revision, earlier, later in rows
    ]
