"""The /runs/ pages in `reports.runs`: who may read them, the loss chart geometry, and that reading a
page never writes (a run whose worker stopped beating is failed by the worker's reaper, not by a GET)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generation.models import Dataset, FinetuneRun, JobStatus
from reports.charts import run_loss_chart

pytestmark = pytest.mark.django_db

METRICS = {
    "mode": "lora",
    "epochs_run": 4,
    "best_epoch": 2,
    "best_val_loss": 1.4,
    "early_stopped": True,
    "train_loss": [3.0, 2.0, 1.5, 1.2],
    "val_loss": [2.5, 1.4, 1.6, 1.7],
    "trainable_params": 4_505_600,
    "total_params": 1_100_048_384,
    "trainable_pct": 0.4096,
    "peak_memory_bytes": 3 * 2**30,
    "peak_memory_kind": "process_peak_rss",
    "wall_seconds": 75.5,
}


def make_run(**fields) -> FinetuneRun:
    dataset, _ = Dataset.objects.get_or_create(name="runs-ds")
    values = {"dataset": dataset, "base_model": "tiny", "output_dir": "/tmp/run-out"}
    values.setdefault("status", JobStatus.QUEUED)
    values.update(fields)
    return FinetuneRun.objects.create(**values)


def test_run_pages_are_for_researchers_and_admins_only(client, annotator, researcher, admin_user):
    run = make_run(status=JobStatus.SUCCEEDED, metrics=METRICS)
    urls = ["/runs/", f"/runs/{run.pk}/"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    client.force_login(annotator)
    for url in urls:
        assert client.get(url).status_code == 403, url
    for user in (researcher, admin_user):
        client.force_login(user)
        assert [client.get(url).status_code for url in urls] == [200, 200]
    assert client.get("/runs/999999/").status_code == 404


def test_reading_a_stale_run_page_writes_nothing(client, researcher, settings):
    settings.FINETUNE_STALE_SECONDS = 60
    long_ago = timezone.now() - timedelta(hours=2)
    run = make_run(status=JobStatus.RUNNING, worker="host:1", started_at=long_ago, heartbeat_at=long_ago)
    client.force_login(researcher)
    before = FinetuneRun.objects.values().get(pk=run.pk)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/runs/").status_code == 200
        html = client.get(f"/runs/{run.pk}/").content.decode()
    sql = [q["sql"].lstrip().upper() for q in queries.captured_queries]
    writes = [s for s in sql if not s.startswith(("SELECT", "SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert writes == []
    assert FinetuneRun.objects.values().get(pk=run.pk) == before
    assert 'class="status running"' in html


def test_the_run_page_draws_the_loss_chart_and_loads_its_assets_from_reports_static(client, researcher):
    run = make_run(status=JobStatus.SUCCEEDED, metrics=METRICS)
    client.force_login(researcher)
    html = client.get(f"/runs/{run.pk}/").content.decode()
    lines = dict(re.findall(r'<polyline class="loss (\w+)" data-series="\w+" points="([^"]*)"', html))
    assert [len(lines[k].split()) for k in ("train", "val")] == [4, 4]
    assert html.count('<circle class="dot train"') == 4 and html.count('<circle class="dot val"') == 4
    assert '<link rel="stylesheet" href="/static/reports/runs.css">' in html
    assert re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S) == [
        (' src="/static/reports/run-progress.js" defer', "")
    ]
    assert "style=" not in html and "<style" not in html
    assert client.get("/static/reports/run-progress.js").status_code == 200
    listing = client.get("/runs/").content.decode()
    assert f'href="/runs/{run.pk}/"' in listing and "/static/reports/runs.css" in listing


def test_run_loss_chart_geometry():
    chart = run_loss_chart([3.0, 2.0, "x", 1.0], [2.5, 2.0], best_epoch=2)
    train, val = chart["lines"]
    assert [d["epoch"] for d in train["dots"]] == [1, 2, 4]  # a non-number is skipped, not drawn as 0
    assert [d["epoch"] for d in val["dots"]] == [1, 2]
    # x runs from the left edge (epoch 1) to the right edge (the last epoch); lower loss is drawn lower
    assert train["dots"][0]["x"] == chart["left"] and train["dots"][-1]["x"] == chart["right"]
    ys = [d["y"] for d in train["dots"]]
    assert ys == sorted(ys) and chart["top"] <= ys[0] and ys[-1] <= chart["bottom"]
    assert chart["best"]["epoch"] == 2 and train["dots"][1]["x"] == chart["best"]["x"]
    assert len(chart["y_ticks"]) == 5
    assert run_loss_chart([], []) is None
    lone = run_loss_chart([2.0], [None])
    assert len(lone["lines"][0]["dots"]) == 1 and lone["lines"][1]["dots"] == []
    assert run_loss_chart([1.0, 2.0], [], best_epoch=9)["best"] is None


def test_the_run_page_draws_the_loss_curves_and_the_figures(client, researcher):
    run = make_run(status=JobStatus.SUCCEEDED, metrics=METRICS)
    client.force_login(researcher)
    html = client.get(f"/runs/{run.pk}/").content.decode()
    lines = dict(re.findall(r'<polyline class="loss (\w+)" data-series="\w+" points="([^"]*)"', html))
    assert set(lines) == {"train", "val"}
    assert [len(lines[k].split()) for k in ("train", "val")] == [4, 4]
    train_y = [float(p.split(",")[1]) for p in lines["train"].split()]
    assert train_y == sorted(train_y)  # falling loss is drawn going down the page (y grows)
    for text in ("4505600 of 1100048384", "0.4096%", "3.00 GiB", "1:16", "stopped early", "best epoch (2)"):
        assert text in html, text
    assert "run-progress.js" in html
    assert "<script>" not in html and "style=" not in html and "<style" not in html
    assert f'data-api="/api/finetune-runs/{run.pk}/"' in html


def test_the_curves_grow_as_epochs_arrive(client, admin_user):
    metrics = {**METRICS, "train_loss": [3.0], "val_loss": [2.5], "epochs_run": 1, "best_epoch": 1}
    run = make_run(status=JobStatus.RUNNING, heartbeat_at=timezone.now(), metrics=metrics)
    client.force_login(admin_user)
    one = client.get(f"/runs/{run.pk}/").content.decode()
    assert one.count('<circle class="dot train"') == 1
    run.metrics.update(train_loss=[3.0, 2.0, 1.0], val_loss=[2.5, 2.0, 1.8], epochs_run=3)
    FinetuneRun.objects.filter(pk=run.pk).update(metrics=run.metrics)
    three = client.get(f"/runs/{run.pk}/").content.decode()
    assert three.count('<circle class="dot train"') == 3 and three.count('<circle class="dot val"') == 3
    assert client.get(f"/api/finetune-runs/{run.pk}/").json()["train_loss"] == [3.0, 2.0, 1.0]


def test_a_queued_run_page_says_the_curves_come_later_and_the_list_links_it(client, admin_user):
    run = make_run()
    client.force_login(admin_user)
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert "<polyline" not in html and "curves appear here" in html
    assert f'href="/runs/{run.pk}/"' in client.get("/runs/").content.decode()
    assert 'href="/runs/"' in client.get("/jobs/").content.decode()


def test_the_run_page_lists_kept_checkpoints_with_their_losses_and_folders(client, researcher):
    kept = [
        {"epoch": 1, "val_loss": 2.5, "train_loss": 3.0, "folder": "epochs/epoch-001"},
        {"epoch": 2, "val_loss": 1.4, "train_loss": 2.0, "folder": "epochs/epoch-002"},
    ]
    run = make_run(status=JobStatus.SUCCEEDED, metrics={**METRICS, "kept_epochs": kept})
    client.force_login(researcher)
    html = client.get(f"/runs/{run.pk}/").content.decode()
    section = html.split('id="checkpoints"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td>(\d+)(.*?)</td><td class=\"num\">([\d.]+)</td>", section)
    assert [(epoch, loss) for epoch, _, loss in rows] == [("1", "2.5000"), ("2", "1.4000")]
    assert "best" in rows[1][1] and "best" not in rows[0][1]  # epoch 2 is the run's best epoch
    assert "/tmp/run-out/epochs/epoch-001" in section
    plain = make_run(status=JobStatus.SUCCEEDED, metrics=METRICS)
    assert 'id="checkpoints"' not in client.get(f"/runs/{plain.pk}/").content.decode()
