"""The admin's browser pages: uploading a prompts or answers file, queueing a job from the form, the job
and run lists (filters, pages) and pages (states that agree, settings and config as tables), and
opening a campaign from a finished job. Each form's happy path, each error (nothing saved), and the
403 for annotators and researchers."""

from __future__ import annotations

import json
import re
from html import unescape
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from annotations.models import Campaign, Pair
from generation.configs import GenerationSettings
from generation.jobs import job_cancel, job_create, job_submit_again
from generation.models import (
    Dataset,
    FinetuneRun,
    GenerationChunk,
    GenerationJob,
    JobStatus,
    ModelSpec,
    Prompt,
)
from tests.support.annotation_data import make_job
from tests.support.generation_data import make_dataset

pytestmark = pytest.mark.django_db

SEND = "generation.publishing.app.send_task"  # every message to the workers goes through it


def jsonl(name: str, rows: list[object]) -> SimpleUploadedFile:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    return SimpleUploadedFile(name, text.encode(), content_type="application/octet-stream")


def prompt_row(n: int, **extra: object) -> dict[str, object]:
    return {"external_id": f"p{n}", "task": "sentiment", "text": f"Is review {n} positive?", **extra}


def answer_row(n: int, **extra: object) -> dict[str, object]:
    return {**prompt_row(n), "pretrained": f"pre {n}", "finetuned": f"tuned {n}", **extra}


