"""The `/runs/` pages: fine-tuning runs with their loss curves (researchers and admins), the list in
pages of 25 with filters, a run's config as a table in words.

Read only: a run whose worker stopped beating is failed by the worker's reaper, never by a page view.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from evalsite.access import READ_REPORTS, role_required
from generation.configs import setting_text
from generation.models import ACTIVE_STATUSES, FinetuneRun, JobStatus
from generation.selectors import finetune_run_progress
from reports.charts import run_loss_chart

# the list shows the newest runs first (the model's ordering), this many a page
PER_PAGE = 25


def _runs() -> QuerySet[FinetuneRun]:
    return FinetuneRun.objects.select_related("dataset")


def _nice_bytes(n: object) -> str:
    if not isinstance(n, (int, float)):
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def _nice_seconds(s: object) -> str:
    if not isinstance(s, (int, float)):
        return "-"
    seconds = float(s)
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, sec = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


# the run's options (generation.configs.FinetuneConfig) in words, in the order a reader wants them
CONFIG_LABELS = {
    "mode": "Mode",
    "epochs": "Epochs (at most)",
    "patience": "Patience (epochs without a lower validation loss)",
    "lr": "Learning rate",
    "batch_size": "Batch size",
    "max_length": "Max length (tokens)",
    "val_fraction": "Validation share",
    "r": "LoRA r",
    "alpha": "LoRA alpha",
    "dropout": "LoRA dropout",
    "target_modules": "Target modules",
    "weight_decay": "Weight decay",
    "gradient_checkpointing": "Gradient checkpointing",
    "max_examples": "Examples used",
    "keep_epochs": "Checkpoints kept (epochs)",
    "keep_every": "Checkpoint every",
    "seed": "Seed",
    "device": "Device",
    "threads": "CPU threads",
}
# what an option left unset (None) means
CONFIG_UNSET = {
    "lr": "the mode's default",
    "max_examples": "all",
    "device": "auto (CUDA when there is one)",
    "threads": "torch's default",
    "keep_every": "-",
}


def config_rows(config: dict[str, object]) -> list[tuple[str, str]]:
    """A run's config as (label, value) rows in words: no Python reprs, unset options said plainly."""
    rows = []
    for key, label in CONFIG_LABELS.items():
        if key not in config:
            continue
        value = config[key]
        rows.append((label, CONFIG_UNSET.get(key, "-") if value is None else setting_text(value)))
    rows += [(key, setting_text(value)) for key, value in config.items() if key not in CONFIG_LABELS]
    return rows


def dataset_label(run: FinetuneRun) -> str:
    """The dataset's name; for a run whose dataset row is gone (or one recorded from a training.json made
    elsewhere), the name the run recorded, saying so."""
    if run.dataset is not None:
        return run.dataset.name
    recorded = (run.metrics or {}).get("dataset")
    if recorded:
        return f"{recorded} (not in this site)"
    return "unknown (not recorded)"


def _recorded_elsewhere(run: FinetuneRun) -> bool:
    """A run read from an adapter folder's training.json (no worker ran it here): its times are not known."""
    return run.started_at is None and not run.worker and bool(run.metrics)


def kept_checkpoints(run: FinetuneRun) -> list[dict[str, Any]]:
    """The epochs kept beside the best one (`finetune --keep-epochs/--keep-every`), each with its losses
    and the adapter folder a job can use, the best epoch marked; [] when none were kept."""
    metrics = run.metrics or {}
    best = metrics.get("best_epoch")
    rows = []
    for kept in metrics.get("kept_epochs") or []:
        if not isinstance(kept, dict) or "epoch" not in kept:
            continue
        rows.append(
            {
                "epoch": kept["epoch"],
                "val_loss": kept.get("val_loss"),
                "train_loss": kept.get("train_loss"),
                "folder": str(Path(run.output_dir) / str(kept.get("folder", ""))),
                "best": kept["epoch"] == best,
            }
        )
    return rows


def _run_context(run: FinetuneRun) -> dict[str, Any]:
    progress = finetune_run_progress(run)
    return {
        "run": run,
        "p": progress,
        "active": run.status in ACTIVE_STATUSES,
        "peak_memory": _nice_bytes(progress["peak_memory_bytes"]),
        "wall": _nice_seconds(progress["wall_seconds"]),
        "chart": run_loss_chart(
            progress["train_loss"], progress["val_loss"], best_epoch=progress["best_epoch"]
        ),
        "config_rows": config_rows(run.config or {}),
        "checkpoints": kept_checkpoints(run),
        "dataset_label": dataset_label(run),
        "recorded_elsewhere": _recorded_elsewhere(run),
        "can_generate": run.status == JobStatus.SUCCEEDED and run.mode == FinetuneRun.Mode.LORA,
    }


@role_required(READ_REPORTS)
def run_list_page(request: HttpRequest) -> HttpResponse:
    """Runs, newest first, 25 a page, filtered by status and dataset name (the recorded one too)."""
    runs = _runs()
    status = request.GET.get("status", "")
    if status in JobStatus.values:
        runs = runs.filter(status=status)
    else:
        status = ""
    dataset = request.GET.get("dataset", "").strip()
    if dataset:
        runs = runs.filter(
            Q(dataset__name__icontains=dataset) | Q(dataset__isnull=True, metrics__dataset__icontains=dataset)
        )
    page = Paginator(runs, PER_PAGE).get_page(request.GET.get("page"))
    rows = [(run, finetune_run_progress(run), dataset_label(run)) for run in page]
    context = {
        "rows": rows,
        "page": page,
        "statuses": [s for s in JobStatus.values if s != JobStatus.PARTIALLY_FAILED],
        "filters": {"status": status, "dataset": dataset},
        "filtered": bool(status or dataset),
    }
    return render(request, "reports/run_list.html", context)


@role_required(READ_REPORTS)
def run_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(_runs(), pk=pk)
    return render(request, "reports/run_detail.html", _run_context(run))
