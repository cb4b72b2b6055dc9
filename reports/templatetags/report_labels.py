"""Template filters for human wording on the report pages (reports/labels.py does the work):
`human` (a method note or reason without the JSON's key names), `role`, `preference`, `metric`,
`count` (thousands separators), `plural`, `bytes` (GiB / MiB)."""

from __future__ import annotations

from typing import Any

from django import template

from reports import labels

register = template.Library()


@register.filter
def human(value: Any) -> str:
    return labels.humanize(value)


@register.filter
def role(value: Any) -> str:
    return labels.role_label(value)


@register.filter
def preference(value: Any) -> str:
    return labels.preference_label(value)


@register.filter
def metric(value: Any) -> str:
    return labels.metric_label(value)


@register.filter
def count(value: Any) -> str:
    return labels.count(value)


@register.filter
def plural(value: Any, words: str) -> str:
    """`{{ n|plural:"annotator" }}` or, for an irregular noun, `{{ n|plural:"person,people" }}`."""
    word, _, many = words.partition(",")
    return labels.plural(value, word, many or None)


@register.filter(name="bytes")
def bytes_(value: Any) -> str:
    return labels.bytes_label(value)


@register.filter
def seconds(value: Any) -> str:
    """Milliseconds as a time spent: 8.2 s, 3 min 05 s."""
    return labels.seconds_label(value)


@register.filter
def when(value: Any) -> str:
    """An ISO 8601 time from the report JSON as "2026-11-30 09:22 UTC"."""
    return labels.when_label(value)