def errors_of(response) -> str:
    """The page's text without tags: what a person reads."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


# ---------------------------------------------------------------------------------------------
# Who may


@pytest.mark.parametrize("who", ["annotator", "researcher", None])
def test_only_admins_reach_the_admin_pages_and_nothing_is_made_for_anyone_else(client, request, who):
    job = make_job(prompts=2)
    if who:
        client.force_login(request.getfixturevalue(who))
    pages = ["/datasets/upload/", "/jobs/new/", f"/jobs/{job.pk}/campaign/new/"]
    for url in pages:
        response = client.get(url)
        assert response.status_code == (403 if who else 302), url
        assert b"hub/quokka" not in response.content  # no model name leaks to the refused user
    posts = [
        ("/datasets/upload/", {"kind": "prompts", "name": "x", "file": jsonl("a.jsonl", [prompt_row(1)])}),
        ("/jobs/new/", {"dataset": job.dataset.name, "base_model": "m"}),
        (f"/jobs/{job.pk}/campaign/new/", {"name": "c", "overlap": 1}),
        ("/jobs/campaign/guidelines-preview/", {"guidelines": "# hi"}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == (403 if who else 302), url
    assert Dataset.objects.count() == 1 and GenerationJob.objects.count() == 1
    assert not Campaign.objects.exists()


# ---------------------------------------------------------------------------------------------
# Uploading


def test_an_admin_uploads_a_prompts_file_and_lands_on_the_queue_form_with_it(client, admin_user):
    client.force_login(admin_user)
    upload = jsonl("eval.jsonl", [prompt_row(1, label="positive"), prompt_row(2, reference="Yes.")])
    response = client.post("/datasets/upload/", {"kind": "prompts", "name": "shop", "file": upload})
    assert response.status_code == 302 and response["Location"] == "/jobs/new/?dataset=shop"
    dataset = Dataset.objects.get(name="shop")
    assert list(dataset.prompts.values_list("external_id", "label")) == [("p1", "positive"), ("p2", "")]
    page = client.get(response["Location"])
    assert 'Imported 2 prompts into dataset "shop".' in errors_of(page)
    assert re.search(r'<option value="shop" selected>shop</option>', page.content.decode())


def test_a_csv_file_is_read_like_the_command_reads_it(client, admin_user):
    client.force_login(admin_user)
    text = 'external_id,task,text,context\na1,features,Which features?,"Light,\nquiet"\n'
    upload = SimpleUploadedFile("eval.csv", text.encode())
    response = client.post("/datasets/upload/", {"kind": "prompts", "name": "csv", "file": upload})
    assert response.status_code == 302
    assert Prompt.objects.get(dataset__name="csv").context == "Light,\nquiet"


@pytest.mark.parametrize(
    ("name", "rows", "expected"),
    [
        ("bad.jsonl", [prompt_row(1), prompt_row(2), {"external_id": "p3", "text": "x"}],
         'bad.jsonl line 3: field "task": required'),
        ("bad.jsonl", [prompt_row(1), "{not json"], "bad.jsonl line 2: invalid JSON"),
        ("bad.jsonl", [prompt_row(1), prompt_row(1)], 'bad.jsonl line 2: field "external_id": duplicate "p1"'),
        ("bad.jsonl", [prompt_row(1, task="not a slug")], 'bad.jsonl line 1: field "task": "not a slug" is not a slug'),
        ("bad.txt", [prompt_row(1)], 'bad.txt: unknown format ".txt"'),
    ],
)  # fmt: skip
def test_a_bad_prompts_file_names_line_and_field_and_imports_nothing(
    client, admin_user, name, rows, expected
):
    make_dataset("shop", n=1)
    client.force_login(admin_user)
    response = client.post(
        "/datasets/upload/", {"kind": "prompts", "name": "shop", "file": jsonl(name, rows)}
    )
    assert response.status_code == 400
    text = errors_of(response)
    assert "Nothing was imported." in text and expected in text
    assert Prompt.objects.count() == 1  # the dataset's one earlier prompt, nothing added


def test_a_prompt_already_in_the_dataset_stops_the_whole_upload(client, admin_user):
    make_dataset("shop", n=1)  # has p0
    client.force_login(admin_user)
    upload = jsonl("more.jsonl", [prompt_row(5), prompt_row(0)])
    response = client.post("/datasets/upload/", {"kind": "prompts", "name": "shop", "file": upload})
    assert response.status_code == 400
    assert "more.jsonl line 2" in errors_of(response) and "already in dataset" in errors_of(response)
    assert list(Prompt.objects.values_list("external_id", flat=True)) == ["p0"]


def test_the_upload_form_says_what_is_missing(client, admin_user):
    client.force_login(admin_user)
    response = client.post("/datasets/upload/", {"kind": "prompts", "name": ""})
    assert response.status_code == 400
    assert errors_of(response).count("This field is required.") == 2  # the file and the name
    response = client.post(
        "/datasets/upload/", {"kind": "nonsense", "name": "x", "file": jsonl("a.jsonl", [prompt_row(1)])}
    )
    assert response.status_code == 400 and "Select a valid choice" in errors_of(response)
    assert not Dataset.objects.exists()


def test_an_answers_file_makes_a_finished_job_whose_page_offers_a_campaign(client, admin_user):
    client.force_login(admin_user)
    upload = jsonl("answers.jsonl", [answer_row(1), answer_row(2)])
    response = client.post("/datasets/upload/", {"kind": "answers", "name": "byo", "file": upload})
    job = GenerationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert (job.status, job.imported, job.total, job.answers.count()) == (JobStatus.SUCCEEDED, True, 4, 4)
    html = client.get(response["Location"]).content.decode()
    assert f'href="/jobs/{job.pk}/campaign/new/"' in html and "Open a campaign on this job" in html
    assert "Imported from" in html and "answers.jsonl" in html
    assert "ETA" not in errors_of(client.get(response["Location"]))


def test_a_bad_answers_file_names_its_line_and_makes_nothing(client, admin_user):
    client.force_login(admin_user)
    upload = jsonl("answers.jsonl", [answer_row(1), {**prompt_row(2), "pretrained": "only one"}])
    response = client.post("/datasets/upload/", {"kind": "answers", "name": "byo", "file": upload})
    assert response.status_code == 400
    assert "answers.jsonl line 2: field &quot;finetuned&quot;: required" in response.content.decode()
    assert not Dataset.objects.exists() and not GenerationJob.objects.exists()


# ---------------------------------------------------------------------------------------------
# Queueing


def finished_run(tmp_path, **fields) -> FinetuneRun:
    values = {
        "base_model": "/models/base", "output_dir": str(tmp_path / "adapter"), "status": JobStatus.SUCCEEDED,
        "mode": FinetuneRun.Mode.LORA,
    }  # fmt: skip
    return FinetuneRun.objects.create(**{**values, **fields})


def test_the_queue_form_offers_known_bases_and_finished_runs(client, admin_user, tmp_path, settings):
    settings.EVALSITE_MODEL_ROOTS = [str(tmp_path), "/models"]
    make_dataset(n=2)
    run = finished_run(tmp_path)
    finished_run(tmp_path, status=JobStatus.FAILED, output_dir=str(tmp_path / "failed-run"))
    ModelSpec.objects.create(name="a spec", base_model="hub/used-before")
    client.force_login(admin_user)
    html = client.get("/jobs/new/").content.decode()
    assert f'<option value="run:{run.pk}">run #{run.pk}: /models/base + adapter {run.output_dir}' in html
    assert "failed-run" not in html  # only finished runs are offered
    for base in ("hub/used-before", "/models/base", "smollm2-demo"):
        assert f'[&quot;{base}&quot;, &quot;&quot;]">{base}</option>' in html, base
    assert 'name="prompt_limit"' in html and 'name="top_p"' in html and 'name="chunk_prompts"' in html
    assert f'value="run:{run.pk}" selected' in client.get(f"/jobs/new/?run={run.pk}").content.decode()


@pytest.mark.django_db(transaction=True)
def test_queueing_with_a_run_a_prompt_limit_and_settings(client, admin_user, tmp_path):
    make_dataset(n=5)
    run = finished_run(tmp_path)
    client.force_login(admin_user)
    form = {
        "dataset": "shop", "model": f"run:{run.pk}", "prompt_limit": "3", "max_new_tokens": "20",
        "batch_size": "8", "chunk_prompts": "2", "seed": "7", "do_sample": "on", "temperature": "0.7",
        "top_p": "", "name": "first three",
    }  # fmt: skip
    with mock.patch(SEND) as send:
        response = client.post("/jobs/new/", form)
    job = GenerationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.settings == {
        "max_new_tokens": 20, "batch_size": 8, "seed": 7, "do_sample": True, "temperature": 0.7,
        "chunk_prompts": 2, "prompt_limit": 3,
    }  # fmt: skip
    assert (job.total, job.name, job.finetune_run_id) == (6, "first three", run.pk)
    assert job.pretrained_model.base_model == "/models/base"
    assert job.finetuned_model.adapter_path == run.output_dir
    assert [len(c.prompt_ids) for c in job.chunks.all()] == [2, 1] and send.call_count == 2
    text = errors_of(client.get(response["Location"]))
    assert f"Job {job.pk} queued: 6 answers." in text
    for shown in ("Prompts answered the first 3", "Decoding sampling", "Temperature 0.7", "Top-p the model's own",
                  "Prompts per worker task 2", "Seed 7", "queued"):  # fmt: skip
        assert shown in text, shown
    assert "{'" not in text and "ETA not yet known" in text


@pytest.mark.django_db(transaction=True)
def test_a_base_from_the_picker_with_an_adapter_folder(client, admin_user, tmp_path, settings):
    settings.EVALSITE_MODEL_ROOTS = [str(tmp_path)]
    make_dataset(n=2)
    ModelSpec.objects.create(name="a spec", base_model="hub/used-before")
    client.force_login(admin_user)
    form = {"dataset": "shop", "model": 'base:["hub/used-before", ""]', "adapter_path": str(tmp_path / "a")}
    with mock.patch(SEND):
        response = client.post("/jobs/new/", form)
    assert response.status_code == 302
    job = GenerationJob.objects.get()
    assert (job.pretrained_model.base_model, job.finetuned_model.adapter_path) == (
        "hub/used-before",
        str(tmp_path / "a"),
    )
    assert job.settings["max_new_tokens"] == GenerationSettings.max_new_tokens  # empty fields: defaults


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({}, "base_model", "Pick a model above or type a base model here."),
        ({"base_model": "m", "prompt_limit": "0"}, "prompt_limit", "greater than or equal to 1"),
        ({"base_model": "m", "do_sample": "on", "top_p": "1.5"}, "top_p", "must be in (0, 1]"),
        ({"base_model": "m", "max_new_tokens": "99999"}, "max_new_tokens", "less than or equal to 8192"),
        ({"base_model": "/etc/secret-model"}, "base_model", "not allowed"),
        ({"base_model": "m", "adapter_path": "/elsewhere/adapter"}, "adapter_path", "not allowed"),
        ({"model": "run:999999"}, "model", "Select a valid choice"),
        ({"model": 'base:["never-used", ""]'}, "model", "Select a valid choice"),
        ({"dataset": "nope", "base_model": "m"}, "dataset", "Select a valid choice"),
    ],
)
def test_each_queue_error_is_shown_by_its_field_and_nothing_is_queued(
    client, admin_user, settings, tmp_path, form, field, message
):
    settings.EVALSITE_MODEL_ROOTS = [str(tmp_path)]
    make_dataset(n=2)
    client.force_login(admin_user)
    with mock.patch(SEND) as send:
        response = client.post("/jobs/new/", {"dataset": "shop", **form})
    assert response.status_code == 400
    html = response.content.decode()
    errors = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.DOTALL)
    assert errors is not None and message in errors.group(1), html
    assert not GenerationJob.objects.exists() and send.call_count == 0


def test_a_prompt_limit_is_kept_by_queue_again(tmp_path):
    dataset = make_dataset(n=4)
    job = job_create(dataset=dataset, base_model="m", settings=GenerationSettings(prompt_limit=2))
    assert job.total == 4 and sum(len(c.prompt_ids) for c in job.chunks.all()) == 2
    with mock.patch(SEND):
        again = job_submit_again(job=job)
    assert again.total == 4 and again.settings["prompt_limit"] == 2


def test_django_admins_add_job_button_opens_the_queue_form(client, admin_user):
    job = make_job(prompts=1)
    client.force_login(admin_user)
    response = client.get("/admin/generation/generationjob/add/")
    assert response.status_code == 302 and response["Location"] == "/jobs/new/"
    change = client.get(f"/admin/generation/generationjob/{job.pk}/change/")
    assert change.status_code == 200 and "Generation chunks" in change.content.decode()


# ---------------------------------------------------------------------------------------------
# Job list and page


def test_the_job_list_pages_by_25_and_filters_by_status_and_dataset(client, admin_user):
    first, second = make_dataset("alpha-set", n=1), make_dataset("beta-set", n=1)
    for n in range(28):
        job_create(dataset=first if n % 2 else second, base_model="m", name=f"job-{n}")
    GenerationJob.objects.filter(name__in=["job-1", "job-3"]).update(status=JobStatus.SUCCEEDED)
    client.force_login(admin_user)
    page1, page2 = client.get("/jobs/"), client.get("/jobs/?page=2")
    assert page1.content.decode().count('class="job-progress"') == 25
    assert page2.content.decode().count('class="job-progress"') == 3
    assert "Page 1 of 2 (28 in all)" in errors_of(page1) and 'href="?page=2"' in page1.content.decode()
    done = client.get("/jobs/?status=succeeded&dataset=ALPHA").content.decode()
    assert sorted(re.findall(r"#\d+ (job-\d+)</a>", done)) == ["job-1", "job-3"]
    beta = client.get("/jobs/?dataset=beta").content.decode()
    assert beta.count('class="job-progress"') == 14 and "alpha-set" not in beta.split("<tbody>")[1]
    assert "No job matches these filters." in errors_of(client.get("/jobs/?dataset=nothing"))
    assert (
        client.get("/jobs/?page=abc&status=bogus").status_code == 200
    )  # bad input: the first page, unfiltered


def test_a_cancelled_jobs_chunks_say_not_run_and_there_is_no_eta(client, admin_user):
    job = job_create(dataset=make_dataset(n=3), base_model="m", settings=GenerationSettings(chunk_prompts=1))
    GenerationChunk.objects.filter(job=job, index=0).update(
        status=JobStatus.SUCCEEDED, finished_at=timezone.now()
    )
    GenerationChunk.objects.filter(job=job, index=1).update(status=JobStatus.RUNNING)
    job_cancel(job=job)
    client.force_login(admin_user)
    text = errors_of(client.get(f"/jobs/{job.pk}/"))
    assert "Chunks: 1 not run (job cancelled), 1 stopped (job cancelled), 1 succeeded" in text
    statuses = re.findall(
        r"<td data-chunk-status>([^<]*)</td>", client.get(f"/jobs/{job.pk}/").content.decode()
    )
    assert statuses == ["succeeded", "stopped (job cancelled)", "not run (job cancelled)"]
    assert "ETA" not in text and "--:--" not in text and "Cancel job" not in text
    assert "Open a campaign" not in text  # no answers to rate


def test_a_running_job_and_its_chunks_are_read_together(client, admin_user):
    job = job_create(dataset=make_dataset(n=2), base_model="m", settings=GenerationSettings(chunk_prompts=1))
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, started_at=timezone.now())
    GenerationChunk.objects.filter(job=job, index=0).update(status=JobStatus.RUNNING, worker="w@1")
    client.force_login(admin_user)
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert re.findall(r"<td data-chunk-status>([^<]*)</td>", html) == ["running", "queued"]
    assert 'data-status="running"' in html and "ETA" in html and "Cancel job" in html
    assert f'id="job-live" data-page="/jobs/{job.pk}/"' in html


# ---------------------------------------------------------------------------------------------
# Opening a campaign


def gold_file(rows: list[object], name: str = "gold.jsonl") -> SimpleUploadedFile:
    return jsonl(name, rows)


def test_the_campaign_form_asks_one_question_per_task_prefilled(client, admin_user):
    job = make_job(prompts=4)  # tasks relevance and sentiment
    client.force_login(admin_user)
    html = client.get(f"/jobs/{job.pk}/campaign/new/").content.decode()
    assert 'name="question_relevance" value="Does the answer address the question relevantly?"' in html
    assert 'name="question_sentiment" value="Is the sentiment stated correctly?"' in html
    assert "question_features" not in html  # no prompt of that task in this job
    assert 'name="allow_not_sure"' in html and 'name="gold_feedback"' in html and 'name="gold"' in html
    assert '<script src="/static/generation/campaign-preview.js" defer></script>' in html
    assert "<script>" not in html and "style=" not in html


def test_an_admin_opens_a_campaign_in_one_step(client, admin_user):
    job = make_job(prompts=4)
    client.force_login(admin_user)
    form = {
        "name": "Round one", "overlap": "2", "guidelines": "# Rate\n\nBe **fair**.", "allow_not_sure": "on",
        "gold_feedback": "on", "question_relevance": "Is it on topic?",
        "question_sentiment": "Is the sentiment stated correctly?",
        "gold": gold_file([{"prompt_external_id": "p1", "preference": "finetuned", "correct_finetuned": True}]),
    }  # fmt: skip
    response = client.post(f"/jobs/{job.pk}/campaign/new/", form)
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.pk}/report/"
    assert (campaign.name, campaign.overlap, campaign.allow_not_sure, campaign.gold_feedback) == (
        "Round one", 2, True, True
    )  # fmt: skip
    assert campaign.guidelines == "# Rate\n\nBe **fair**." and campaign.guidelines_updated_at is not None
    assert campaign.task_questions == {"relevance": "Is it on topic?"}  # the default wording is not stored
    assert campaign.pairs.count() == 4
    gold = Pair.objects.get(campaign=campaign, prompt__external_id="p1")
    assert (gold.gold_preference, gold.gold_correct_finetuned) == ("finetuned", True)
    job_page = errors_of(client.get(f"/jobs/{job.pk}/"))
    assert "Campaigns on this job: Round one (open)" in job_page


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"name": "", "overlap": "2"}, "This field is required."),
        ({"overlap": "0"}, "greater than or equal to 1"),
        ({"gold": "bad-json"}, "gold.jsonl line 2: not valid JSON"),
        ({"gold": "unknown-prompt"}, "gold.jsonl line 1: field &#x27;prompt_external_id&#x27;: no pair in this campaign for prompt &#x27;p99&#x27;"),
        ({"gold": "bad-preference"}, "gold.jsonl line 1: field &#x27;preference&#x27; must be one of"),
        ({"question_sentiment": "x" * 501}, "at most 500 characters"),
    ],
)  # fmt: skip
def test_each_campaign_error_is_shown_and_nothing_is_opened(client, admin_user, form, expected):
    job = make_job(prompts=2)
    client.force_login(admin_user)
    golds = {
        "bad-json": [{"prompt_external_id": "p0", "preference": "tie"}, "{oops"],
        "unknown-prompt": [{"prompt_external_id": "p99", "preference": "tie"}],
        "bad-preference": [{"prompt_external_id": "p0", "preference": "left"}],
    }
    data = {"name": "C", "overlap": "1", **form}
    if "gold" in form:
        data["gold"] = gold_file(golds[form["gold"]])
    response = client.post(f"/jobs/{job.pk}/campaign/new/", data)
    assert response.status_code == 400
    assert expected in response.content.decode()
    assert not Campaign.objects.exists() and not Pair.objects.exists()


def test_a_job_that_has_not_finished_offers_no_campaign(client, admin_user):
    job = make_job(prompts=2, status=JobStatus.RUNNING)
    client.force_login(admin_user)
    page = client.get(f"/jobs/{job.pk}/campaign/new/")
    assert page.status_code == 200 and "This job has not finished yet (status: running)" in errors_of(page)
    response = client.post(f"/jobs/{job.pk}/campaign/new/", {"name": "C", "overlap": "1"})
    assert response.status_code == 400 and "has not finished yet" in errors_of(response)
    assert not Campaign.objects.exists()
    assert "Open a campaign" not in errors_of(client.get(f"/jobs/{job.pk}/"))
    assert client.get("/jobs/999999/campaign/new/").status_code == 404


def test_the_guidelines_preview_is_the_rating_pages_safe_markdown(client, admin_user):
    job = make_job(prompts=2)
    client.force_login(admin_user)
    text = "# Title\n\n- **one**\n- <script>alert(1)</script>"
    fragment = client.post("/jobs/campaign/guidelines-preview/", {"guidelines": text}).content.decode()
    assert "<h3>Title</h3>" in fragment and "<strong>one</strong>" in fragment
    assert "<script>" not in fragment and "&lt;script&gt;" in fragment
    assert client.get("/jobs/campaign/guidelines-preview/").status_code == 405
    # without the script: the Preview button draws it on the page and saves nothing
    response = client.post(
        f"/jobs/{job.pk}/campaign/new/", {"name": "C", "overlap": "1", "guidelines": text, "preview": "1"}
    )
    html = response.content.decode()
    assert response.status_code == 200 and "<h3>Title</h3>" in html and "<script>alert" not in html
    assert not Campaign.objects.exists()


# ---------------------------------------------------------------------------------------------
# Run pages


DEMO_LIKE_METRICS = {
    "mode": "lora", "epochs_run": 2, "best_epoch": 2, "train_loss": [1.6, 0.9], "val_loss": [1.3, 0.96],
    "dataset": "demo-train", "wall_seconds": 944.6, "config": {},
}  # fmt: skip


def test_a_run_recorded_from_training_json_reads_plainly(client, researcher):
    config = {
        "mode": "lora", "epochs": 2, "patience": 1, "lr": 0.0005, "target_modules": ["q_proj", "k_proj"],
        "gradient_checkpointing": False, "max_examples": None, "device": None, "threads": 1,
    }  # fmt: skip
    run = FinetuneRun.objects.create(
        base_model="smollm2-demo", output_dir="/srv/demo/adapter", status=JobStatus.SUCCEEDED,
        metrics=DEMO_LIKE_METRICS, config=config,
    )  # fmt: skip
    client.force_login(researcher)
    response = client.get(f"/runs/{run.pk}/")
    text = errors_of(response)
    assert "demo-train (not in this site)" in text and "(deleted)" not in text
    assert (
        "Started not recorded: trained elsewhere" in text
        and "Finished not recorded: trained elsewhere" in text
    )
    for row in ("Target modules q_proj, k_proj", "Learning rate 0.0005", "Gradient checkpointing no",
                "Examples used all", "Device auto (CUDA when there is one)", "CPU threads 1"):  # fmt: skip
        assert row in text, row
    assert "[&#x27;" not in response.content.decode() and "None" not in text
    assert "Queue a generation job with this adapter" not in text  # researchers do not queue


def test_the_run_list_pages_and_filters(client, admin_user):
    other = Dataset.objects.create(name="kept-set")
    for n in range(27):
        FinetuneRun.objects.create(
            base_model="b", output_dir=f"/o/{n}", dataset=other if n < 3 else None,
            status=JobStatus.FAILED if n == 0 else JobStatus.SUCCEEDED,
            metrics={} if n < 3 else {"dataset": "gone-set"},
        )  # fmt: skip
    client.force_login(admin_user)
    first = client.get("/runs/").content.decode()
    assert len(re.findall(r'<a href="/runs/\d+/">#', first)) == 25
    assert "Page 1 of 2 (27 in all)" in errors_of(client.get("/runs/"))
    assert errors_of(client.get("/runs/?page=2")).count("kept-set") == 2  # runs 2 and 1; run 3 is on page 1
    assert "gone-set (not in this site)" in first
    kept = client.get("/runs/?dataset=kept&status=failed").content.decode()
    assert len(re.findall(r'<a href="/runs/\d+/">#', kept)) == 1
    gone = client.get("/runs/?dataset=GONE").content.decode()
    assert len(re.findall(r'<a href="/runs/\d+/">#', gone)) == 24
    run = FinetuneRun.objects.filter(dataset=other, status=JobStatus.SUCCEEDED).first()
    assert f'href="/jobs/new/?run={run.pk}"' in client.get(f"/runs/{run.pk}/").content.decode()
