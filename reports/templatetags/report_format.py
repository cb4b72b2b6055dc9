"""Number formatting for the report page: a missing figure shows as a dash, never as 0."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()
MISSING = "—"


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    if value is None:
        return MISSING
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def num(value: Any, digits: int = 3) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):,.{int(digits)}f}"


@register.filter
def pvalue(value: Any) -> str:
    if value is None:
        return MISSING
    return f"{float(value):.3g}"


@register.filter
def ci_pct(value: Any, digits: int = 1) -> str:
    if not value:
        return MISSING
    lo, hi = value
    return f"{lo * 100:.{int(digits)}f}% – {hi * 100:.{int(digits)}f}%"


@register.filter
def points(value: Any, digits: int = 2) -> str:
    """A signed difference on the raters' scale: +0.82."""
    if value is None:
        return MISSING
    return f"{float(value):+.{int(digits)}f}"


@register.filter
def ci_points(value: Any, digits: int = 2) -> str:
    if not value:
        return MISSING
    lo, hi = value
    return f"{lo:+.{int(digits)}f} to {hi:+.{int(digits)}f}"
