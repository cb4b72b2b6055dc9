"""The report's `systems` section: the campaign's two systems (pre-trained and fine-tuned) through the
many-system analysis (`reports.statistics.systems.rank_systems`): Bradley–Terry strengths with bootstrap
intervals over prompts, the win matrix and the leaderboard statement. With two systems it restates the
headline in another form; it is the shape a K-system campaign's report will have (issue 17).

The leaderboard statement follows the headline's rules: refused while coverage is uneven."""

from __future__ import annotations

from typing import Any

from reports.campaign_rows import CampaignPairs, CampaignRatings
from reports.statistics.systems import rank_systems

SYSTEMS = ["pretrained", "finetuned"]


def _winner(preference: str, finetuned_left: bool) -> str:
    """The rating's preference as a judgment of system a (pre-trained) against b (fine-tuned)."""
    if preference in ("tie", "both_bad"):
        return preference
    finetuned_won = (preference == "left") == finetuned_left
    return "b" if finetuned_won else "a"


def systems_section(ratings: CampaignRatings, pairs: CampaignPairs, coverage: dict[str, Any]) -> dict[str, Any]:
    """`rank_systems` on the campaign's ratings, baseline pre-trained; a reason instead with no ratings."""
    if ratings.n == 0:
        return {"systems": SYSTEMS, "reason": "no ratings yet"}
    judgments = [
        {
            "prompt": int(code),
            "task": str(pairs.tasks[code]),
            "system_a": "pretrained",
            "system_b": "finetuned",
            "score_a": int(pt),
            "score_b": int(ft),
            "preference": _winner(pref, bool(fl)),
        }
        for code, pt, ft, pref, fl in zip(
            ratings.pair_codes,
            ratings.pretrained_scores,
            ratings.finetuned_scores,
            ratings.preferences,
            ratings.finetuned_left,
        )
    ]
    out = rank_systems(judgments, systems=SYSTEMS, baseline="pretrained")
    statement = out["leaderboard"]["statement"]
    if coverage.get("even") is False and not statement["refused"]:
        statement.update(
            refused=True,
            reason=f"coverage is too uneven to stand for the campaign: {coverage['even_reason']}",
            would_read=statement["text"],
            text=None,
        )
    return out
