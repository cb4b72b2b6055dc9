"""Importing prompt datasets (JSONL or CSV) and ready-made answers (JSONL).

Ready-made answers come from the two systems every job has (`pretrained`, `finetuned`) and from any
further outside systems named with `systems`: each is a column of the file and becomes a
JobSystem(kind="imported") of the new job (`generation.importing_systems` adds one to an existing job).

Every import loads all of its rows or none: each row is validated first, then everything is written in
one transaction. Any bad input raises DataImportError whose message is one line naming the file, the
line and the field, e.g. `eval.jsonl line 7: field "task": required`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils import timezone

from .models import TWO_SYSTEMS, Answer, Dataset, GenerationJob, JobStatus, JobSystem, Prompt

PROMPT_FIELDS = ("external_id", "task", "text", "context", "reference", "label")
REQUIRED_FIELDS = ("external_id", "task", "text")
MAX_LENGTHS = {"external_id": 200, "task": 64, "label": 200}
ANSWER_FIELDS = TWO_SYSTEMS
SYSTEM_NAME_MAX = JobSystem._meta.get_field("name").max_length or 64


class DataImportError(Exception):
    """Bad input for an import; the message is one line naming file, line and field."""


@dataclass
class Row:
    line: int
    values: dict[str, str]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _fail(name: str, line: int | None, message: str) -> DataImportError:
    where = f"{name} line {line}" if line is not None else name
    return DataImportError(_one_line(f"{where}: {message}"))


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise _fail(path.name, None, "file not found" if not path.exists() else "not a file")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(path.name, None, f"not UTF-8 text (byte {exc.start})") from exc


def _jsonl_records(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _fail(path.name, number, f"invalid JSON: {exc.msg} (column {exc.colno})") from exc
        if not isinstance(record, dict):
            raise _fail(path.name, number, "expected a JSON object")
        yield number, record


def _csv_records(path: Path, text: str, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines(keepends=True))
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise _fail(path.name, 1, f"bad CSV: {exc}") from exc
    if not header:
        raise _fail(path.name, None, "no rows")
    header = [h.strip() for h in header]
    reader.fieldnames = header
    for field in required:
        if field not in header:
            raise _fail(path.name, 1, f'missing column "{field}"')
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _fail(path.name, start, f"bad CSV: {exc}") from exc
        if None in record:  # more cells than columns
            raise _fail(
                path.name, start, f"{len(header) + len(record[None])} cells for {len(header)} columns"
            )
        if any(v is None for v in record.values()):
            raise _fail(path.name, start, f"fewer cells than the {len(header)} columns")
        if any((v or "").strip() for v in record.values()):
            yield start, record
        start = reader.line_num + 1


def _clean_field(name: str, line: int, field: str, value: Any, *, required: bool) -> str:
    if value is None:
        value = ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _fail(name, line, f'field "{field}": must be a string')
    value = str(value)
    if "\x00" in value:  # PostgreSQL text cannot hold NUL: refuse it on every backend, with the line
        raise _fail(name, line, f'field "{field}": contains a NUL character (U+0000)')
    if field in ("external_id", "task"):
        value = value.strip()
    if required and not value.strip():
        raise _fail(name, line, f'field "{field}": required')
    limit = MAX_LENGTHS.get(field)
    if limit and len(value) > limit:
        raise _fail(name, line, f'field "{field}": longer than {limit} characters')
    if field == "task":
        try:
            validate_slug(value)
        except ValidationError as exc:
            raise _fail(
                name, line, f'field "task": "{value}" is not a slug (letters, digits, - and _)'
            ) from exc
    return value


def check_system_name(name: str, *, option: str) -> str:
    """An outside system's name as given to `option` (e.g. "--systems"; "" for no prefix), stripped;
    DataImportError when it cannot name a JobSystem: not a slug, too long, one of the two every job
    has, a prompt field."""
    name = name.strip()
    where = f"{option}: " if option else ""
    if not name:
        raise DataImportError(f"{where}a system name is required")
    if len(name) > SYSTEM_NAME_MAX:
        raise DataImportError(f'{where}"{_one_line(name)}" is longer than {SYSTEM_NAME_MAX} characters')
    try:
        validate_slug(name)
    except ValidationError:
        bad = _one_line(name)
        raise DataImportError(f'{where}"{bad}" is not a slug (letters, digits, - and _)') from None
    if name in TWO_SYSTEMS:
        raise DataImportError(f'{where}"{name}" is a system every job has already')
    if name in PROMPT_FIELDS:
        raise DataImportError(f'{where}"{name}" is a prompt field, not a system')
    return name


def parse_system_names(names: str | Iterable[str], *, option: str = "--systems") -> list[str]:
    """The outside systems' names of an answers import, from a comma-separated text or a list, in order;
    each checked by `check_system_name`, none twice. An empty or blank text gives none."""
    if isinstance(names, str):
        if not names.strip():
            return []
        names = names.split(",")
    checked: list[str] = []
    for name in names:
        name = check_system_name(name, option=option)
        if name in checked:
            where = f"{option}: " if option else ""
            raise DataImportError(f'{where}"{name}" is named twice')
        checked.append(name)
    return checked


def system_answer(name: str, line: int, field: str, value: Any) -> str:
    """An outside system's answer text: a string that is not blank and holds no NUL."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _fail(name, line, f'field "{field}": required')
    if not isinstance(value, str):
        raise _fail(name, line, f'field "{field}": must be a string')
    if "\x00" in value:
        raise _fail(name, line, f'field "{field}": contains a NUL character (U+0000)')
    return value


