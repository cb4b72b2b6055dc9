"""Chart geometry for the report and run pages: coordinates for server-drawn inline SVG.

The templates (`reports/_bars.html`, `_lines.html`, `_loss_chart.html`) draw these dicts as SVG
elements styled by class from the app's CSS, so the charts need no script and no inline style: the
content security policy (`evalsite/middleware.py`: script-src 'self', style-src 'self') allows neither.

Why no charting library: none that is maintained fits both that policy and the page's accessibility.
Chart.js draws on a canvas (no text for screen readers, no per-bar `<title>`); Vega compiles its
expressions with `new Function` (blocked without 'unsafe-eval') unless a separate interpreter build is
vendored; both need a vendored script and leave the page without charts when JavaScript is off, and
the browser tests would have to wait for them. Server-side libraries write SVG with inline `style`
attributes and `<style>` elements (matplotlib; pygal also embeds a tooltip script), which style-src
'self' blocks when the SVG is inline; served as an `<img>` instead, the charts lose their accessible
text and tooltips. matplotlib would also add a large dependency, and its rendering time, to a page that
re-fetches itself every 15 s while ratings arrive. The geometry here is a few rectangles and polylines,
and the numbers behind every mark stay in the view's context, where the tests check them.
"""

from __future__ import annotations

from typing import Any

from reports.labels import plural, role_label

# ------------------------------------------------------------------------------------------------
# The report page: bars (score distribution, accuracy, latency), lines (loss, length), difference
# ------------------------------------------------------------------------------------------------

CHART_W = 560
CHART_H = 220
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 14, 34


def _y_ticks(top: float, n: int = 4, fmt: str = "{:.0f}") -> list[dict[str, Any]]:
    inner = CHART_H - PAD_T - PAD_B
    return [{"y": PAD_T + inner - inner * i / n, "label": fmt.format(top * i / n)} for i in range(n + 1)]


def _bar_frame(
    bars: list[dict[str, Any]], labels: list[dict[str, Any]], ticks: list[dict[str, Any]], inner_h: float
) -> dict[str, Any]:
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
                    "title": f"{role_label(role)}, score {i + 1}: {plural(count, 'rating')}",
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
                "title": f"{task}, {role_label(role)}: {acc:.0%} (n={block[role]['n']})",
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
    frame = _bar_frame(bars, labels, _y_ticks(100, fmt="{:.0f}%"), inner_h)
    return {**frame, "empty": not any(b for b in bars)}


def difference_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    """The headline score difference (points) with its 95% CI whiskers, against a zero line; no
    whiskers when the report shows no interval (a zero-width interval is never drawn as one)."""
    rel = report["relevance"]
    if rel["difference"] is None:
        return None
    value = rel["difference"]
    ci = rel["difference_ci95"]
    lo, hi = (ci[0], ci[1]) if ci else (value, value)
    pad = max(0.25, (max(0.0, hi) - min(0.0, lo)) * 0.15)
    span_lo, span_hi = min(0.0, lo) - pad, max(0.0, hi) + pad
    w, h = CHART_W, 80
    left, right = PAD_L, CHART_W - PAD_R

    def x(v: float) -> float:
        return left + (v - span_lo) / (span_hi - span_lo) * (right - left)

    return {
        "w": w,
        "h": h,
        "zero": x(0.0),
        "point": x(value),
        "lo": x(lo),
        "hi": x(hi),
        "y": 34,
        "label": f"{value:+.2f}",
        "lo_label": f"{lo:+.2f}",
        "hi_label": f"{hi:+.2f}",
        "has_ci": ci is not None,
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
                    "title": f"{role_label(role)}, {edges[i]:,.0f}–{edges[i + 1]:,.0f} ms: "
                    + plural(count, "answer"),
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
            {
                "cls": s["cls"],
                "name": s["name"],
                "segments": [" ".join(p) for p in segments],
                "points": points,
            }
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


def report_loss_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    """Train and validation loss per epoch of the linked run (epochs numbered from 1)."""
    training = report["training"]
    train = training.get("train_loss") or []
    val = training.get("val_loss") or []
    n = max(len(train), len(val))
    if not training.get("n_runs") or n == 0:
        return None

    def pad(xs: list[object]) -> list[float | None]:
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
            {"name": role_label(role), "cls": role, "values": [b["mean_score"] for b in bins[role]]}
            for role in ("pretrained", "finetuned")
        ],
        labels,
        y_min=1.0,
        y_max=5.0,
        y_fmt="{:.0f}",
    )


# ------------------------------------------------------------------------------------------------
# The fine-tuning run page: loss per epoch, redrawn as epochs arrive
# ------------------------------------------------------------------------------------------------


def run_loss_chart(
    train: list[object], val: list[object], *, best_epoch: object = None
) -> dict[str, Any] | None:
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
