"""Adding the answers of one outside system to a finished job (`import_answers PATH --add-system NAME
--job ID`): a JSONL file of {"prompt_external_id" (or "external_id"), "answer"} rows, one for every
prompt the job answered, becomes a JobSystem(kind="imported") of that job and its answers.

All or nothing, as every import: the rows are checked first, then the job is locked and the system and
its answers written in one transaction. A bad row, a prompt the job did not answer, a missing prompt, or
a name the job already uses raises DataImportError, one line naming file, line and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from .importing import DataImportError, _fail, _jsonl_records, _read_text, check_system_name, system_answer
from .models import TWO_SYSTEMS, Answer, GenerationJob, JobStatus, JobSystem, job_system_names

KEY_FIELDS = ("prompt_external_id", "external_id")
FINISHED = (JobStatus.SUCCEEDED, JobStatus.PARTIALLY_FAILED)
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
OPTION = "--add-system"
WORKER = "import"  # what an imported answer gives as its worker, as import_answers does


@dataclass(frozen=True)
class SystemRow:
    line: int
    external_id: str
    answer: str


def _external_id(name: str, line: int, record: dict[str, Any]) -> tuple[str, str]:
    """The row's prompt key and the field it came from: `prompt_external_id`, or `external_id`; when
    both are given they must agree."""
    keys: dict[str, str] = {}
    for field in KEY_FIELDS:
        value = record.get(field)
        if isinstance(value, bool) or not isinstance(value, (str, int, type(None))):
            raise _fail(name, line, f'field "{field}": must be a string')
        if value is not None and str(value).strip():
            keys[field] = str(value).strip()
    if not keys:
        raise _fail(name, line, f'field "{KEY_FIELDS[0]}": required')
    if len(set(keys.values())) > 1:
        raise _fail(
            name,
            line,
            f'field "external_id": "{keys["external_id"]}" differs from prompt_external_id '
            f'"{keys["prompt_external_id"]}"',
        )
    field = next(iter(keys))
    return field, keys[field]


def _read_system_rows(path: Path) -> list[SystemRow]:
    """Every row of the file, checked: a prompt key, a non-blank answer, no prompt twice."""
    text = _read_text(path)
    if path.suffix.lower() not in JSONL_SUFFIXES:
        raise _fail(path.name, None, f'unknown format "{path.suffix or "(no extension)"}" (use .jsonl)')
    rows: list[SystemRow] = []
    first_seen: dict[str, int] = {}
    for line, record in _jsonl_records(path, text):
        field, external_id = _external_id(path.name, line, record)
        if external_id in first_seen:
            raise _fail(
                path.name,
                line,
                f'field "{field}": duplicate "{external_id}" (first on line {first_seen[external_id]})',
            )
        first_seen[external_id] = line
        answer = system_answer(path.name, line, "answer", record.get("answer"))
        rows.append(SystemRow(line, external_id, answer))
    if not rows:
        raise _fail(path.name, None, "no rows")
    return rows


def _match_prompts(path: Path, job: GenerationJob, rows: list[SystemRow]) -> dict[str, int]:
    """The job's answered prompts (external id → prompt id); every row names one, and every one has a
    row. A prompt is answered when it has a pre-trained answer."""
    answered = dict(
        Answer.objects.filter(job=job, role=TWO_SYSTEMS[0]).values_list("prompt__external_id", "prompt_id")
    )
    for row in rows:
        if row.external_id not in answered:
            raise _fail(
                path.name,
                row.line,
                f'field "prompt_external_id": "{row.external_id}" is not a prompt job {job.pk} answered',
            )
    missing = sorted(set(answered) - {row.external_id for row in rows})
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise _fail(
            path.name,
            None,
            f'field "prompt_external_id": no row for prompt "{missing[0]}" of job {job.pk}{more}',
        )
    return answered


def _locked_job(job_id: int | str, name: str) -> GenerationJob:
    """The finished job, locked for this transaction, that does not yet have a system called `name`."""
    try:
        pk = int(str(job_id).strip())
    except ValueError:
        raise DataImportError(f'--job: "{job_id}" is not a job id (a number)') from None
    job = GenerationJob.objects.select_for_update().filter(pk=pk).first()
    if job is None:
        raise DataImportError(f"--job: no job {pk}")
    if job.status not in FINISHED:
        raise DataImportError(
            f"--job: job {pk} is {job.status}; only a succeeded or partially failed job takes another system"
        )
    if name in job_system_names(job):
        raise DataImportError(f'{OPTION}: job {pk} already has a system "{name}"')
    return job


def import_system_answers(
    path: str | Path, *, job_id: int | str, system_name: str
) -> tuple[GenerationJob, int]:
    """Add the outside system `system_name` with its answer to every prompt the job answered; returns the
    job (its `total` grown by those answers) and the number of answers. All or nothing. Locks the job's
    row, so two imports into one job take turns."""
    path = Path(path)
    name = check_system_name(system_name, option=OPTION)
    rows = _read_system_rows(path)
    with transaction.atomic():
        job = _locked_job(job_id, name)
        prompt_ids = _match_prompts(path, job, rows)
        try:
            with transaction.atomic():  # a concurrent import of the same name, on a backend without locks
                JobSystem.objects.create(job=job, name=name, kind=JobSystem.Kind.IMPORTED)
        except IntegrityError:
            raise DataImportError(f'{OPTION}: job {job.pk} already has a system "{name}"') from None
        Answer.objects.bulk_create(
            [
                Answer(job=job, prompt_id=prompt_ids[r.external_id], role=name, text=r.answer, worker=WORKER)
                for r in rows
            ],
            batch_size=500,
        )
        GenerationJob.objects.filter(pk=job.pk).update(total=F("total") + len(rows))
    job.refresh_from_db()
    return job, len(rows)
