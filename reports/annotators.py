"""The report's per-annotator rows: volume, agreement with the other raters, side preference, and
accuracy on gold pairs. Raters are named by their pseudonym, never by username."""

from __future__ import annotations

from typing import Any

import numpy as np

from annotations.models import User
from reports.campaign_rows import CampaignRatings
from reports.statistics.agreement import agreement_with_others
from reports.statistics.bias import side_preference

GOLD_REASON = "no gold pairs in this campaign"
NO_GOLD_RATED_REASON = "this annotator rated none of the campaign's gold pairs"
PER_ANNOTATOR_METHOD = (
    "mean_difference: the rater's mean of fine-tuned − pre-trained score over their ratings (the "
    "report's intervals generalise over prompts as these raters score them, so a rater far from the "
    "others is worth a look); agreement_with_others: the rater's score on each (pair, role) unit "
    "against the mean score of the other raters on that unit, over units someone else also rated "
    "(n_units); mean_abs_diff, Pearson r and Spearman rho (scipy); side_preference: share of the "
    "rater's left/right preferences that chose the left answer (ties and both-bad left out), p = "
    "two-sided exact binomial test against 0.5; gold_accuracy: share of the rater's ratings of gold "
    "pairs whose preference, translated from left/right to roles by the assignment's stored side, "
    "equals the pair's gold preference (finetuned, pretrained, tie, both_bad); gold_n = those ratings; "
    "null with a reason when the campaign has no gold pairs or the rater rated none"
)


def role_preferences(ratings: CampaignRatings) -> np.ndarray:
    """Each rating's preference in role terms: left/right become finetuned/pretrained by the stored side."""
    out = np.empty(ratings.n, dtype=object)
    sides = ratings.finetuned_left.tolist()
    for i, (pref, ft_left) in enumerate(zip(ratings.preferences, sides, strict=True)):
        if pref == "left":
            out[i] = "finetuned" if ft_left else "pretrained"
        elif pref == "right":
            out[i] = "pretrained" if ft_left else "finetuned"
        else:
            out[i] = pref
    return out


def _no_gold(reason: str) -> dict[str, Any]:
    return {"gold_accuracy": None, "gold_n": 0, "gold_correct": 0, "gold_accuracy_reason": reason}


def gold_accuracy(
    mask: np.ndarray, rating_gold: np.ndarray, role_prefs: np.ndarray, any_gold: bool
) -> dict[str, Any]:
    """Share of the annotator's ratings of gold pairs whose preference (in role terms) is the gold one."""
    if not any_gold:
        return _no_gold(GOLD_REASON)
    on_gold = mask & (rating_gold != "")
    n = int(on_gold.sum())
    if n == 0:
        return _no_gold(NO_GOLD_RATED_REASON)
    hits = int((role_prefs[on_gold] == rating_gold[on_gold]).sum())
    return {"gold_accuracy": hits / n, "gold_n": n, "gold_correct": hits}


def per_annotator(ratings: CampaignRatings, gold: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One row per annotator, most ratings first. ``gold``: each pair's gold preference ("" if none)."""
    if ratings.n == 0:
        return []
    if gold is None:
        gold = np.array([], dtype=object)
    any_gold = bool(len(gold)) and bool((gold != "").any())
    rating_gold = gold[ratings.pair_codes] if any_gold else np.full(ratings.n, "", dtype=object)
    role_prefs = role_preferences(ratings)
    ids, inverse = np.unique(ratings.annotator_ids, return_inverse=True)
    users = {u.pk: u for u in User.objects.filter(pk__in=ids.tolist()).only("id")}
    # units = (pair, role): 2 × pair + 0 pre-trained / 1 fine-tuned, as in `statistics.agreement.agreement`
    agreement = agreement_with_others(
        np.concatenate([2 * ratings.pair_codes, 2 * ratings.pair_codes + 1]),
        np.concatenate([inverse, inverse]),
        np.concatenate([ratings.pretrained_scores, ratings.finetuned_scores]),
        len(ids),
    )
    preferences = np.array(ratings.preferences, dtype=object)
    rows = []
    for code, user_id in enumerate(ids.tolist()):
        mask = inverse == code
        durations = ratings.duration_ms[mask]
        durations = durations[~np.isnan(durations)]
        scores = np.concatenate([ratings.score_left[mask], ratings.score_right[mask]])
        user = users.get(user_id) or User(pk=user_id)
        rows.append(
            {
                "annotator": user.pseudonym,
                "ratings": int(mask.sum()),
                "mean_score": float(scores.mean()),
                "mean_difference": float(
                    (ratings.finetuned_scores[mask] - ratings.pretrained_scores[mask]).mean()
                ),
                "median_duration_ms": float(np.median(durations)) if len(durations) else None,
                "agreement_with_others": agreement[code],
                "side_preference": side_preference(preferences[mask].tolist()),
                **gold_accuracy(mask, rating_gold, role_prefs, any_gold),
            }
        )
    rows.sort(key=lambda r: (-r["ratings"], r["annotator"]))
    return rows
