"""API lists (issue 16): `/api/campaigns/`, `/api/jobs/`, `/api/finetune-runs/`, `/api/datasets/` with
pages and filters, the API root `/api/`, and all of them in the OpenAPI schema. Each list: its pages
(headers), each filter, a bad value answered 400 (a page past the end 404), and who may read it."""

from __future__ import annotations

import pytest

from annotations.models import Assignment, Campaign
from generation.models import Dataset, FinetuneRun, GenerationJob, Prompt
from tests.support.annotation_data import SECRET_STRINGS, make_campaign

pytestmark = pytest.mark.django_db


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()]


@pytest.fixture
def jobs(db):
    shop, books = Dataset.objects.create(name="shop"), Dataset.objects.create(name="books")
    return [
        GenerationJob.objects.create(name="a", dataset=shop, status="succeeded"),
        GenerationJob.objects.create(name="b", dataset=shop, status="failed"),
        GenerationJob.objects.create(name="c", dataset=books, status="succeeded"),
    ]


# ---- /api/jobs/ ----------------------------------------------------------------------------------------


def test_jobs_come_a_page_at_a_time_newest_first(client, admin_user, jobs):
    client.force_login(admin_user)
    first = client.get("/api/jobs/?page_size=2")
    assert _ids(first) == [jobs[2].pk, jobs[1].pk]
    assert first["X-Total-Count"] == "3"
    assert 'rel="next"' in first["Link"] and "page=2" in first["Link"] and 'rel="prev"' not in first["Link"]
    second = client.get("/api/jobs/?page_size=2&page=2")
    assert _ids(second) == [jobs[0].pk]
    assert 'rel="prev"' in second["Link"] and 'rel="next"' not in second["Link"]
    whole = client.get("/api/jobs/")  # no page asked for: the first 50, as before lists were paged
    assert _ids(whole) == [j.pk for j in reversed(jobs)] and "Link" not in whole
    assert client.get("/api/jobs/?page=3&page_size=2").status_code == 404


