"""What the `systems` section reads beyond the two-system arrays, on a campaign of any number of systems
(issue 17): the judgment table coded from every pair's ratings, each system's accuracy per task, and
the kept epochs of the job's fine-tuning run beside their validation loss.

Every pair shows two systems: the earlier in job order in its "pretrained" slot (system a of the
judgment), the later in its "finetuned" slot (system b). The unit is the prompt, as in the two-system
report: prompts are coded in the order of their first rated pair, so a two-system campaign gets the very
codes (and so the very bootstrap draws) it always had.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db.models import Q

from generation.job_systems import best_epoch_and_loss
from generation.models import GenerationJob, JobSystem, Role
from reports.campaign_rows import CampaignPairs, CampaignRatings
from reports.statistics.accuracy import majority_verdicts, role_accuracy
from reports.statistics.systems_table import A_PREFERRED, B_PREFERRED, BOTH_BAD, TIE, JudgmentTable

SYSTEM_ACCURACY_METHOD = (
    "per task and system: each answer's verdict is the strict majority of every rating that showed it "
    "(in any pair): correct when more than half of its ratings say correct, incorrect when more than "
    'half say incorrect, none otherwise ("not sure" counts for neither side); accuracy = share of '
    "verdicts that say correct, ci95 = Wilson interval, n = answers with a verdict; fewer than 30 are "
    "flagged as a small sample"
)
NO_EPOCHS_REASON = (
    "none of the job's systems is a kept epoch of its fine-tuning run (a system with an epoch and a "
    "validation loss): there is nothing to set against validation loss"
)


def _names(pairs: CampaignPairs, systems: list[str]) -> list[str]:
    """`systems` (job order), then any other system a pair shows, in order of appearance."""
    names = list(systems)
    for name in [*pairs.system_a.tolist(), *pairs.system_b.tolist()]:
        if name not in names:
            names.append(name)
    return names


def judgment_table_of(pairs: CampaignPairs, ratings: CampaignRatings, systems: list[str]) -> JudgmentTable:
    """One judgment per rating, coded straight from the arrays (fast): system a = the pair's
    "pretrained" slot, b = its "finetuned" slot; prompts coded by their first rated pair."""
    names = _names(pairs, systems)
    index = {name: i for i, name in enumerate(names)}
    codes = ratings.pair_codes
    rated = np.unique(codes)
    prompt_ids, first = np.unique(pairs.prompts[rated], return_index=True)
    order = np.argsort(first, kind="stable")
    code_of = np.empty(len(prompt_ids), dtype=np.int64)
    code_of[order] = np.arange(len(order))
    prompt = code_of[np.searchsorted(prompt_ids, pairs.prompts[codes])]
    system_a = np.array([index[s] for s in pairs.system_a.tolist()], dtype=np.int64)
    system_b = np.array([index[s] for s in pairs.system_b.tolist()], dtype=np.int64)
    prefs = np.asarray(ratings.preferences, dtype=object)
    b_won = (prefs == "left") == ratings.finetuned_left
    outcome = np.where(b_won, B_PREFERRED, A_PREFERRED)
    outcome = np.where(prefs == "tie", TIE, np.where(prefs == "both_bad", BOTH_BAD, outcome))
    return JudgmentTable(
        tuple(names),
        prompt.astype(np.int64),
        np.asarray(pairs.tasks[rated[first[order]]], dtype=object),
        system_a[codes],
        system_b[codes],
        ratings.pretrained_scores.astype(np.int64),
        ratings.finetuned_scores.astype(np.int64),
        outcome.astype(np.int64),
    )


def system_accuracy(pairs: CampaignPairs, ratings: CampaignRatings, systems: list[str]) -> dict[str, Any]:
    """{task: {system: accuracy figures}}: each answer's majority verdict over every rating that
    showed it (an answer shown in two pairs pools both), per system and task (the two-system
    report's `majority_verdicts` and `role_accuracy`)."""
    codes = ratings.pair_codes
    answers = np.concatenate([pairs.answer_a[codes], pairs.answer_b[codes]])
    shown = np.concatenate([pairs.system_a[codes], pairs.system_b[codes]])
    verdicts = np.concatenate([ratings.pretrained_verdicts, ratings.finetuned_verdicts])
    tasks = np.concatenate([pairs.tasks[codes], pairs.tasks[codes]])
    out: dict[str, Any] = {}
    for task in sorted(set(pairs.tasks.tolist())):
        block = {}
        for system in _names(pairs, systems):
            mask = (tasks == task) & (shown == system)
            units, unit_codes = np.unique(answers[mask], return_inverse=True)
            figures = role_accuracy(majority_verdicts(unit_codes, verdicts[mask], len(units)))
            figures["n_answers_rated"] = len(units)
            block[system] = figures
        out[task] = block
    return out


def checkpoint_epochs(job: GenerationJob) -> tuple[dict[int, tuple[str, float]], list[str]]:
    """{epoch: (system, validation loss)} for the job's systems that are kept epochs of its run, with
    the fine-tuned system at the run's best epoch; and notes on what was left out. Empty without any
    kept epoch among the job's further systems."""
    kept = (
        JobSystem.objects.filter(job=job, epoch__isnull=False, val_loss__isnull=False)
        .filter(Q(finetune_run__isnull=True) | Q(finetune_run_id=job.finetune_run_id))
        .order_by("id")
        .values_list("name", "epoch", "val_loss")
    )
    epochs: dict[int, tuple[str, float]] = {}
    notes: list[str] = []
    for name, epoch, loss in kept:
        if epoch in epochs:
            notes.append(f"{name} is epoch {epoch} too: {epochs[epoch][0]} stands for that epoch")
            continue
        epochs[epoch] = (name, float(loss))
    if not epochs:
        return {}, []
    best, best_loss = best_epoch_and_loss(job.finetune_run)
    if best is None or best_loss is None:
        notes.append(
            "the fine-tuned system's epoch is not known (the job's fine-tuning run records no best epoch "
            "with its validation loss): it is left out, and kept marks the lowest validation loss listed"
        )
    else:
        if best in epochs:
            notes.append(
                f"{epochs[best][0]} is epoch {best}, the run's best: the fine-tuned system stands "
                "for it"
            )
        epochs[best] = (Role.FINETUNED.value, best_loss)
    return epochs, notes
