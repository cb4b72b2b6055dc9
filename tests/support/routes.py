"""Every route of the site, for the tests that walk all of them (the access matrix, GET-writes-nothing)."""

from __future__ import annotations

from django.urls import get_resolver


def url_formats(resolver=None, prefix: str = "") -> list[tuple[str, list[str]]]:
    """Every (format string, parameter names) the resolver and its namespaces (admin) can reverse."""
    resolver = resolver or get_resolver()
    seen: dict[str, list[str]] = {}
    for key in list(resolver.reverse_dict.keys()):
        for possibilities, _pattern, _defaults, _converters in resolver.reverse_dict.getlist(key):
            for fmt, params in possibilities:
                seen.setdefault(prefix + fmt, list(params))
    for _namespace, (ns_prefix, sub) in resolver.namespace_dict.items():
        for fmt, params in url_formats(sub, prefix + ns_prefix):
            seen.setdefault(fmt, params)
    return sorted(seen.items())


def route_kind(fmt: str, params: list[str]) -> str | None:
    """Which kind of row a route's id names: assignment, campaign, job or run (None: another kind)."""
    if "assignment_id" in params:
        return "assignment"
    if fmt.startswith(("campaigns/", "api/campaigns/", "annotate/campaigns/")):
        return "campaign"
    if fmt.startswith(("jobs/", "api/jobs/")):
        return "job"
    if fmt.startswith(("runs/", "api/finetune-runs/")):
        return "run"
    return None
