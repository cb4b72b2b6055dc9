"""The `/runs/` pages: fine-tuning runs with their loss curves (researchers and admins).

Read only: a run whose worker stopped beating is failed by the worker's reaper, never by a page view.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from evalsite.access import READ_REPORTS, role_required
from generation.models import ACTIVE_STATUSES, FinetuneRun
from generation.selectors import finetune_run_progress
from reports.charts import run_loss_chart

# the list shows the newest runs first (the model's ordering), this many at most
LISTED_RUNS = 100


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
        "config_items": sorted((run.config or {}).items()),
    }


@role_required(READ_REPORTS)
def run_list_page(request: HttpRequest) -> HttpResponse:
    rows = [(run, finetune_run_progress(run)) for run in _runs()[:LISTED_RUNS]]
    return render(request, "reports/run_list.html", {"rows": rows})


@role_required(READ_REPORTS)
def run_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(_runs(), pk=pk)
    return render(request, "reports/run_detail.html", _run_context(run))