def test_jobs_filter_by_status_and_dataset(client, admin_user, jobs):
    client.force_login(admin_user)
    assert _ids(client.get("/api/jobs/?status=failed")) == [jobs[1].pk]
    assert _ids(client.get("/api/jobs/?dataset=shop&status=succeeded")) == [jobs[0].pk]
    books = jobs[2].dataset_id
    assert _ids(client.get(f"/api/jobs/?dataset={books}")) == [jobs[2].pk]  # by id
    assert _ids(client.get("/api/jobs/?dataset=nothing-called-this")) == []
    assert client.get("/api/jobs/?status=failed&page_size=1")["X-Total-Count"] == "1"
    assert _ids(client.get("/api/jobs/?status=&dataset=&page=")) == [
        j.pk for j in reversed(jobs)
    ]  # blank: no filter


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=finished", "status"), ("page=abc", "page"), ("page=0", "page"), ("page_size=-5", "page_size")],
)
def test_jobs_bad_query_values_are_a_400_naming_them(client, admin_user, jobs, query, field):
    client.force_login(admin_user)
    response = client.get(f"/api/jobs/?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_jobs_list_is_for_admins_only(client, annotator, researcher, jobs):
    assert client.get("/api/jobs/").status_code in (401, 403)
    for user in (annotator, researcher):
        client.force_login(user)
        assert client.get("/api/jobs/").status_code == 403


# ---- /api/finetune-runs/ -------------------------------------------------------------------------------


def test_runs_list_pages_and_filters_for_researchers(client, researcher, annotator, jobs):
    shop, books = jobs[0].dataset, jobs[2].dataset
    runs = [
        FinetuneRun.objects.create(dataset=shop, base_model="m", output_dir="/o/1", status="succeeded"),
        FinetuneRun.objects.create(
            dataset=shop, base_model="m", output_dir="/o/2", status="failed", mode="full"
        ),
        FinetuneRun.objects.create(dataset=books, base_model="m", output_dir="/o/3", status="succeeded"),
    ]
    client.force_login(researcher)
    page = client.get("/api/finetune-runs/?page_size=1&page=2")
    assert _ids(page) == [runs[1].pk] and page["X-Total-Count"] == "3"
    assert _ids(client.get("/api/finetune-runs/?status=succeeded")) == [runs[2].pk, runs[0].pk]
    assert _ids(client.get("/api/finetune-runs/?dataset=shop")) == [runs[1].pk, runs[0].pk]
    assert _ids(client.get(f"/api/finetune-runs/?dataset={books.pk}")) == [runs[2].pk]
    assert _ids(client.get("/api/finetune-runs/?mode=full")) == [runs[1].pk]
    bad = client.get("/api/finetune-runs/?mode=partial&status=done")
    assert bad.status_code == 400 and set(bad.json()) == {"mode", "status"}
    client.force_login(annotator)
    assert client.get("/api/finetune-runs/").status_code == 403


# ---- /api/datasets/ ------------------------------------------------------------------------------------


def test_datasets_list_counts_prompts_and_names_tasks(client, researcher, admin_user, annotator, jobs):
    shop = jobs[0].dataset
    for i, task in enumerate(["sentiment", "relevance", "sentiment"]):
        Prompt.objects.create(dataset=shop, external_id=f"s{i}", task=task, text="t")
    client.force_login(researcher)
    rows = {row["name"]: row for row in client.get("/api/datasets/").json()}
    assert rows["shop"]["prompts"] == 3 and rows["shop"]["tasks"] == ["relevance", "sentiment"]
    assert rows["books"]["prompts"] == 0 and rows["books"]["tasks"] == []
    assert set(rows["shop"]) == {"id", "name", "description", "prompts", "tasks", "created_at"}
    assert _ids(client.get("/api/datasets/?task=relevance")) == [shop.pk]
    assert _ids(client.get("/api/datasets/?task=features")) == []
    assert client.get("/api/datasets/?task=not a slug").status_code == 400
    client.force_login(admin_user)
    assert client.get("/api/datasets/").status_code == 200
    client.force_login(annotator)
    assert client.get("/api/datasets/").status_code == 403


def test_page_size_is_capped_at_200(client, researcher):
    Dataset.objects.bulk_create([Dataset(name=f"d{i}") for i in range(205)])
    client.force_login(researcher)
    response = client.get("/api/datasets/?page_size=500")
    assert len(response.json()) == 200 and response["X-Total-Count"] == "205"
    assert "page_size=500" in response["Link"]  # the next page keeps the size asked for (and capped)
    assert len(client.get("/api/datasets/?page_size=500&page=2").json()) == 5


# ---- /api/campaigns/ -----------------------------------------------------------------------------------


@pytest.fixture
def campaigns(annotator):
    """An open campaign, a closed one this annotator rated in, and a closed one they never saw."""
    open_one = make_campaign(prompts=2, dataset_name="open-ds")
    rated = make_campaign(prompts=2, dataset_name="rated-ds")
    unseen = make_campaign(prompts=2, dataset_name="unseen-ds")
    Assignment.objects.create(pair=rated.pairs.first(), annotator=annotator, finetuned_side="left")
    Campaign.objects.filter(pk__in=[rated.pk, unseen.pk]).update(status=Campaign.Status.CLOSED)
    return open_one, rated, unseen


def test_researchers_list_every_campaign_with_its_job_and_filters(client, researcher, campaigns):
    open_one, rated, unseen = campaigns
    client.force_login(researcher)
    rows = client.get("/api/campaigns/").json()
    assert [row["id"] for row in rows] == [unseen.pk, rated.pk, open_one.pk]
    first = rows[-1]
    assert first["job"] == open_one.job_id and first["job_name"] == SECRET_STRINGS["job_name"]
    assert (first["pairs"], first["ratings"], first["status"]) == (2, 0, "open")
    assert _ids(client.get("/api/campaigns/?status=closed")) == [unseen.pk, rated.pk]
    assert _ids(client.get(f"/api/campaigns/?job={rated.job_id}")) == [rated.pk]
    paged = client.get("/api/campaigns/?page_size=2&page=2")
    assert _ids(paged) == [open_one.pk] and paged["X-Total-Count"] == "3"
    assert set(client.get("/api/campaigns/?job=abc&status=gone").json()) == {"job", "status"}


def test_annotators_list_only_their_campaigns_without_job_details(
    client, annotator, other_annotator, campaigns
):
    open_one, rated, _unseen = campaigns
    client.force_login(annotator)
    response = client.get("/api/campaigns/")
    rows = response.json()
    assert [row["id"] for row in rows] == [rated.pk, open_one.pk]
    assert all(set(row) == {"id", "name", "status", "done", "total"} for row in rows)
    assert rows[1]["done"] == 0 and rows[1]["total"] == 2
    body = response.content.decode()
    for secret in SECRET_STRINGS.values():
        assert secret not in body
    assert "job" not in body and "finetuned" not in body and "pretrained" not in body
    assert _ids(client.get("/api/campaigns/?status=closed")) == [rated.pk]
    refused = client.get(f"/api/campaigns/?job={open_one.job_id}")
    assert refused.status_code == 400 and "job" in refused.json()
    client.force_login(other_annotator)  # rated in no closed campaign: sees only the open one
    assert _ids(client.get("/api/campaigns/")) == [open_one.pk]
    client.logout()
    assert client.get("/api/campaigns/").status_code in (401, 403)


# ---- the API root and the schema -----------------------------------------------------------------------


def test_api_root_lists_what_each_role_may_use(client, annotator, researcher, admin_user, campaigns):
    assert client.get("/api/").status_code in (401, 403)
    seen = {}
    for user in (annotator, researcher, admin_user):
        client.force_login(user)
        response = client.get("/api/")
        assert response.status_code == 200
        seen[user.role] = response.json()["endpoints"]
        assert response.json()["role"] == user.role
        for name, url in seen[user.role].items():
            if "{id}" not in url and name not in ("docs",):
                assert client.get(url).status_code == 200, (user.role, name, url)
    assert seen["annotator"]["campaign_next"] == "http://testserver/api/campaigns/{id}/next/"
    assert not {"jobs", "datasets", "campaign_export_csv", "campaign_report"} & set(seen["annotator"])
    assert (
        seen["researcher"]["campaign_export_parquet"] == "http://testserver/api/campaigns/{id}/export.parquet"
    )
    assert "datasets" in seen["researcher"] and "jobs" not in seen["researcher"]
    assert "campaign_next" not in seen["researcher"]
    assert set(seen["researcher"]) < set(seen["admin"]) and "jobs" in seen["admin"]


def test_schema_has_the_lists_with_their_parameters(client, researcher):
    client.force_login(researcher)
    schema = client.get("/api/schema/?format=json", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    for path in ("/api/", "/api/campaigns/", "/api/datasets/", "/api/campaigns/{id}/export.parquet"):
        assert "get" in paths[path], path
    for path, filters in {
        "/api/campaigns/": {"status", "job"},
        "/api/jobs/": {"status", "dataset"},
        "/api/finetune-runs/": {"status", "dataset", "mode"},
        "/api/datasets/": {"task"},
    }.items():
        names = {p["name"] for p in paths[path]["get"]["parameters"]}
        assert filters | {"page", "page_size"} <= names, path
        assert "X-Total-Count" in paths[path]["get"]["responses"]["200"]["headers"]
    export = {p["name"] for p in paths["/api/campaigns/{id}/export.csv"]["get"]["parameters"]}
    assert {"texts", "revisions", "with_usernames"} <= export
