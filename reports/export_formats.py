"""Every score export format by name: `csv` and `jsonl` (reports.exports, text) and `parquet`
(reports.parquet_export, bytes). The export command and API choose through `stream` here."""

from __future__ import annotations

from collections.abc import Iterator

from annotations.models import Campaign
from reports import exports

FORMATS = ("csv", "jsonl", "parquet")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


def stream(campaign: Campaign, *, fmt: str = "csv", **options: bool) -> Iterator[str] | Iterator[bytes]:
    """The export in pieces: text for csv and jsonl, bytes for parquet. `options` are
    reports.exports.ExportOptions' fields."""
    if fmt == "parquet":
        # pyarrow is loaded only by a process that writes Parquet (it adds tens of MB to every process)
        from reports.parquet_export import stream_parquet

        return stream_parquet(campaign, **options)
    return exports.stream(campaign, fmt=fmt, **options)
