"""What the generation job and its fine-tuning run recorded, as report blocks: reliability (model
loads, fallbacks, answers made) and training (the linked run, and a LoRA vs full comparison)."""

from __future__ import annotations

from typing import Any

import numpy as np

from annotations.models import Campaign
from generation.models import Answer, FinetuneRun, JobStatus, ModelLoadAttempt, Role, job_system_names

TRAINING_FIELDS = (
    "mode",
    "trainable_params",
    "total_params",
    "trainable_pct",
    "peak_memory_bytes",
    "wall_seconds",
    "tokens_per_s",
    "epochs_run",
    "best_epoch",
    "early_stopped",
    "train_loss",
    "val_loss",
)


def reliability(campaign: Campaign, answers: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Model loads, fallbacks and answers made against what the job requested."""
    job = campaign.job
    attempts = list(ModelLoadAttempt.objects.filter(job=job).values_list("kind", "success"))
    # every answer of the job, whichever system wrote it (a job of more than two systems has more)
    made = Answer.objects.filter(job=job).count()
    systems = len(job_system_names(job))
    finetuned_made = len(answers[Role.FINETUNED]["fallback"])
    fallbacks = int(answers[Role.FINETUNED]["fallback"].sum())
    out: dict[str, Any] = {
        "load_attempts": len(attempts),
        "load_successes": sum(1 for _, ok in attempts if ok),
        "load_success_rate": None,
        "fallback_rate": None,
        "fallback_answers": fallbacks,
        "generation_success_rate": None,
        "answers_made": made,
        "answers_requested": job.total,
        "method": "load success = successful model/adapter loads / attempts; fallback = fine-tuned answers "
        "served by the pre-trained model / fine-tuned answers requested (the job's total over its number of "
        "systems: half for two); generation "
        "success = answers made / answers requested",
    }
    if attempts:
        out["load_success_rate"] = out["load_successes"] / len(attempts)
        by_kind: dict[str, dict[str, int]] = {}
        for kind, ok in attempts:
            entry = by_kind.setdefault(kind, {"attempts": 0, "successes": 0})
            entry["attempts"] += 1
            entry["successes"] += int(ok)
        out["load_by_kind"] = by_kind
    else:
        out["load_success_rate_reason"] = (
            "no model loads recorded (answers were imported)"
            if job.imported
            else "no model loads recorded yet"
        )
    finetuned_requested = job.total // systems if job.total else finetuned_made
    if finetuned_requested:
        out["fallback_rate"] = fallbacks / finetuned_requested
    else:
        out["fallback_rate_reason"] = "no fine-tuned answers were requested"
    if job.total:
        out["generation_success_rate"] = made / job.total
    else:
        out["generation_success_rate_reason"] = "the job records no number of answers requested"
    return out


def training_run(run: FinetuneRun) -> dict[str, Any]:
    """One run's figures from its training.json (`metrics`), with a reason naming what is missing."""
    metrics = run.metrics or {}
    entry: dict[str, Any] = {"run": run.pk, "status": run.status, "base_model": run.base_model}
    for field in TRAINING_FIELDS:
        entry[field] = metrics.get(field)
    entry["mode"] = entry["mode"] or run.mode
    missing = [f for f in TRAINING_FIELDS if entry[f] is None]
    if missing:
        entry["reason"] = (
            "training.json not recorded yet" if not metrics else f"training.json lacks: {', '.join(missing)}"
        )
    return entry


def training(campaign: Campaign) -> dict[str, Any]:
    """The run linked to the campaign's job, and a finished run of the other mode (LoRA vs full)."""
    run = campaign.job.finetune_run
    out: dict[str, Any] = {"runs": [], "n_runs": 0}
    if run is None:
        out["reason"] = "no fine-tuning run is linked to this campaign's generation job"
        return out
    linked = training_run(run)
    out["runs"] = [linked]
    out["n_runs"] = 1
    # the linked run's figures also at the top of the block: there is one run per job
    out.update({k: v for k, v in linked.items() if k not in ("reason",)})
    if "reason" in linked:
        out["reason"] = linked["reason"]
    # LoRA vs full: a finished run of the other mode on the same base model and dataset, if any
    other = (
        FinetuneRun.objects.filter(
            base_model=run.base_model, dataset_id=run.dataset_id, status=JobStatus.SUCCEEDED
        )
        .exclude(pk=run.pk)
        .exclude(mode=run.mode)
        .first()
    )
    if other is not None:
        comparison = training_run(other)
        out["comparison"] = comparison
        ratios: dict[str, Any] = {}
        for key in ("peak_memory_bytes", "wall_seconds", "trainable_params"):
            a, b = linked.get(key), comparison.get(key)
            ratios[key] = (
                (a / b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None
            )
        out["ratio_to_comparison"] = ratios
    return out
