"""An admin does the whole job in Chromium, at 1366x768 and on a phone: uploads a prompts file (and sees
a bad one refused by line and field), queues a job from the form, uploads ready-made answers and opens a
campaign on that finished job in one step, with the guidelines previewed as annotators will see them."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.utils import timezone

from annotations.models import Campaign, User
from generation.models import Answer, Dataset, GenerationChunk, GenerationJob, JobStatus, Prompt, Role
from tests.support.browser import DESKTOP, horizontal_overflow, log_in, screenshot

SEND = "generation.publishing.app.send_task"  # no worker here: the job stays queued
PASSWORD = "correct-horse-battery"


def jsonl_file(name: str, rows: list[object]) -> dict[str, object]:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    return {"name": name, "mimeType": "application/octet-stream", "buffer": text.encode()}


def prompts(n: int) -> list[dict[str, str]]:
    tasks = ("sentiment", "relevance")
    return [
        {"external_id": f"p{i}", "task": tasks[i % 2], "text": f"Is review {i} positive?"} for i in range(n)
    ]


def answers(n: int) -> list[dict[str, str]]:
    return [{**row, "pretrained": f"plain answer {i}", "finetuned": f"tuned answer {i}"}
            for i, row in enumerate(prompts(n))]  # fmt: skip


def finish_here(job: GenerationJob) -> None:
    """What a worker writes when it has answered the job's one chunk: the answers, then both rows done."""
    now = timezone.now()
    chunk = job.chunks.get()
    for prompt in Prompt.objects.filter(pk__in=chunk.prompt_ids):
        for role in (Role.PRETRAINED, Role.FINETUNED):
            Answer.objects.create(job=job, prompt=prompt, role=role, text=f"{role} says hi", output_tokens=3)
    GenerationChunk.objects.filter(pk=chunk.pk).update(
        status=JobStatus.SUCCEEDED, started_at=now, finished_at=now
    )
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, started_at=now, finished_at=now
    )


def watch(page) -> list[str]:
    """Script errors and CSP refusals the page reports (a missing favicon is no fault)."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda msg: (
            problems.append(msg.text)
            if msg.type == "error" and "favicon" not in msg.text and "Failed to load resource" not in msg.text
            else None
        ),
    )
    return problems


def upload(page, *, kind: str, name: str, file: dict[str, object]) -> None:
    page.check(f"input[name=kind][value={kind}]")
    page.set_input_files("#id_file", file)
    page.fill("#id_name", name)
    with page.expect_navigation():
        page.click("form.admin-form button[type=submit]:text('Upload')")


def open_campaign(page, base: str, *, shots: str) -> None:
    """From the answers upload to a campaign's page, as the admin clicks through it."""
    page.goto(f"{base}/datasets/upload/")
    upload(page, kind="answers", name="bring-your-own", file=jsonl_file("answers.jsonl", answers(4)))
    assert "Imported 4 prompts with both answers" in page.inner_text("main")
    assert page.inner_text("[data-field=status]") == "succeeded"
    assert "ETA" not in page.inner_text(".job-progress")
    with page.expect_navigation():
        page.click("text=Open a campaign on this job")
    # one question per task of the job, prefilled with the built-in wording
    assert page.input_value("#id_question_sentiment") == "Is the sentiment stated correctly?"
    page.fill("#id_name", "Browser round")
    page.fill("#id_overlap", "1")
    page.fill("#id_guidelines", "# Rate fairly\n\nPrefer the **shorter** answer when equal.")
    preview = page.locator("#guidelines-preview")
    preview.locator("strong").filter(has_text="shorter").wait_for()
    assert preview.locator("h3").inner_text() == "Rate fairly"
    page.check("#id_allow_not_sure")
    assert horizontal_overflow(page) == 0
    screenshot(page, f"admin-campaign-new{shots}")
    with page.expect_navigation():
        page.click("#open-campaign")
    campaign = Campaign.objects.get(name="Browser round")
    assert page.url.endswith(f"/campaigns/{campaign.pk}/report/")
    assert 'Campaign "Browser round" opened: 4 pairs (0 gold), overlap 1.' in page.inner_text("main")
    assert (campaign.overlap, campaign.allow_not_sure) == (1, True)
    assert horizontal_overflow(page) == 0
    screenshot(page, f"admin-campaign-opened{shots}")


