"""Importing the answers of more than two systems (issue 17): `import_answers --systems` makes a job whose
further systems are columns of the file, `import_answers --add-system NAME --job ID` adds one outside
system to a finished job, and the upload page takes the same further columns. All or nothing, with one
line naming file, line and field."""

from __future__ import annotations

import json
from html import unescape
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from generation.importing import DataImportError, import_answers
from generation.importing_systems import import_system_answers
from generation.models import (
    Answer,
    Dataset,
    GenerationJob,
    JobStatus,
    JobSystem,
    Prompt,
    job_system_names,
)
from tests.support.annotation_data import make_job
from tests.support.systems_data import make_systems_job

pytestmark = pytest.mark.django_db


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def answer_row(n: int, **extra: object) -> dict[str, object]:
    return {
        "external_id": f"p{n}",
        "task": "sentiment",
        "text": f"Is review {n} positive?",
        "pretrained": f"base {n}",
        "finetuned": f"tuned {n}",
        **extra,
    }


def outside_rows(n: int, **extra: object) -> dict[str, object]:
    return answer_row(n, **{"gpt-4o": f"gpt says {n}", "rules_v2": f"rules say {n}"}, **extra)


def run_import(*args: str) -> str:
    out = StringIO()
    call_command("import_answers", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def texts_of(job: GenerationJob) -> dict[tuple[str, str], str]:
    return {
        (a.prompt.external_id, a.role): a.text
        for a in Answer.objects.filter(job=job).select_related("prompt")
    }


def nothing_imported() -> bool:
    return not (
        Dataset.objects.exists()
        or Prompt.objects.exists()
        or GenerationJob.objects.exists()
        or JobSystem.objects.exists()
        or Answer.objects.exists()
    )


# ---------------------------------------------------------------------------------------------
# --systems: further columns of one answers file


def test_named_columns_make_a_job_of_four_systems_with_every_answer(tmp_path):
    path = write_jsonl(tmp_path / "answers.jsonl", [outside_rows(n) for n in (1, 2, 3)])
    out = run_import(str(path), "--job", "byo", "--systems", "gpt-4o, rules_v2")
    job = GenerationJob.objects.get()
    assert out.strip().splitlines()[-1] == str(job.pk)
    assert (job.status, job.imported, job.total) == (JobStatus.SUCCEEDED, True, 12)
    assert job_system_names(job) == ["pretrained", "finetuned", "gpt-4o", "rules_v2"]
    assert list(job.extra_systems.values_list("name", "kind", "adapter_path")) == [
        ("gpt-4o", JobSystem.Kind.IMPORTED, ""),
        ("rules_v2", JobSystem.Kind.IMPORTED, ""),
    ]
    texts = texts_of(job)
    assert len(texts) == 12
    assert texts[("p2", "gpt-4o")] == "gpt says 2" and texts[("p3", "rules_v2")] == "rules say 3"
    assert texts[("p1", "pretrained")] == "base 1" and texts[("p1", "finetuned")] == "tuned 1"
    assert job.dataset.prompts.count() == 3


def test_a_column_not_named_with_systems_is_ignored_as_before(tmp_path):
    """Without --systems a file keeps importing exactly as it did: two systems, other fields ignored, so a
    misspelt field never becomes a system by accident."""
    path = write_jsonl(tmp_path / "answers.jsonl", [outside_rows(1), outside_rows(2)])
    job = import_answers(path, job_name="byo")
    assert job_system_names(job) == ["pretrained", "finetuned"] and job.total == 4
    assert not JobSystem.objects.exists()
    assert sorted({role for _, role in texts_of(job)}) == ["finetuned", "pretrained"]


MISSING_GPT = 'answers.jsonl line 3: field "gpt-4o": required'


@pytest.mark.parametrize(
    ("line3", "message"),
    [
        (answer_row(3, rules_v2="r"), 'answers.jsonl line 3: field "gpt-4o": required'),
        (answer_row(3, **{"gpt-4o": None, "rules_v2": "r"}), MISSING_GPT),
        (answer_row(3, **{"gpt-4o": "  ", "rules_v2": "r"}), MISSING_GPT),
        (
            answer_row(3, **{"gpt-4o": "g", "rules_v2": 7}),
            'answers.jsonl line 3: field "rules_v2": must be a string',
        ),
        (
            answer_row(3, **{"gpt-4o": ["g"], "rules_v2": "r"}),
            'answers.jsonl line 3: field "gpt-4o": must be a string',
        ),
    ],
)
def test_a_bad_system_column_on_line_3_names_line_and_field_and_makes_nothing(tmp_path, line3, message):
    path = write_jsonl(tmp_path / "answers.jsonl", [outside_rows(1), outside_rows(2), line3])
    with pytest.raises(CommandError) as info:
        run_import(str(path), "--job", "byo", "--systems", "gpt-4o,rules_v2")
    assert str(info.value) == message
    assert nothing_imported()


@pytest.mark.parametrize(
    ("systems", "message"),
    [
        ("gpt 4o", '--systems: "gpt 4o" is not a slug (letters, digits, - and _)'),
        ("gpt-4o,finetuned", '--systems: "finetuned" is a system every job has already'),
        ("label", '--systems: "label" is a prompt field, not a system'),
        ("gpt-4o,gpt-4o", '--systems: "gpt-4o" is named twice'),
        ("gpt-4o,,rules_v2", "--systems: a system name is required"),
        ("x" * 65, f'--systems: "{"x" * 65}" is longer than 64 characters'),
    ],
)
def test_a_bad_systems_option_is_a_one_line_error_and_makes_nothing(tmp_path, systems, message):
    path = write_jsonl(tmp_path / "answers.jsonl", [outside_rows(1)])
    with pytest.raises(CommandError) as info:
        run_import(str(path), "--job", "byo", "--systems", systems)
    assert str(info.value) == message
    assert nothing_imported()


# ---------------------------------------------------------------------------------------------
# --add-system: one more system into a finished job


def system_rows(job: GenerationJob, key: str = "prompt_external_id") -> list[dict[str, object]]:
    prompts = Prompt.objects.filter(dataset=job.dataset).order_by("id")
    return [{key: p.external_id, "answer": f"outside on {p.external_id}"} for p in prompts]


def test_add_system_gives_a_generated_job_a_third_system(tmp_path):
    job = make_job(prompts=4)
    path = write_jsonl(tmp_path / "outside.jsonl", system_rows(job))
    out = run_import(str(path), "--add-system", "gpt-4o", "--job", str(job.pk))
    assert out.strip().splitlines()[-1] == str(job.pk)
    job.refresh_from_db()
    assert job.total == 12 and job.status == JobStatus.SUCCEEDED
    assert job_system_names(job) == ["pretrained", "finetuned", "gpt-4o"]
    system = JobSystem.objects.get(job=job)
    assert (system.name, system.kind, system.adapter_path, system.epoch) == ("gpt-4o", "imported", "", None)
    texts = texts_of(job)
    assert texts[("p2", "gpt-4o")] == "outside on p2"
    assert sum(1 for _, role in texts if role == "gpt-4o") == 4
    assert not Answer.objects.filter(role="gpt-4o", fallback=True).exists()


def test_add_system_takes_external_id_and_keeps_the_job_order_of_systems(tmp_path):
    job = make_systems_job(prompts=6)  # pretrained, finetuned, epoch-005, outside
    path = write_jsonl(tmp_path / "second.jsonl", system_rows(job, key="external_id"))
    run_import(str(path), "--add-system", "second-opinion", "--job", str(job.pk))
    job.refresh_from_db()
    assert job_system_names(job) == ["pretrained", "finetuned", "epoch-005", "outside", "second-opinion"]
    assert job.total == 6 * 5
    assert Answer.objects.filter(job=job, role="second-opinion").count() == 6


def test_add_system_needs_rows_only_for_the_prompts_the_job_answered(tmp_path):
    """A prompt of the dataset the job did not answer (a prompt limit, say) needs no row; a partially
    failed job takes another system too."""
    job = make_job(prompts=3, status=JobStatus.PARTIALLY_FAILED)
    Prompt.objects.create(dataset=job.dataset, external_id="later", task="sentiment", text="Not answered.")
    rows = [r for r in system_rows(job) if r["prompt_external_id"] != "later"]
    path = write_jsonl(tmp_path / "outside.jsonl", rows)
    run_import(str(path), "--add-system", "outside", "--job", str(job.pk))
    job.refresh_from_db()
    assert job.total == 9 and Answer.objects.filter(job=job, role="outside").count() == 3


def add_system_error_cases(
    job: GenerationJob, other: GenerationJob
) -> list[tuple[list[object], str, str, str]]:
    """(rows, name, job id, the exact error) for every way an --add-system import is refused."""
    rows = system_rows(job)  # p0 p1 p2 p3
    first = rows[0]
    return [
        ([*rows, {"prompt_external_id": "p9", "answer": "a"}], "outside", str(job.pk),
         f'outside.jsonl line 5: field "prompt_external_id": "p9" is not a prompt job {job.pk} answered'),
        ([*rows, {"prompt_external_id": "p0", "answer": "again"}], "outside", str(job.pk),
         'outside.jsonl line 5: field "prompt_external_id": duplicate "p0" (first on line 1)'),
        ([*rows[:2], {"prompt_external_id": "p2"}, rows[3]], "outside", str(job.pk),
         'outside.jsonl line 3: field "answer": required'),
        ([*rows[:2], {"prompt_external_id": "p2", "answer": " \n"}, rows[3]], "outside", str(job.pk),
         'outside.jsonl line 3: field "answer": required'),
        ([*rows[:2], {"prompt_external_id": "p2", "answer": 3}, rows[3]], "outside", str(job.pk),
         'outside.jsonl line 3: field "answer": must be a string'),
        ([*rows[:1], {"answer": "no key"}, *rows[1:]], "outside", str(job.pk),
         'outside.jsonl line 2: field "prompt_external_id": required'),
        ([{**first, "external_id": "p1"}, *rows[1:]], "outside", str(job.pk),
         'outside.jsonl line 1: field "external_id": "p1" differs from prompt_external_id "p0"'),
        (rows[:3], "outside", str(job.pk),
         f'outside.jsonl: field "prompt_external_id": no row for prompt "p3" of job {job.pk}'),
        (rows[:1], "outside", str(job.pk),
         f'outside.jsonl: field "prompt_external_id": no row for prompt "p1" of job {job.pk} (and 2 more)'),
        (["{not json"], "outside", str(job.pk),
         "outside.jsonl line 1: invalid JSON: Expecting property name enclosed in double quotes (column 2)"),
        ([], "outside", str(job.pk), "outside.jsonl: no rows"),
        (rows, "Outside System", str(job.pk),
         '--add-system: "Outside System" is not a slug (letters, digits, - and _)'),
        (rows, "finetuned", str(job.pk), '--add-system: "finetuned" is a system every job has already'),
        (rows, "pretrained", str(job.pk), '--add-system: "pretrained" is a system every job has already'),
        (rows, "external_id", str(job.pk), '--add-system: "external_id" is a prompt field, not a system'),
        (rows, "already", str(job.pk), f'--add-system: job {job.pk} already has a system "already"'),
        (rows, "outside", str(other.pk),
         f"--job: job {other.pk} is running; only a succeeded or partially failed job takes another system"),
        (rows, "outside", "999999", "--job: no job 999999"),
        (rows, "outside", "byo", '--job: "byo" is not a job id (a number)'),
    ]  # fmt: skip


def test_every_bad_add_system_import_is_one_line_naming_what_is_wrong_and_writes_nothing(tmp_path):
    job = make_job(prompts=4)
    already = JobSystem.objects.create(job=job, name="already", kind=JobSystem.Kind.IMPORTED)
    prompts = Prompt.objects.filter(dataset=job.dataset)
    Answer.objects.bulk_create(Answer(job=job, prompt=p, role="already", text="x") for p in prompts)
    job.total = 12
    job.save(update_fields=["total"])
    other = make_job(prompts=4, dataset_name="running-set", status=JobStatus.RUNNING)
    answers = Answer.objects.count()
    for rows, name, job_id, message in add_system_error_cases(job, other):
        path = write_jsonl(tmp_path / "outside.jsonl", rows)
        with pytest.raises(CommandError) as info:
            run_import(str(path), "--add-system", name, "--job", job_id)
        assert str(info.value) == message
        assert list(JobSystem.objects.all()) == [already], message
        assert Answer.objects.count() == answers, message
        job.refresh_from_db()
        other.refresh_from_db()
        assert (job.total, other.total) == (12, 8), message


def test_add_system_does_not_mix_with_systems(tmp_path):
    job = make_job(prompts=2)
    path = write_jsonl(tmp_path / "outside.jsonl", system_rows(job))
    with pytest.raises(CommandError, match=r"^--systems: not with --add-system \(add one system a file\)$"):
        run_import(str(path), "--add-system", "a", "--systems", "b", "--job", str(job.pk))
    assert not JobSystem.objects.exists()


def test_two_imports_of_one_system_name_leave_one_system(tmp_path):
    job = make_job(prompts=2)
    path = write_jsonl(tmp_path / "outside.jsonl", system_rows(job))
    run_import(str(path), "--add-system", "outside", "--job", str(job.pk))
    with pytest.raises(CommandError, match=rf'^--add-system: job {job.pk} already has a system "outside"$'):
        run_import(str(path), "--add-system", "outside", "--job", str(job.pk))
    job.refresh_from_db()
    assert job.total == 6 and Answer.objects.filter(role="outside").count() == 2


def test_add_system_on_an_imported_job_of_further_systems(tmp_path):
    path = write_jsonl(tmp_path / "answers.jsonl", [outside_rows(n) for n in (1, 2)])
    job = import_answers(path, job_name="byo", systems=["gpt-4o", "rules_v2"])
    more = write_jsonl(tmp_path / "more.jsonl", system_rows(job))
    with pytest.raises(DataImportError, match=r'already has a system "gpt-4o"$'):
        import_system_answers(more, job_id=job.pk, system_name="gpt-4o")
    run_import(str(more), "--add-system", "claude", "--job", str(job.pk))
    job.refresh_from_db()
    assert job_system_names(job) == ["pretrained", "finetuned", "gpt-4o", "rules_v2", "claude"]
    assert job.total == 10


# ---------------------------------------------------------------------------------------------
# The upload page


def upload(name: str, rows: list[object]) -> SimpleUploadedFile:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    return SimpleUploadedFile(name, text.encode(), content_type="application/octet-stream")


def test_the_upload_page_takes_further_systems_of_an_answers_file(client, admin_user):
    client.force_login(admin_user)
    page = client.get("/datasets/upload/").content.decode()
    assert 'name="systems"' in page
    response = client.post(
        "/datasets/upload/",
        {
            "kind": "answers",
            "name": "byo",
            "systems": "gpt-4o,rules_v2",
            "file": upload("answers.jsonl", [outside_rows(1), outside_rows(2)]),
        },
    )
    job = GenerationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job_system_names(job) == ["pretrained", "finetuned", "gpt-4o", "rules_v2"]
    assert job.total == 8 and job.answers.count() == 8
    page = client.get(response["Location"]).content.decode()
    assert 'Imported 2 prompts with the answers of 4 systems as job "byo".' in unescape(page)


@pytest.mark.parametrize(
    ("kind", "systems", "rows", "message"),
    [
        ("answers", "gpt 4o", [outside_rows(1)], "&quot;gpt 4o&quot; is not a slug"),
        ("answers", "finetuned", [outside_rows(1)], "&quot;finetuned&quot; is a system every job has"),
        ("prompts", "gpt-4o", [outside_rows(1)], "Only an answers file has further systems."),
        (
            "answers",
            "gpt-4o,rules_v2",
            [outside_rows(1), answer_row(2, **{"gpt-4o": "g"})],
            "answers.jsonl line 2: field &quot;rules_v2&quot;: required",
        ),
    ],
)
def test_bad_further_systems_on_the_upload_page_show_the_error_and_import_nothing(
    client, admin_user, kind, systems, rows, message
):
    client.force_login(admin_user)
    response = client.post(
        "/datasets/upload/",
        {"kind": kind, "name": "byo", "systems": systems, "file": upload("answers.jsonl", rows)},
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert nothing_imported()
