"""The checkpoint chart of the report page (issue 17): each kept epoch of the run as a point, its human
strength (Bradley–Terry, with its 95% interval as a vertical bar) against its validation loss, the
epoch early stopping kept drawn in the accent colour. Geometry only, drawn as inline SVG by
`reports/_checkpoint_chart.html` with the classes of `reports.charts` (no script, no inline style)."""

from __future__ import annotations

from typing import Any

from reports.charts import CHART_H, CHART_W, PAD_B, PAD_L, PAD_R, PAD_T
from reports.labels import role_label


def _span(values: list[float], pad_share: float = 0.12, least: float = 0.1) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = max(least, (hi - lo) * pad_share)
    return lo - pad, hi + pad


def _steps(lo: float, hi: float, n: int = 4) -> list[float]:
    return [lo + (hi - lo) * k / n for k in range(n + 1)]


def checkpoint_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    """Points (x = validation loss, y = strength) with CI whiskers for the epochs that have a strength;
    None when the report has no checkpoint table or no epoch was ranked."""
    block = (report.get("systems") or {}).get("checkpoints") or {}
    rows = [r for r in block.get("rows") or [] if r.get("strength") is not None]
    if not rows:
        return None
    losses = [r["val_loss"] for r in rows]
    ends = [v for r in rows for v in (r.get("ci95") or [r["strength"], r["strength"]])]
    x_lo, x_hi = _span(losses, least=0.05)
    y_lo, y_hi = _span([*ends, 0.0], least=0.25)
    inner_w = CHART_W - PAD_L - PAD_R
    inner_h = CHART_H - PAD_T - PAD_B

    def x(v: float) -> float:
        return PAD_L + (v - x_lo) / (x_hi - x_lo) * inner_w

    def y(v: float) -> float:
        return PAD_T + inner_h - (v - y_lo) / (y_hi - y_lo) * inner_h

    points = []
    for r in rows:
        ci = r.get("ci95")
        px, py = x(r["val_loss"]), y(r["strength"])
        points.append(
            {
                "x": px,
                "y": py,
                "cap_l": px - 5,
                "cap_r": px + 5,
                "label_x": px + 8,
                "label_y": py - 8,
                "lo": y(ci[0]) if ci else None,
                "hi": y(ci[1]) if ci else None,
                "kept": bool(r.get("kept")),
                "label": f"epoch {r['epoch']}",
                "title": (
                    f"epoch {r['epoch']} ({role_label(r['system'])}): validation loss "
                    f"{r['val_loss']:.4g}, strength {r['strength']:+.2f}"
                    + (f" (95% CI {ci[0]:+.2f} to {ci[1]:+.2f})" if ci else " (no interval)")
                    + (", kept by early stopping" if r.get("kept") else "")
                ),
            }
        )
    return {
        "w": CHART_W,
        "h": CHART_H,
        "points": points,
        "x_ticks": [{"x": x(v), "label": f"{v:.3g}"} for v in _steps(x_lo, x_hi)],
        "y_ticks": [{"y": y(v), "label": f"{v:+.1f}"} for v in _steps(y_lo, y_hi)],
        "zero": y(0.0),
        "pad_l": PAD_L,
        "right": CHART_W - PAD_R,
        "axis_y": PAD_T + inner_h,
        "tick_y": PAD_T + inner_h + 12,
        "title_y": CHART_H - 4,
        "top": PAD_T,
    }
