"""Researcher and admin pages: the campaign list, the live report, and the report/export API.

Annotators get 403 everywhere here: these pages name the roles, which would unblind them.
Every figure comes from `reporting.campaign_report`, so page, API and command cannot disagree.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import exporting
from annotations.models import Campaign
from annotations.reporting import campaign_report

EXPORT_CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
REPORT_READER_MESSAGE = "Only researchers and admins can read reports."
# the page re-fetches itself this often (static/reports/report-refresh.js) so it follows new ratings
REFRESH_SECONDS = 15


def can_read_reports(user: Any) -> bool:
    return bool(user and user.is_authenticated and getattr(user, "can_read_reports", False))


class IsReportReader(BasePermission):
    message = REPORT_READER_MESSAGE

    def has_permission(self, request: Request, view: Any) -> bool:
        return can_read_reports(request.user)


def _require_reader(request: HttpRequest) -> None:
    if not can_read_reports(request.user):
        raise PermissionDenied(REPORT_READER_MESSAGE)


def _campaign(pk: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("job", "job__finetune_run"), pk=pk)


# ------------------------------------------------------------------------------------------------
# HTML pages
# ------------------------------------------------------------------------------------------------


@login_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    _require_reader(request)
    campaigns = Campaign.objects.select_related("job").annotate(
        n_pairs=Count("pairs", distinct=True), n_ratings=Count("pairs__assignments__rating", distinct=True)
    )
    return render(request, "reports/campaign_list.html", {"campaigns": campaigns})


@login_required
def campaign_report_page(request: HttpRequest, pk: int) -> HttpResponse:
    _require_reader(request)
    campaign = _campaign(pk)
    report = campaign_report(campaign)
    context = {
        "campaign": campaign,
        "report": report,
        "score_chart": score_distribution_chart(report),
        "accuracy_chart": accuracy_chart(report),
        "improvement_chart": improvement_chart(report),
        "latency_chart": latency_chart(report),
        "loss_chart": loss_chart(report),
        "length_chart": length_chart(report),
        "generated_at": timezone.now(),
        "refresh_seconds": REFRESH_SECONDS,
        "report_json": json.dumps(report, indent=2, ensure_ascii=False),
    }
    return render(request, "reports/campaign_report.html", context)


# ------------------------------------------------------------------------------------------------
# API
# ------------------------------------------------------------------------------------------------


class CampaignReportAPI(APIView):
    """`GET /api/campaigns/{id}/report/`: the report dict; `?download=1` (or `report.json`) as a file."""

    permission_classes = (IsReportReader,)
    download = False

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, pk: int) -> Response:
        report = campaign_report(_campaign(pk))
        response = Response(report)
        if self.download or request.query_params.get("download"):
            response["Content-Disposition"] = f'attachment; filename="campaign-{pk}-report.json"'
        return response


class CampaignExportAPI(APIView):
    """`GET /api/campaigns/{id}/export.csv` / `export.jsonl`: streamed, one row per rating × answer."""

    permission_classes = (IsReportReader,)
    fmt = "csv"

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        campaign = _campaign(pk)
        with_usernames = request.query_params.get("with_usernames") in {"1", "true", "yes"}
        response = StreamingHttpResponse(
            exporting.stream(campaign, fmt=self.fmt, with_usernames=with_usernames),
            content_type=EXPORT_CONTENT_TYPES[self.fmt],
        )
        response["Content-Disposition"] = f'attachment; filename="campaign-{pk}-scores.{self.fmt}"'
        return response


# ------------------------------------------------------------------------------------------------
# Charts: geometry for inline SVG, computed here so the page needs no script and no inline style
# ------------------------------------------------------------------------------------------------

CHART_W = 560
CHART_H = 220
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 14, 34


def _y_ticks(top: float, n: int = 4, fmt: str = "{:.0f}") -> list[dict[str, Any]]:
    inner = CHART_H - PAD_T - PAD_B
    return [{"y": PAD_T + inner - inner * i / n, "label": fmt.format(top * i / n)} for i in range(n + 1)]


def _bar_frame(bars: list[dict[str, Any]], labels: list[dict[str, Any]], ticks: list[dict[str, Any]],
               inner_h: float) -> dict[str, Any]:
    """The frame every bar chart shares: size, axis, padding and label row."""
    return {
        "w": CHART_W,
        "h": CHART_H,
        "bars": bars,
        "labels": labels,
        "ticks": ticks,
        "axis_y": PAD_T + inner_h,
        "pad_l": PAD_L,
        "right": CHART_W - PAD_R,
        "label_y": CHART_H - 12,
    }


def score_distribution_chart(report: dict[str, Any]) -> dict[str, Any]:
    dist = report["score_distribution"]
    # round the axis up so that 4 ticks fall on whole counts
    top = max([1, *dist["pretrained"], *dist["finetuned"]])
    top = -(-top // 4) * 4
    inner_w = CHART_W - PAD_L - PAD_R
    inner_h = CHART_H - PAD_T - PAD_B
    group_w = inner_w / 5
    bar_w = group_w * 0.36
    bars, labels = [], []
    for i in range(5):
        x0 = PAD_L + i * group_w + group_w * 0.14
        for j, role in enumerate(("pretrained", "finetuned")):
            count = dist[role][i]
            h = inner_h * count / top
            bars.append(
                {
                    "x": x0 + j * bar_w,
                    "y": PAD_T + inner_h - h,
                    "w": bar_w - 2,
                    "h": h,
                    "role": role,
                    "title": f"{role}, score {i + 1}: {count} ratings",
                }
            )
        labels.append({"x": PAD_L + i * group_w + group_w / 2, "label": f"score {i + 1}"})
    return _bar_frame(bars, labels, _y_ticks(top), inner_h)


def accuracy_chart(report: dict[str, Any]) -> dict[str, Any]:
    tasks = list(report["accuracy"].items())
    inner_w = CHART_W - PAD_L - PAD_R
    inner_h = CHART_H - PAD_T - PAD_B
    group_w = inner_w / max(1, len(tasks))
    bar_w = min(60.0, group_w * 0.36)
    bars, labels = [], []
    for i, (task, block) in enumerate(tasks):
        x0 = PAD_L + i * group_w + (group_w - 2 * bar_w) / 2
        for j, role in enumerate(("pretrained", "finetuned")):
            acc = block[role]["accuracy"]
            if acc is None:
                continue
            h = inner_h * acc
            bar = {
                "x": x0 + j * bar_w,
                "y": PAD_T + inner_h - h,
                "w": bar_w - 2,
                "h": h,
                "role": role,
                "title": f"{task}, {role}: {acc:.0%} (n={block[role]['n']})",
            }
            ci = block[role]["ci95"]
            if ci:
                cx = bar["x"] + bar["w"] / 2
                bar["whisker"] = {
                    "x": cx,
                    "x1": cx - 5,
                    "x2": cx + 5,
                    "y1": PAD_T + inner_h * (1 - ci[1]),
                    "y2": PAD_T + inner_h * (1 - ci[0]),
                }
            bars.append(bar)
        labels.append({"x": PAD_L + i * group_w + group_w / 2, "label": task})
    return {**_bar_frame(bars, labels, _y_ticks(100, fmt="{:.0f}%"), inner_h), "empty": not any(b for b in bars)}


def improvement_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    rel = report["relevance"]
    if rel["improvement"] is None:
        return None
    imp = rel["improvement"] * 100
    lo, hi = (rel["ci95"][0] * 100, rel["ci95"][1] * 100) if rel["ci95"] else (imp, imp)
    span_lo, span_hi = min(0.0, lo) - 10, max(0.0, hi) + 10
    w, h = CHART_W, 80
    left, right = PAD_L, CHART_W - PAD_R

    def x(v: float) -> float:
        return left + (v - span_lo) / (span_hi - span_lo) * (right - left)

    return {
        "w": w,
        "h": h,
        "zero": x(0.0),
        "point": x(imp),
        "lo": x(lo),
        "hi": x(hi),
        "y": 34,
        "label": f"{imp:+.0f}%",
        "lo_label": f"{lo:.0f}%",
        "hi_label": f"{hi:.0f}%",
        "has_ci": rel["ci95"] is not None,
        "axis_left": left,
        "axis_right": right,
    }


def latency_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    """Histogram of answer latency per role (shared bins), drawn with `_bars.html`."""
    dist = report["latency_distribution"]
    edges = dist["edges_ms"]
    if not edges:
        return None
    n_bins = len(edges) - 1
    top = max([1, *dist["pretrained"], *dist["finetuned"]])
    top = -(-top // 4) * 4
    inner_w = CHART_W - PAD_L - PAD_R
    inner_h = CHART_H - PAD_T - PAD_B
    group_w = inner_w / n_bins
    bar_w = group_w * 0.42
    bars, labels = [], []
    for i in range(n_bins):
        x0 = PAD_L + i * group_w + group_w * 0.08
        for j, role in enumerate(("pretrained", "finetuned")):
            count = dist[role][i]
            h = inner_h * count / top
            bars.append(
                {
                    "x": x0 + j * bar_w,
                    "y": PAD_T + inner_h - h,
                    "w": max(bar_w - 1, 1),
                    "h": h,
                    "role": role,
                    "title": f"{role}, {edges[i]:.0f}–{edges[i + 1]:.0f} ms: {count} answers",
                }
            )
        if i % 2 == 0:
            centre = (edges[i] + edges[i + 1]) / 2
            labels.append({"x": PAD_L + i * group_w + group_w / 2, "label": f"{centre:.0f}"})
    return _bar_frame(bars, labels, _y_ticks(top), inner_h)


def line_chart(
    series: list[dict[str, Any]],
    x_labels: list[str],
    *,
    y_min: float | None = None,
    y_max: float | None = None,
    y_fmt: str = "{:.2f}",
    marker: int | None = None,
) -> dict[str, Any] | None:
    """Polylines over shared x positions 0..len(x_labels)-1. ``series``: {"name", "cls", "values"}
    where a value may be None (a gap: the line breaks there). ``marker``: an x index to mark."""
    values = [v for s in series for v in s["values"] if v is not None]
    n = len(x_labels)
    if not values or n == 0:
        return None
    lo = min(values) if y_min is None else y_min
    hi = max(values) if y_max is None else y_max
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    inner_w = CHART_W - PAD_L - PAD_R
    inner_h = CHART_H - PAD_T - PAD_B
    step = inner_w / max(1, n - 1) if n > 1 else 0.0

    def x(i: int) -> float:
        return PAD_L + (i * step if n > 1 else inner_w / 2)

    def y(v: float) -> float:
        return PAD_T + inner_h - inner_h * (v - lo) / (hi - lo)

    lines = []
    for s in series:
        segments, current, points = [], [], []
        for i, v in enumerate(s["values"]):
            if v is None:
                if current:
                    segments.append(current)
                current = []
                continue
            current.append(f"{x(i):.1f},{y(v):.1f}")
            points.append({"x": x(i), "y": y(v), "title": f"{s['name']} at {x_labels[i]}: {v:.3g}"})
        if current:
            segments.append(current)
        lines.append(
            {"cls": s["cls"], "name": s["name"], "segments": [" ".join(p) for p in segments], "points": points}
        )
    ticks = [
        {"y": PAD_T + inner_h - inner_h * k / 4, "label": y_fmt.format(lo + (hi - lo) * k / 4)}
        for k in range(5)
    ]
    every = max(1, -(-n // 10))
    labels = [{"x": x(i), "label": lab} for i, lab in enumerate(x_labels) if i % every == 0 or i == n - 1]
    return {
        "w": CHART_W,
        "h": CHART_H,
        "lines": lines,
        "labels": labels,
        "ticks": ticks,
        "axis_y": PAD_T + inner_h,
        "pad_l": PAD_L,
        "right": CHART_W - PAD_R,
        "label_y": CHART_H - 12,
        "top": PAD_T,
        "marker": x(marker) if marker is not None and 0 <= marker < n else None,
    }


def loss_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    """Train and validation loss per epoch of the linked run (epochs numbered from 1)."""
    training = report["training"]
    train = training.get("train_loss") or []
    val = training.get("val_loss") or []
    n = max(len(train), len(val))
    if not training.get("n_runs") or n == 0:
        return None

    def pad(xs: list[Any]) -> list[float | None]:
        values = [float(v) if isinstance(v, (int, float)) else None for v in xs]
        return values + [None] * (n - len(values))

    best = training.get("best_epoch")
    return line_chart(
        [
            {"name": "train loss", "cls": "train", "values": pad(train)},
            {"name": "validation loss", "cls": "val", "values": pad(val)},
        ],
        [str(i + 1) for i in range(n)],
        marker=(best - 1) if isinstance(best, int) else None,
    )


def length_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    """Mean score per answer-length bin, one line per role."""
    bins = report["length_bias"]["bins"]
    edges = bins["edges"]
    if len(edges) < 2:
        return None
    labels = [f"{edges[i]:.0f}–{edges[i + 1]:.0f}" for i in range(len(edges) - 1)]
    return line_chart(
        [
            {"name": role, "cls": role, "values": [b["mean_score"] for b in bins[role]]}
            for role in ("pretrained", "finetuned")
        ],
        labels,
        y_min=1.0,
        y_max=5.0,
        y_fmt="{:.0f}",
    )
