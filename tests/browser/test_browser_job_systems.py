"""The job form in Chromium (issue 17): "also answer with the run's kept epochs" shows while a finished
fine-tuning run is picked, and queues a job whose page lists every system with its answers."""

from __future__ import annotations

from unittest import mock

import pytest

from annotations.models import User
from generation.models import FinetuneRun, GenerationJob, JobStatus, job_system_names
from tests.support.browser import DESKTOP, horizontal_overflow, log_in
from tests.support.generation_data import make_dataset

SEND = "generation.publishing.app.send_task"  # no worker here: the job stays queued
PASSWORD = "correct-horse-battery"


@pytest.mark.django_db(transaction=True)
def test_the_kept_epochs_box_follows_the_model_picked_and_queues_every_epoch(
    live_server, browser_page, tmp_path
):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    make_dataset(n=2)
    output = tmp_path / "run"
    for epoch in (2, 4):
        (output / f"epochs/epoch-{epoch:03d}").mkdir(parents=True)
    kept = [{"epoch": e, "val_loss": 1.0 + e / 10, "train_loss": 1.0, "folder": f"epochs/epoch-{e:03d}"}
            for e in (2, 4)]  # fmt: skip
    run = FinetuneRun.objects.create(
        base_model="org/model", output_dir=str(output), status=JobStatus.SUCCEEDED,
        metrics={"best_epoch": 3, "kept_epochs": kept},
    )  # fmt: skip
    User.objects.create_user(username="ada", password=PASSWORD, role="admin")
    log_in(page, live_server.url, "ada", PASSWORD)

    page.goto(f"{live_server.url}/jobs/new/")
    box = page.locator("#id_kept_epochs")
    assert not box.is_visible()  # no run picked: nothing to keep
    page.select_option("#id_model", f"run:{run.pk}")
    assert box.is_visible()
    page.check("#id_kept_epochs")
    assert horizontal_overflow(page) == 0
    with mock.patch(SEND), page.expect_navigation():
        page.click("form.admin-form button[type=submit]")

    job = GenerationJob.objects.get()
    assert page.url.endswith(f"/jobs/{job.pk}/")
    assert job_system_names(job) == ["pretrained", "finetuned", "epoch-002", "epoch-004"]
    rows = page.locator(".systems-table tbody tr")
    assert rows.count() == 4
    assert "epoch-004" in rows.nth(3).inner_text() and "1.4000" in rows.nth(3).inner_text()
    assert horizontal_overflow(page) == 0
    assert problems == []