def _read_rows(
    path: Path,
    *,
    extra_required: tuple[str, ...] = (),
    allow_csv: bool = True,
    systems: tuple[str, ...] = (),
) -> list[Row]:
    """Parse and validate every row; raise on the first problem. Duplicate external ids are errors.
    `extra_required` fields may be empty, `systems` (outside systems' answers) may not."""
    text = _read_text(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        records = _jsonl_records(path, text)
    elif suffix == ".csv" and allow_csv:
        records = _csv_records(path, text, REQUIRED_FIELDS + extra_required)
    else:
        kinds = ".jsonl or .csv" if allow_csv else ".jsonl"
        raise _fail(path.name, None, f'unknown format "{suffix or "(no extension)"}" (use {kinds})')
    rows: list[Row] = []
    first_seen: dict[str, int] = {}
    for line, record in records:
        values = {}
        for field in PROMPT_FIELDS:
            values[field] = _clean_field(
                path.name, line, field, record.get(field), required=field in REQUIRED_FIELDS
            )
        for field in extra_required:
            if field not in record or record[field] is None:
                raise _fail(path.name, line, f'field "{field}": required')
            values[field] = _clean_field(path.name, line, field, record[field], required=False)
        for field in systems:
            values[field] = system_answer(path.name, line, field, record.get(field))
        external_id = values["external_id"]
        if external_id in first_seen:
            raise _fail(
                path.name,
                line,
                f'field "external_id": duplicate "{external_id}" (first on line {first_seen[external_id]})',
            )
        first_seen[external_id] = line
        rows.append(Row(line, values))
    if not rows:
        raise _fail(path.name, None, "no rows")
    return rows


def _prompt_from(row: Row, dataset: Dataset) -> Prompt:
    return Prompt(dataset=dataset, **{field: row.values[field] for field in PROMPT_FIELDS})


def import_prompts(path: str | Path, *, dataset_name: str) -> tuple[Dataset, int]:
    """Add every prompt of a JSONL or CSV file to the dataset (created if needed), or none of them."""
    path = Path(path)
    dataset_name = dataset_name.strip()
    if not dataset_name:
        raise DataImportError("--dataset: a name is required")
    rows = _read_rows(path)
    with transaction.atomic():
        dataset, _ = Dataset.objects.get_or_create(name=dataset_name)
        existing = set(
            Prompt.objects.filter(
                dataset=dataset, external_id__in=[r.values["external_id"] for r in rows]
            ).values_list("external_id", flat=True)
        )
        for row in rows:
            if row.values["external_id"] in existing:
                raise _fail(
                    path.name,
                    row.line,
                    f'field "external_id": "{row.values["external_id"]}" is already in dataset '
                    f'"{dataset.name}"',
                )
        Prompt.objects.bulk_create([_prompt_from(row, dataset) for row in rows], batch_size=500)
    return dataset, len(rows)


def import_answers(
    path: str | Path, *, job_name: str, systems: str | Iterable[str] = ()
) -> GenerationJob:
    """Bring your own generations: a dataset named after the job, its prompts, a finished job and the
    answers of every prompt, all or nothing. Each row has `pretrained` and `finetuned` texts and one more
    column for each outside system named in `systems` (a list, or comma-separated), which becomes a
    JobSystem(kind="imported") whose answers have the column's name as their role."""
    path = Path(path)
    job_name = job_name.strip()
    if not job_name:
        raise DataImportError("--job: a name is required")
    names = tuple(parse_system_names(systems))
    rows = _read_rows(path, extra_required=ANSWER_FIELDS, allow_csv=False, systems=names)
    roles = (*ANSWER_FIELDS, *names)
    with transaction.atomic():
        if Dataset.objects.filter(name=job_name).exists():
            raise DataImportError(f'dataset "{job_name}" already exists: pick another --job name')
        dataset = Dataset.objects.create(
            name=job_name, description=f"imported with the answers of {path.name}"
        )
        prompts = Prompt.objects.bulk_create([_prompt_from(row, dataset) for row in rows], batch_size=500)
        if any(p.pk is None for p in prompts):  # backends without RETURNING: read the ids back
            by_external = dict(Prompt.objects.filter(dataset=dataset).values_list("external_id", "pk"))
            for p in prompts:
                p.pk = by_external[p.external_id]
        now = timezone.now()
        job = GenerationJob.objects.create(
            name=job_name,
            dataset=dataset,
            imported=True,
            status=JobStatus.SUCCEEDED,
            total=len(roles) * len(rows),
            settings={"source": path.name},
            started_at=now,
            finished_at=now,
        )
        for name in names:  # one by one: job_system_names orders by id
            JobSystem.objects.create(job=job, name=name, kind=JobSystem.Kind.IMPORTED)
        Answer.objects.bulk_create(
            [
                Answer(job=job, prompt=prompt, role=role, text=row.values[role], worker="import")
                for row, prompt in zip(rows, prompts, strict=True)
                for role in roles
            ],
            batch_size=500,
        )
    return job
