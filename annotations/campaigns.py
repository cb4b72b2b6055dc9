"""Opening campaigns: one pair per prompt that has both answers, the per-task questions shown above the
scores, and gold pairs (a known verdict to check annotators against).

On a job of more than two systems a prompt is usable when every system answered it, and its pair
shows two of them, chosen by the campaign's balanced design (annotations.campaign_design)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import F

from generation.models import FINISHED_STATUSES, Answer, GenerationJob, Role, job_system_names

from .campaign_design import assign_system_pairs, design_seed, design_summary
from .models import Campaign, GoldPreference, Pair

GOLD_FIELDS = {"prompt_external_id", "preference", "correct_pretrained", "correct_finetuned"}
MAX_QUESTION_CHARS = 500


class CampaignCreateError(Exception):
    """Why a campaign could not be opened (shown by `create_campaign` as a one-line error)."""


def clean_task_questions(value: object, *, source: str = "task_questions") -> dict[str, str]:
    """{task slug: question text}; anything else is a CampaignCreateError naming what is wrong."""
    if not isinstance(value, dict):
        raise CampaignCreateError(
            f"{source}: expected a JSON object {{task: question}}, got {type(value).__name__}"
        )
    cleaned: dict[str, str] = {}
    for task, question in value.items():
        if not isinstance(question, str) or not question.strip():
            raise CampaignCreateError(f"{source}: the question for task '{task}' must be non-empty text")
        if len(question) > MAX_QUESTION_CHARS:
            raise CampaignCreateError(
                f"{source}: the question for task '{task}' is longer than {MAX_QUESTION_CHARS} characters"
            )
        cleaned[str(task).strip()] = question.strip()
    return cleaned


def _gold_pair(
    row: object, *, where: str, pairs: dict[str, Pair], seen: dict[str, int], line: int
) -> Pair:
    """The pair a gold row names, with the row's verdict set on it (not saved); raises on any bad field."""
    if not isinstance(row, dict):
        raise CampaignCreateError(f"{where}: expected a JSON object")
    unknown = sorted(set(row) - GOLD_FIELDS)
    if unknown:
        raise CampaignCreateError(f"{where}: unknown field '{unknown[0]}' (expected {sorted(GOLD_FIELDS)})")
    external_id = row.get("prompt_external_id")
    if not isinstance(external_id, str | int) or str(external_id) == "":
        raise CampaignCreateError(f"{where}: field 'prompt_external_id' is missing")
    external_id = str(external_id)
    pair = pairs.get(external_id)
    if pair is None:
        raise CampaignCreateError(
            f"{where}: field 'prompt_external_id': no pair in this campaign for prompt '{external_id}'"
        )
    if external_id in seen:
        raise CampaignCreateError(
            f"{where}: field 'prompt_external_id': prompt '{external_id}' "
            f"already given on line {seen[external_id]}"
        )
    seen[external_id] = line
    preference = row.get("preference")
    if preference not in GoldPreference.values:
        raise CampaignCreateError(
            f"{where}: field 'preference' must be one of {', '.join(GoldPreference.values)} "
            f"(got {preference!r})"
        )
    for field in ("correct_pretrained", "correct_finetuned"):
        if row.get(field) not in (True, False, None):
            raise CampaignCreateError(f"{where}: field '{field}' must be true, false or null")
    pair.gold_preference = preference
    pair.gold_correct_pretrained = row.get("correct_pretrained")
    pair.gold_correct_finetuned = row.get("correct_finetuned")
    return pair


def campaign_set_gold(
    *, campaign: Campaign, rows: Iterable[tuple[int, object]], source: str = "gold"
) -> int:
    """Mark pairs as gold from (line number, row) items: {prompt_external_id, preference (finetuned,
    pretrained, tie, both_bad), correct_pretrained, correct_finetuned (true/false/null, optional)}.
    Every row is checked before anything is written; one bad row writes none. Returns the count."""
    pairs = {
        pair.prompt.external_id: pair
        for pair in Pair.objects.filter(campaign=campaign).select_related("prompt")
    }
    seen: dict[str, int] = {}
    updates = [
        _gold_pair(row, where=f"{source} line {line}", pairs=pairs, seen=seen, line=line)
        for line, row in rows
    ]
    Pair.objects.bulk_update(
        updates, ["gold_preference", "gold_correct_pretrained", "gold_correct_finetuned"]
    )
    return len(updates)


