"""The report's `systems` section: the campaign's two systems (pre-trained and fine-tuned) through the
many-system analysis (`reports.statistics.systems.rank_systems`): Bradley–Terry strengths with bootstrap
intervals over prompts, the win matrix and the leaderboard statement. With two systems it restates the
headline in another form; it is the shape a K-system campaign's report will have (issue 17).

The leaderboard statement follows the headline's rules: refused while coverage is uneven."""

from __future__ import annotations

from typing import Any

import numpy as np

from reports.campaign_rows import CampaignPairs, CampaignRatings
from reports.statistics.systems import rank_systems
from reports.statistics.systems_table import A_PREFERRED, B_PREFERRED, BOTH_BAD, TIE, JudgmentTable

SYSTEMS = ["pretrained", "finetuned"]


def systems_section(
    ratings: CampaignRatings, pairs: CampaignPairs, coverage: dict[str, Any]
) -> dict[str, Any]:
    """`rank_systems` on the campaign's ratings, baseline pre-trained; a reason instead with no ratings."""
    if ratings.n == 0:
        return {"systems": SYSTEMS, "reason": "no ratings yet"}
    # the judgments coded straight from the campaign's arrays: system a = pre-trained, b = fine-tuned
    used, prompt = np.unique(ratings.pair_codes, return_inverse=True)
    prefs = np.asarray(ratings.preferences, dtype=object)
    finetuned_won = (prefs == "left") == ratings.finetuned_left
    outcome = np.where(finetuned_won, B_PREFERRED, A_PREFERRED)
    outcome = np.where(prefs == "tie", TIE, np.where(prefs == "both_bad", BOTH_BAD, outcome))
    table = JudgmentTable(
        tuple(SYSTEMS),
        prompt.astype(np.int64),
        np.asarray(pairs.tasks[used], dtype=object),
        np.zeros(ratings.n, np.int64),
        np.ones(ratings.n, np.int64),
        ratings.pretrained_scores.astype(np.int64),
        ratings.finetuned_scores.astype(np.int64),
        outcome.astype(np.int64),
    )
    out = rank_systems(table, baseline="pretrained")
    statement = out["leaderboard"]["statement"]
    if coverage.get("even") is False and not statement["refused"]:
        statement.update(
            refused=True,
            reason=f"coverage is too uneven to stand for the campaign: {coverage['even_reason']}",
            would_read=statement["text"],
            text=None,
        )
    return out
