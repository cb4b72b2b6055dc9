"""The `/runs/` pages: fine-tuning runs with their loss curves (researchers and admins)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from .models import FinetuneRun, JobStatus
from .selectors import finetune_run_progress
from .services import finetune_runs_fail_stale


def _runs() -> Any:
    return FinetuneRun.objects.select_related("dataset")


def _require_reader(request: HttpRequest) -> None:
    if not getattr(request.user, "can_read_reports", False):
        raise PermissionDenied


def _nice_bytes(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def _nice_seconds(s: Any) -> str:
    if not isinstance(s, (int, float)):
        return "-"
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def loss_chart(train: list[Any], val: list[Any], *, best_epoch: Any = None) -> dict[str, Any] | None:
    """Coordinates for a server-drawn SVG of the loss per epoch (x: epoch 1..n, y: loss), or None
    before the first epoch. Non-numbers are skipped; a lone epoch is drawn as points."""
    w, h, left, right, top, bottom = 640, 260, 56, 16, 14, 34
    series = {
        name: [(i + 1, float(v)) for i, v in enumerate(values) if isinstance(v, (int, float))]
        for name, values in (("train", train), ("val", val))
    }
    ys = [y for pts in series.values() for _, y in pts]
    if not ys:
        return None
    n = max(len(train), len(val), 2)
    lo, hi = min(ys), max(ys)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.06
    lo, hi = max(lo - pad, 0.0) if lo >= 0 else lo - pad, hi + pad

    def x(epoch: float) -> float:
        return round(left + (epoch - 1) * (w - left - right) / (n - 1), 1)

    def y(loss: float) -> float:
        return round(top + (hi - loss) * (h - top - bottom) / (hi - lo), 1)

    lines = []
    for name, label in (("train", "train loss"), ("val", "validation loss")):
        pts = series[name]
        lines.append(
            {
                "name": name,
                "label": label,
                "points": " ".join(f"{x(e)},{y(v)}" for e, v in pts),
                "dots": [{"x": x(e), "y": y(v), "epoch": e, "loss": v} for e, v in pts],
            }
        )
    step = max(1, (n - 1) // 10 + 1)
    x_ticks = [{"x": x(e), "label": e} for e in range(1, n + 1, step)]
    y_ticks = [{"y": y(lo + k * (hi - lo) / 4), "label": f"{lo + k * (hi - lo) / 4:.3g}"} for k in range(5)]
    best = None
    if isinstance(best_epoch, int) and 1 <= best_epoch <= n:
        best = {"x": x(best_epoch), "epoch": best_epoch}
    return {
        "w": w,
        "h": h,
        "left": left,
        "right": w - right,
        "top": top,
        "bottom": h - bottom,
        "lines": lines,
        "x_ticks": x_ticks,
        "y_ticks": y_ticks,
        "best": best,
        "x_label_y": h - 4,
    }


def _run_context(run: FinetuneRun) -> dict[str, Any]:
    progress = finetune_run_progress(run)
    return {
        "run": run,
        "p": progress,
        "active": run.status in (JobStatus.QUEUED, JobStatus.RUNNING),
        "peak_memory": _nice_bytes(progress["peak_memory_bytes"]),
        "wall": _nice_seconds(progress["wall_seconds"]),
        "chart": loss_chart(progress["train_loss"], progress["val_loss"], best_epoch=progress["best_epoch"]),
        "config_items": sorted((run.config or {}).items()),
    }


@login_required
def run_list_page(request: HttpRequest) -> HttpResponse:
    _require_reader(request)
    finetune_runs_fail_stale()
    rows = [(run, finetune_run_progress(run)) for run in _runs()[:100]]
    return render(request, "generation/run_list.html", {"rows": rows})


@login_required
def run_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    _require_reader(request)
    finetune_runs_fail_stale()
    run = get_object_or_404(_runs(), pk=pk)
    return render(request, "generation/run_detail.html", _run_context(run))
