"""The score export as Parquet: the CSV's rows and columns, typed, written in row groups as they come.

Types: ids, scores, revisions and durations are int64 (`duration_ms` may be null), verdicts are
booleans with nulls, `rated_at` and `first_rated_at` are UTC timestamps (microseconds), the rest are
strings. The file carries pandas metadata naming the nullable dtypes (`Int64`, `boolean`), so
`pandas.read_parquet` gives those instead of floats and objects; `datasets.Dataset.from_parquet` reads
the Arrow types. Text is stored as given: Parquet is not opened by spreadsheets, so nothing is
neutralised.

Memory stays bounded: rows are gathered ROWS_PER_GROUP at a time, written as one row group, and the
bytes written so far are handed on (an HTTP response streams them; the command writes them to a file).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from annotations.models import Campaign
from reports.exports import ExportOptions, export_rows

ROWS_PER_GROUP = 10_000
CONTENT_TYPE = "application/vnd.apache.parquet"

_INT = pa.int64()
_TIME = pa.timestamp("us", tz="UTC")
ARROW_TYPES: dict[str, pa.DataType] = {
    "campaign_id": _INT,
    "pair_id": _INT,
    "prompt_id": _INT,
    "score": _INT,
    "correct": pa.bool_(),
    "rated_at": _TIME,
    "duration_ms": _INT,
    "answer_chars": _INT,
    "revision": _INT,
    "revisions": _INT,
    "first_rated_at": _TIME,
}
# pandas dtype of each non-string column, for the pandas metadata (strings are pandas' default)
_PANDAS_TYPES = {"correct": ("bool", "boolean"), "duration_ms": ("int64", "Int64")}


def arrow_type(column: str) -> pa.DataType:
    return ARROW_TYPES.get(column, pa.string())


def _pandas_column(column: str) -> dict[str, Any]:
    arrow = arrow_type(column)
    if column in _PANDAS_TYPES:
        pandas_type, numpy_type = _PANDAS_TYPES[column]
    elif arrow == _TIME:
        pandas_type, numpy_type = "datetimetz", "datetime64[us]"
    elif arrow == _INT:
        pandas_type, numpy_type = "int64", "int64"
    else:
        pandas_type, numpy_type = "unicode", "object"
    metadata = {"timezone": "UTC"} if arrow == _TIME else None
    return {
        "name": column,
        "field_name": column,
        "pandas_type": pandas_type,
        "numpy_type": numpy_type,
        "metadata": metadata,
    }


def schema(*, with_texts: bool = False) -> pa.Schema:
    """The Arrow schema of the export, with pandas metadata for its nullable columns."""
    names = ExportOptions(with_texts=with_texts).columns
    pandas_metadata = {
        "index_columns": [],
        "column_indexes": [],
        "columns": [_pandas_column(name) for name in names],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.0.0",
    }
    return pa.schema(
        [pa.field(name, arrow_type(name)) for name in names],
        metadata={b"pandas": json.dumps(pandas_metadata).encode()},
    )


class _Sink:
    """A write-only file for pyarrow that keeps the bytes written until `take()` hands them on."""

    closed = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def take(self) -> bytes:
        chunk = b"".join(self._parts)
        self._parts = []
        return chunk


def stream_parquet(campaign: Campaign, **options: bool) -> Iterator[bytes]:
    """The Parquet file in pieces: one row group of up to ROWS_PER_GROUP rows at a time, then the
    footer. `options` are reports.exports.ExportOptions' fields."""
    opts = ExportOptions(**options)
    names = opts.columns
    file_schema = schema(with_texts=opts.with_texts)
    sink = _Sink()
    writer = pq.ParquetWriter(sink, file_schema, compression="zstd")
    batch: dict[str, list[Any]] = {name: [] for name in names}
    pending = 0
    try:
        for row in export_rows(campaign, iso_times=False, **options):
            for name, value in row.items():
                batch[name].append(value)
            pending += 1
            if pending >= ROWS_PER_GROUP:
                writer.write_batch(pa.RecordBatch.from_pydict(batch, schema=file_schema))
                batch = {name: [] for name in names}
                pending = 0
                yield sink.take()
        if pending:
            writer.write_batch(pa.RecordBatch.from_pydict(batch, schema=file_schema))
    finally:
        writer.close()
    yield sink.take()