def _complete_answers(job: GenerationJob, systems: list[str]) -> list[tuple[int, str, dict[str, Answer]]]:
    """(prompt id, task, {system: answer}) for every prompt of the job that has an answer from every
    one of `systems`, by prompt id."""
    by_prompt: dict[int, dict[str, Answer]] = {}
    tasks: dict[int, str] = {}
    answers = Answer.objects.filter(job=job, role__in=systems).annotate(prompt_task=F("prompt__task"))
    for answer in answers.order_by("prompt_id", "role"):
        by_prompt.setdefault(answer.prompt_id, {})[answer.role] = answer
        tasks[answer.prompt_id] = answer.prompt_task
    return [
        (prompt_id, tasks[prompt_id], answers)
        for prompt_id, answers in sorted(by_prompt.items())
        if all(system in answers for system in systems)
    ]


def _pairs(
    campaign: Campaign, systems: list[str], complete: list[tuple[int, str, dict[str, Answer]]]
) -> list[Pair]:
    """One pair per complete prompt: pre-trained vs fine-tuned on a two-system job, else the two
    systems the campaign's design gives the prompt (the earlier in job order as `pretrained_answer`)."""
    if len(systems) == 2:
        chosen = {prompt_id: (Role.PRETRAINED.value, Role.FINETUNED.value) for prompt_id, _, _ in complete}
    else:
        by_task: dict[str, list[int]] = {}
        for prompt_id, task, _ in complete:
            by_task.setdefault(task, []).append(prompt_id)
        chosen = assign_system_pairs(systems, by_task, design_seed(campaign.job_id, campaign.name))
    return [
        Pair(
            campaign=campaign,
            prompt_id=prompt_id,
            pretrained_answer=answers[chosen[prompt_id][0]],
            finetuned_answer=answers[chosen[prompt_id][1]],
        )
        for prompt_id, _, answers in complete
    ]


def campaign_design(campaign: Campaign) -> str:
    """The campaign's design in one line: how many systems and system pairs, and on how many prompts
    of each task every system pair is shown (see annotations.campaign_design.design_summary)."""
    shown = Pair.objects.filter(campaign=campaign).values_list(
        "prompt__task", "pretrained_answer__role", "finetuned_answer__role"
    )
    return design_summary(job_system_names(campaign.job_id), list(shown))


def _refuse_gold_on_many_systems(systems: list[str], *, gold: object, gold_feedback: bool) -> None:
    if len(systems) == 2:
        return
    if gold is not None or gold_feedback:
        raise CampaignCreateError(
            ("" if gold is not None else "gold feedback: ")
            + f"gold pairs are for campaigns of two systems (this job has {len(systems)}: "
            + f"{', '.join(systems)})"
        )


@transaction.atomic
def campaign_create(
    *,
    job: GenerationJob,
    name: str,
    overlap: int = 3,
    guidelines: str = "",
    task_questions: dict[str, str] | None = None,
    gold: Iterable[tuple[int, object]] | None = None,
    gold_source: str = "gold",
    allow_not_sure: bool = False,
    gold_feedback: bool = False,
) -> Campaign:
    """Open a campaign with one pair per prompt that has both a pre-trained and a fine-tuned answer
    (on a job of more than two systems: an answer from every system; each pair shows the two systems
    the design gives it, see annotations.campaign_design; gold pairs and gold feedback are refused).

    `task_questions` overrides the built-in question wording per task; `gold` marks pairs as gold
    (see `campaign_set_gold`); `allow_not_sure` offers "not sure" as a verdict; `gold_feedback` shows a
    gold pair's known verdict after it is rated. All or nothing: any error leaves no campaign behind."""
    questions = clean_task_questions(task_questions or {})
    if not name.strip():
        raise CampaignCreateError("campaign name must not be empty")
    if overlap < 1:
        raise CampaignCreateError(f"overlap must be at least 1 (got {overlap})")
    if job.status not in FINISHED_STATUSES:
        raise CampaignCreateError(f"job {job.pk} has not finished yet (status: {job.status})")
    systems = job_system_names(job)
    _refuse_gold_on_many_systems(systems, gold=gold, gold_feedback=gold_feedback)
    complete = _complete_answers(job, systems)
    if not complete:
        raise CampaignCreateError(
            f"job {job.pk} has no prompt with both a pre-trained and a fine-tuned answer"
            if len(systems) == 2
            else f"job {job.pk} has no prompt with an answer from each of its {len(systems)} systems "
            f"({', '.join(systems)})"
        )

    campaign = Campaign.objects.create(
        job=job,
        name=name.strip(),
        overlap=overlap,
        guidelines=guidelines,
        task_questions=questions,
        allow_not_sure=allow_not_sure,
        gold_feedback=gold_feedback,
    )
    Pair.objects.bulk_create(_pairs(campaign, systems, complete))
    if gold is not None:
        campaign_set_gold(campaign=campaign, rows=gold, source=gold_source)
    return campaign
