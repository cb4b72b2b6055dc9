"""The disagreement queue: the pairs whose raters disagree most, for a researcher to read unblinded.

A pair's raters can disagree three ways: on an answer's score (its spread, highest minus lowest score
of that answer), on whether an answer is correct (some say correct, some incorrect: a split verdict),
and on which answer is better (some prefer the fine-tuned answer, some the pre-trained one). The
queue ranks pairs rated at least twice by the sum of the three, so a researcher reads first the pairs
where the guidelines, the answers or a rater most need a look. Gold pairs are in the queue too (marked):
raters splitting on a gold pair is a training problem worth seeing.

On a campaign of more than two systems (issue 17) the queue reads every pair, whichever two systems it
shows: a row names its two systems in job order (`systems`) and keys its answers by system name
(`score_spread_by_role`, `split_verdict_roles`, `preferences`); `difference_spread` is then the spread
of the later system's score minus the earlier's (fine-tuned − pre-trained on a pre-trained vs
fine-tuned pair, as in a two-system campaign).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reports.annotators import role_preferences
from reports.campaign_rows import CampaignPairs, CampaignRatings
from reports.statistics.common import ROLES

QUEUE_LENGTH = 20
DISAGREEMENT_METHOD = (
    "pairs rated at least twice; score_spread = the larger, over the two answers, of the highest minus "
    "the lowest score the raters gave that answer (points on the raters' scale); split_verdicts = some "
    "rater said an answer is correct and another said it is incorrect (\"not sure\" counts for neither); "
    "split_preference = some rater preferred the fine-tuned answer and another the pre-trained one; "
    "disagreement = score_spread + the number of answers with a split verdict + 1 for a split "
    "preference; the queue lists the pairs with a disagreement above 0, highest first (ties: the larger "
    "spread of the raters' fine-tuned − pre-trained differences, then more ratings, then pair id)"
)


def _spread(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per pair code: highest minus lowest of `values` (0 for a pair with fewer than two ratings)."""
    high = np.full(n, -np.inf)
    low = np.full(n, np.inf)
    np.maximum.at(high, codes, values)
    np.minimum.at(low, codes, values)
    spread = high - low
    spread[~np.isfinite(spread)] = 0.0
    return spread


def _has(codes: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """Per pair code: whether any of its ratings has `mask` set."""
    return np.bincount(codes[mask], minlength=n) > 0


def disagreement_queue(
    pairs: CampaignPairs,
    ratings: CampaignRatings,
    gold: np.ndarray,
    *,
    every_system: bool = False,
    length: int = QUEUE_LENGTH,
) -> dict[str, Any]:
    """`disagreements` (the top `length` pairs, most disagreement first), their count and the method.

    ``gold``: each pair's gold preference by pair code ("" for an ordinary pair); ``every_system``: the
    pairs are a campaign of more than two systems (each row then lists its two `systems`)."""
    out: dict[str, Any] = {
        "disagreements": [],
        "n_disagreeing_pairs": 0,
        "disagreements_method": DISAGREEMENT_METHOD,
    }
    n = pairs.n
    if ratings.n == 0 or n == 0:
        return out
    codes = ratings.pair_codes
    n_ratings = np.bincount(codes, minlength=n)
    scores = {"pretrained": ratings.pretrained_scores, "finetuned": ratings.finetuned_scores}
    role_spread = {role: _spread(codes, scores[role].astype(np.float64), n) for role in ROLES}
    score_spread = np.maximum(role_spread["pretrained"], role_spread["finetuned"])
    difference_spread = _spread(codes, (scores["finetuned"] - scores["pretrained"]).astype(np.float64), n)
    verdicts = {"pretrained": ratings.pretrained_verdicts, "finetuned": ratings.finetuned_verdicts}
    split = {
        role: _has(codes, verdicts[role] == 1, n) & _has(codes, verdicts[role] == 0, n) for role in ROLES
    }
    prefs = role_preferences(ratings)
    pref_counts = {
        p: np.bincount(codes[prefs == p], minlength=n) for p in ("finetuned", "pretrained", "tie", "both_bad")
    }
    split_preference = (pref_counts["finetuned"] > 0) & (pref_counts["pretrained"] > 0)
    score = score_spread + split["pretrained"] + split["finetuned"] + split_preference
    candidates = np.flatnonzero((n_ratings >= 2) & (score > 0))
    order = sorted(
        candidates.tolist(),
        key=lambda c: (-score[c], -difference_spread[c], -n_ratings[c], int(pairs.ids[c])),
    )
    out["n_disagreeing_pairs"] = len(order)
    for c in order[:length]:
        # the pair's two systems: a in the "pretrained" slot, b in the "finetuned" slot
        a, b = pairs.systems_of(c)
        names = {"pretrained": a, "finetuned": b}
        row: dict[str, Any] = {
            "pair": int(pairs.ids[c]),
            "prompt_external_id": "" if pairs.external_ids is None else str(pairs.external_ids[c]),
            "task": pairs.tasks[c],
            "gold": bool(len(gold) and gold[c] != ""),
            "n_ratings": int(n_ratings[c]),
            "disagreement": float(score[c]),
            "score_spread": float(score_spread[c]),
            "score_spread_by_role": {names[role]: float(role_spread[role][c]) for role in ROLES},
            "difference_spread": float(difference_spread[c]),
            "split_verdicts": bool(split["pretrained"][c] or split["finetuned"][c]),
            "split_verdict_roles": [names[role] for role in ROLES if split[role][c]],
            "split_preference": bool(split_preference[c]),
            "preferences": {names.get(p, p): int(counts[c]) for p, counts in pref_counts.items()},
        }
        if every_system:
            row["systems"] = [a, b]
        out["disagreements"].append(row)
    return out
