"""The campaigns overview (`/campaigns/`): each campaign's headline figure with its 95% CI, coverage and
status, sortable by any column, filtered by status, 25 to a page.

The headline is the report's own: `relevance.difference` and `relevance.difference_ci95` from the same
`reports.statistics.relevance.relevance` call the report makes, so the overview and the report never
disagree. It reads every listed campaign's pairs and ratings in two queries (campaign_rows.read_many)
instead of building a whole report per campaign: the report's other blocks (style classifier,
serving figures, identity leaks) are what make a report slow, and the overview needs none of them.
The figures are computed for every campaign the filter keeps, because sorting by the difference needs
them all before the page is cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.db.models import QuerySet

from annotations.models import Campaign
from reports.campaign_rows import read_many
from reports.statistics.relevance import relevance

PAGE_SIZE = 25
DEFAULT_SORT = "-created"
NO_RATINGS = "no ratings yet"
# the overview shows the difference and its interval, never the permutation p, so the sign-flip test
# that `relevance` also runs needs few resamples here (the interval does not depend on them)
OVERVIEW_RESAMPLES = 200


@dataclass
class CampaignRow:
    """One line of the overview."""

    pk: int
    name: str
    job_id: int
    status: str
    status_label: str
    overlap: int
    created_at: datetime
    n_pairs: int
    n_rated: int
    n_ratings: int
    ratings_per_rated: float | None
    difference: float | None
    difference_ci95: list[float] | None
    n_prompts_both: int
    reason: str

    @property
    def share_rated(self) -> float | None:
        return self.n_rated / self.n_pairs if self.n_pairs else None


# ?sort= name -> the value sorted on; a missing figure always sorts last
SORTS: dict[str, Any] = {
    "name": lambda r: r.name.lower(),
    "status": lambda r: r.status,
    "difference": lambda r: r.difference,
    "coverage": lambda r: r.share_rated,
    "ratings": lambda r: r.n_ratings,
    "created": lambda r: r.created_at,
}


class BadQuery(ValueError):
    """An unknown `?sort=` or `?status=`: the page says which and what is allowed."""


def parse_sort(value: str | None) -> tuple[str, bool]:
    """`?sort=difference` / `?sort=-difference` -> ("difference", descending)."""
    value = (value or DEFAULT_SORT).strip()
    key, descending = (value[1:], True) if value.startswith("-") else (value, False)
    if key not in SORTS:
        allowed = ", ".join(SORTS)
        raise BadQuery(f"Unknown sort “{value}”: use one of {allowed} (a leading - sorts descending).")
    return key, descending


def parse_status(value: str | None) -> str:
    value = (value or "").strip()
    if value and value not in Campaign.Status.values:
        raise BadQuery(f"Unknown status “{value}”: use {' or '.join(Campaign.Status.values)}.")
    return value


def _headline(pairs: Any, ratings: Any) -> tuple[float | None, list[float] | None, int, str]:
    """The report's headline difference, its 95% CI, the prompts it is over and why a figure is missing."""
    if ratings.n == 0:
        return None, None, 0, NO_RATINGS
    block = relevance(
        ratings.pair_codes,
        ratings.pretrained_scores,
        ratings.finetuned_scores,
        pairs.n,
        wilcoxon=False,
        n_resamples=OVERVIEW_RESAMPLES,
    )
    reason = block.get("difference_reason") or block.get("difference_ci95_reason") or ""
    return block["difference"], block["difference_ci95"], block["n_prompts"], reason


def campaign_rows(campaigns: QuerySet[Campaign]) -> list[CampaignRow]:
    """The overview's rows, one per campaign, in the queryset's order."""
    campaigns = list(campaigns)
    data = read_many([c.pk for c in campaigns])
    rows = []
    for c in campaigns:
        pairs, ratings = data[c.pk]
        per_pair = np.bincount(ratings.pair_codes, minlength=pairs.n) if pairs.n else np.zeros(0, np.int64)
        n_rated = int((per_pair > 0).sum())
        difference, ci, n_both, reason = _headline(pairs, ratings)
        rows.append(
            CampaignRow(
                pk=c.pk,
                name=c.name,
                job_id=c.job_id,
                status=c.status,
                status_label=c.get_status_display(),
                overlap=c.overlap,
                created_at=c.created_at,
                n_pairs=pairs.n,
                n_rated=n_rated,
                n_ratings=ratings.n,
                ratings_per_rated=ratings.n / n_rated if n_rated else None,
                difference=difference,
                difference_ci95=ci,
                n_prompts_both=n_both,
                reason=reason,
            )
        )
    return rows


def sort_rows(rows: list[CampaignRow], key: str, descending: bool) -> list[CampaignRow]:
    """Sorted by `key`; rows without the figure last whichever the direction, then newest first."""
    value = SORTS[key]
    known = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    known.sort(key=lambda r: -r.pk)
    known.sort(key=value, reverse=descending)
    missing.sort(key=lambda r: -r.pk)
    return known + missing


COLUMNS = (
    ("name", "Campaign"),
    ("status", "Status"),
    ("difference", "Score difference (95% CI)"),
    ("coverage", "Coverage"),
    ("ratings", "Ratings"),
    ("created", "Opened"),
)


def sort_links(sort_key: str, descending: bool, status: str) -> list[dict[str, str]]:
    """Each sortable column's header: its label, the link that sorts by it (again: the other way) and
    its `aria-sort` state. A figure sorts highest first on the first click, a name A to Z."""
    links = []
    for key, label in COLUMNS:
        if key == sort_key:
            target = key if descending else f"-{key}"
            aria = "descending" if descending else "ascending"
        else:
            target = key if key in ("name", "status") else f"-{key}"
            aria = "none"
        query = f"?sort={target}" + (f"&status={status}" if status else "")
        links.append({"key": key, "label": label, "href": query, "aria": aria})
    return links


# the sort menu beside the status filter (the column headers sort too, but a phone hides them)
SORT_CHOICES = (
    ("-created", "newest first"),
    ("created", "oldest first"),
    ("-difference", "score difference, highest first"),
    ("difference", "score difference, lowest first"),
    ("-coverage", "coverage, highest first"),
    ("coverage", "coverage, lowest first"),
    ("-ratings", "most ratings first"),
    ("ratings", "fewest ratings first"),
    ("name", "name, A to Z"),
    ("-name", "name, Z to A"),
    ("status", "status (closed first)"),
    ("-status", "status (open first)"),
)