@pytest.mark.django_db(transaction=True)
def test_an_admin_uploads_queues_and_opens_a_campaign_at_1366(live_server, browser_page):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    problems = watch(page)
    User.objects.create_user(username="ada", password=PASSWORD, role="admin")
    base = live_server.url
    log_in(page, base, "ada", PASSWORD)

    # the nav leads to the upload page; a bad file is refused by line and field, nothing saved
    with page.expect_navigation():
        page.click("nav >> text=Upload")
    bad = prompts(3)
    del bad[1]["task"]
    upload(page, kind="prompts", name="shop", file=jsonl_file("bad.jsonl", bad))
    errors = page.locator("#upload-errors")
    assert errors.is_visible()
    assert 'bad.jsonl line 2: field "task": required' in errors.inner_text()
    assert "Nothing was imported." in errors.inner_text()
    assert not Dataset.objects.exists() and not Prompt.objects.exists()
    assert horizontal_overflow(page) == 0
    screenshot(page, "admin-upload-error")

    # a good file lands on the queue form with its dataset chosen
    upload(page, kind="prompts", name="shop", file=jsonl_file("eval.jsonl", prompts(5)))
    assert 'Imported 5 prompts into dataset "shop".' in page.inner_text("main")
    assert page.url.endswith("/jobs/new/?dataset=shop")
    assert page.locator("#id_dataset option:checked").inner_text() == "shop"

    # queue it with the picker, a prompt limit and a setting; no worker runs, so it stays queued
    page.select_option("#id_model", label="smollm2-demo")
    page.fill("#id_prompt_limit", "2")
    page.fill("#id_max_new_tokens", "16")
    assert horizontal_overflow(page) == 0
    screenshot(page, "admin-queue")
    with mock.patch(SEND), page.expect_navigation():
        page.click("text=Queue job")
    job = GenerationJob.objects.get()
    assert page.url.endswith(f"/jobs/{job.pk}/")
    assert (job.status, job.total, job.settings["prompt_limit"]) == (JobStatus.QUEUED, 4, 2)
    assert page.inner_text("[data-field=status]") == "queued"
    assert page.inner_text("#chunk-summary") == "Chunks: 1 queued"
    table = page.locator(".settings-table")
    assert table.locator("tr", has_text="Prompts answered").locator("td").inner_text() == "the first 2"
    assert table.locator("tr", has_text="Max new tokens").locator("td").inner_text() == "16"
    assert "{" not in table.inner_text()
    assert horizontal_overflow(page) == 0
    screenshot(page, "admin-job-queued")

    # a worker answers it: the open page follows, its status and chunk table changing together
    from playwright.sync_api import expect  # here, as tests/support/browser.py does: browser tests only

    finish_here(job)
    expect(page.locator("[data-field=status]")).to_have_text("succeeded", timeout=15_000)
    expect(page.locator("td[data-chunk-status]")).to_have_text("succeeded")
    expect(page.locator("#chunk-summary")).to_have_text("Chunks: 1 succeeded")
    assert "ETA" not in page.inner_text(".job-progress")
    assert page.locator("text=Open a campaign on this job").is_visible()

    # the job list finds it by its dataset and status
    page.goto(f"{base}/jobs/")
    page.fill("#filter-dataset", "sho")
    page.select_option("#filter-status", "succeeded")
    with page.expect_navigation():
        page.click(".filters button[type=submit]")
    assert page.locator(".job-table tbody tr").count() == 1
    assert "shop / smollm2-demo" in page.inner_text(".job-table")
    page.select_option("#filter-status", "failed")
    with page.expect_navigation():
        page.click(".filters button[type=submit]")
    assert "No job matches these filters." in page.inner_text("main")

    open_campaign(page, base, shots="")
    assert problems == []


@pytest.mark.django_db(transaction=True)
def test_an_admin_does_the_same_on_a_phone(live_server, phone_page):
    page = phone_page
    problems = watch(page)
    User.objects.create_user(username="ada", password=PASSWORD, role="admin")
    base = live_server.url
    log_in(page, base, "ada", PASSWORD)
    for path in ("/datasets/upload/", "/jobs/new/", "/jobs/", "/runs/"):
        page.goto(base + path)
        assert horizontal_overflow(page) == 0, path
    page.goto(f"{base}/datasets/upload/")
    upload(page, kind="prompts", name="shop", file=jsonl_file("bad.jsonl", ["{oops"]))
    assert "bad.jsonl line 1: invalid JSON" in page.inner_text("#upload-errors")
    assert horizontal_overflow(page) == 0
    screenshot(page, "admin-upload-error-phone")
    open_campaign(page, base, shots="-phone")
    page.goto(f"{base}/jobs/{GenerationJob.objects.get().pk}/")
    assert horizontal_overflow(page) == 0
    screenshot(page, "admin-job-phone")
    assert problems == []
