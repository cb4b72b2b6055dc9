"""The report's `systems` section: the campaign's systems through the many-system analysis
(`reports.statistics.systems.rank_systems`): Bradley–Terry strengths with bootstrap intervals over
prompts, the win matrix, per-task rankings, each system against the pre-trained baseline and the
leaderboard statement. It reads every pair of the campaign, whichever two systems it shows; with two
systems it restates the headline in another form.

On a campaign of more than two systems (issue 17) it adds `scope` (the rest of the report reads only
the pre-trained vs fine-tuned pairs: how many), `accuracy` (each system's accuracy per task) and
`checkpoints` (human strength against validation loss for the kept epochs of the job's run). A
two-system campaign's section is what it always was.

The leaderboard statement follows the headline's rules: refused while coverage is uneven."""

from __future__ import annotations

from typing import Any

from generation.models import GenerationJob
from reports.campaign_rows import CampaignPairs, CampaignRatings
from reports.statistics.systems import checkpoint_vs_loss, rank_systems
from reports.systems_rows import (
    NO_EPOCHS_REASON,
    SYSTEM_ACCURACY_METHOD,
    checkpoint_epochs,
    judgment_table_of,
    system_accuracy,
)

SYSTEMS = ["pretrained", "finetuned"]


def systems_section(
    ratings: CampaignRatings,
    pairs: CampaignPairs,
    coverage: dict[str, Any],
    systems: list[str] | None = None,
) -> dict[str, Any]:
    """`rank_systems` on every pair's ratings, baseline pre-trained; a reason instead with no ratings.
    `systems`: the job's systems in job order (default the two every job has)."""
    names = list(systems or SYSTEMS)
    if ratings.n == 0:
        return {"systems": names, "reason": "no ratings yet"}
    out = rank_systems(judgment_table_of(pairs, ratings, names), baseline="pretrained")
    statement = out["leaderboard"]["statement"]
    if coverage.get("even") is False and not statement["refused"]:
        statement.update(
            refused=True,
            reason=f"coverage is too uneven to stand for the campaign: {coverage['even_reason']}",
            would_read=statement["text"],
            text=None,
        )
    return out


def many_system_figures(
    section: dict[str, Any],
    job: GenerationJob,
    pairs: CampaignPairs,
    ratings: CampaignRatings,
    n_two_system_pairs: int,
) -> dict[str, Any]:
    """The keys a campaign of more than two systems adds to its `systems` section."""
    out: dict[str, Any] = {"scope": scope_note(pairs.n, n_two_system_pairs)}
    if ratings.n:
        out["accuracy"] = system_accuracy(pairs, ratings, section["systems"])
        out["accuracy_method"] = SYSTEM_ACCURACY_METHOD
    out["checkpoints"] = checkpoints(section, job)
    return out


def scope_note(n_pairs: int, n_two_system_pairs: int) -> dict[str, Any]:
    """What the report's two-system figures cover on a campaign of more than two systems."""
    return {
        "n_pairs": n_pairs,
        "n_two_system_pairs": n_two_system_pairs,
        "text": (
            f"The two-system figures (score difference, win rate, accuracy, agreement, biases, coverage, "
            f"claims …) compare pre-trained with fine-tuned on the {n_two_system_pairs} of the campaign's "
            f"{n_pairs} pairs that set those two against each other; the systems section reads every pair."
        ),
    }


def checkpoints(section: dict[str, Any], job: GenerationJob) -> dict[str, Any]:
    """Training meets judgment: `checkpoint_vs_loss` on the ranking for the kept epochs of the job's
    run (the fine-tuned system at the run's best epoch), or a reason when there are none."""
    epochs, notes = checkpoint_epochs(job)
    if not epochs:
        return {"rows": [], "reason": NO_EPOCHS_REASON}
    ranking = section if "strengths" in section else {}
    block = checkpoint_vs_loss(ranking, epochs)
    if "strengths" not in section:
        block["statement"] = {
            "verdict": None,
            "text": None,
            "refused": True,
            "reason": f"{section.get('reason', 'no ranking')}: no epoch has a strength yet",
        }
    block["run"] = job.finetune_run_id
    block["notes"] = notes
    return block
