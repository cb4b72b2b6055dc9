"""import_prompts / import_answers: every row or none, one-line errors naming file, line and field."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from generation.importing import DataImportError, import_answers, import_prompts
from generation.models import Answer, Dataset, GenerationJob, JobStatus, Prompt

pytestmark = pytest.mark.django_db


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def prompt_row(n: int, **extra: object) -> dict[str, object]:
    row = {
        "external_id": f"p{n}",
        "task": "sentiment",
        "text": f"Is review {n} positive?",
        "context": "Great kettle.",
    }
    row.update(extra)
    return row


def test_it_imports_jsonl_prompts_and_prints_the_dataset_id_last(tmp_path):
    path = write_jsonl(
        tmp_path / "eval.jsonl", [prompt_row(1, label="positive"), prompt_row(2, reference="Yes.")]
    )
    out, err = StringIO(), StringIO()
    call_command("import_prompts", str(path), "--dataset", "shop", stdout=out, stderr=err)
    dataset = Dataset.objects.get(name="shop")
    assert out.getvalue().strip().splitlines()[-1] == str(dataset.pk)
    assert list(dataset.prompts.values_list("external_id", "task", "label", "reference")) == [
        ("p1", "sentiment", "positive", ""),
        ("p2", "sentiment", "", "Yes."),
    ]


def test_it_imports_csv_with_quoted_multiline_cells(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_text(
        "external_id,task,text,context,reference,label\n"
        'a1,features,"Which features?","Light,\nand quiet",,\n'
        "a2,custom-task,Recommend it?,,,no\n"
    )
    dataset, created = import_prompts(path, dataset_name="csv")
    assert created == 2
    assert Prompt.objects.get(dataset=dataset, external_id="a1").context == "Light,\nand quiet"
    assert Prompt.objects.get(dataset=dataset, external_id="a2").task == "custom-task"


def test_a_bad_line_names_file_line_and_field_and_loads_nothing(tmp_path):
    rows = [prompt_row(n) for n in range(1, 7)] + [{"external_id": "p7", "text": "no task here"}]
    path = write_jsonl(tmp_path / "eval.jsonl", rows)
    with pytest.raises(CommandError) as info:
        call_command("import_prompts", str(path), "--dataset", "shop", stdout=StringIO(), stderr=StringIO())
    assert str(info.value) == 'eval.jsonl line 7: field "task": required'
    assert not Dataset.objects.filter(name="shop").exists()
    assert Prompt.objects.count() == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"external_id": "x", "task": "sentiment", "text": }',
            "eval.jsonl line 2: invalid JSON: Expecting value (column 51)",
        ),
        ("[1, 2]", "eval.jsonl line 2: expected a JSON object"),
        (
            '{"external_id": "x", "task": "not a slug!", "text": "t"}',
            'eval.jsonl line 2: field "task": "not a slug!" is not a slug (letters, digits, - and _)',
        ),
        (
            '{"external_id": "x", "task": "sentiment", "text": "  "}',
            'eval.jsonl line 2: field "text": required',
        ),
        (
            '{"external_id": ["x"], "task": "sentiment", "text": "t"}',
            'eval.jsonl line 2: field "external_id": must be a string',
        ),
        (
            '{"external_id": "p1", "task": "sentiment", "text": "t"}',
            'eval.jsonl line 2: field "external_id": duplicate "p1" (first on line 1)',
        ),
    ],
)
def test_each_kind_of_bad_row_gets_a_one_line_error(tmp_path, line, message):
    path = write_jsonl(tmp_path / "eval.jsonl", [prompt_row(1), line])
    with pytest.raises(DataImportError) as info:
        import_prompts(path, dataset_name="shop")
    assert str(info.value) == message
    assert Prompt.objects.count() == 0


def test_an_external_id_already_in_the_dataset_is_an_error(tmp_path):
    import_prompts(write_jsonl(tmp_path / "a.jsonl", [prompt_row(1)]), dataset_name="shop")
    with pytest.raises(DataImportError) as info:
        import_prompts(write_jsonl(tmp_path / "b.jsonl", [prompt_row(2), prompt_row(1)]), dataset_name="shop")
    assert str(info.value) == 'b.jsonl line 2: field "external_id": "p1" is already in dataset "shop"'
    assert list(Prompt.objects.values_list("external_id", flat=True)) == ["p1"]


def test_csv_without_a_required_column_names_it(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_text("external_id,text\nx,hello\n")
    with pytest.raises(DataImportError, match=r'^eval.csv line 1: missing column "task"$'):
        import_prompts(path, dataset_name="shop")


def test_missing_file_and_unknown_format_are_one_line_errors(tmp_path):
    with pytest.raises(DataImportError, match=r"^nope.jsonl: file not found$"):
        import_prompts(tmp_path / "nope.jsonl", dataset_name="shop")
    (tmp_path / "eval.txt").write_text("x")
    with pytest.raises(DataImportError, match=r'^eval.txt: unknown format ".txt" \(use .jsonl or .csv\)$'):
        import_prompts(tmp_path / "eval.txt", dataset_name="shop")


def test_import_answers_makes_a_finished_job_with_both_answers(tmp_path):
    rows = [prompt_row(n, pretrained=f"base {n}", finetuned=f"tuned {n}") for n in (1, 2, 3)]
    path = write_jsonl(tmp_path / "answers.jsonl", rows)
    out = StringIO()
    call_command("import_answers", str(path), "--job", "byo", stdout=out, stderr=StringIO())
    job = GenerationJob.objects.get()
    assert out.getvalue().strip().splitlines()[-1] == str(job.pk)
    assert (job.name, job.imported, job.status, job.total) == ("byo", True, JobStatus.SUCCEEDED, 6)
    assert job.dataset.name == "byo" and job.dataset.prompts.count() == 3
    assert job.finished_at is not None
    texts = {
        (a.prompt.external_id, a.role): a.text
        for a in Answer.objects.filter(job=job).select_related("prompt")
    }
    assert texts[("p2", "pretrained")] == "base 2" and texts[("p2", "finetuned")] == "tuned 2"
    assert not Answer.objects.filter(fallback=True).exists()


def test_import_answers_without_an_answer_loads_nothing(tmp_path):
    rows = [prompt_row(1, pretrained="a", finetuned="b"), prompt_row(2, pretrained="a")]
    path = write_jsonl(tmp_path / "answers.jsonl", rows)
    with pytest.raises(CommandError, match=r'^answers.jsonl line 2: field "finetuned": required$'):
        call_command("import_answers", str(path), "--job", "byo", stdout=StringIO(), stderr=StringIO())
    assert not GenerationJob.objects.exists() and not Dataset.objects.exists() and not Answer.objects.exists()


def test_import_answers_refuses_a_name_already_used_by_a_dataset(tmp_path):
    Dataset.objects.create(name="byo")
    path = write_jsonl(tmp_path / "answers.jsonl", [prompt_row(1, pretrained="a", finetuned="b")])
    with pytest.raises(DataImportError, match=r'^dataset "byo" already exists: pick another --job name$'):
        import_answers(path, job_name="byo")
    assert not GenerationJob.objects.exists()
