"""No GET request writes to the database, except where the HTTP contract says it does.

Every route the URL resolver knows (the site's and Django admin's) is requested with GET by an anonymous
visitor, an annotator, a researcher and an admin, with each id filled by real rows (an open and a
closed campaign, the job, a finished and a stale fine-tuning run, every assignment, the admin's objects)
and the SQL of each request captured. No INSERT, UPDATE or DELETE may run.

The exceptions are the two routes whose contract reserves an assignment for an annotator: the API's
`GET /api/campaigns/{id}/next/` and the rating page that serves the next pair. Even there only an
annotator's request may write, and only to the assignments table.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotations.assignment import assignment_next
from annotations.models import Assignment, Campaign, User
from annotations.rating import rating_submit
from generation.models import FinetuneRun, JobStatus
from tests.support.routes import route_kind, url_formats
from tests.support.annotation_data import VALID_RATING, make_campaign

pytestmark = pytest.mark.django_db

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
ASSIGNMENT_TABLE = Assignment._meta.db_table

# GET routes whose HTTP contract reserves an assignment: an annotator's request hands out the next pair
# (or renews the lock on the one they hold). Format strings as the URL resolver reverses them.
RESERVES_AN_ASSIGNMENT = {
    "api/campaigns/%(campaign_id)s/next/",  # GET /api/campaigns/{id}/next/
    "annotate/campaigns/%(campaign_id)s/",  # the rating page that serves the next pair
}


def _rate_next(campaign: Campaign, user: User) -> None:
    assignment = assignment_next(campaign=campaign, annotator=user)
    rating_submit(assignment=assignment, annotator=user, **VALID_RATING)


def _site_rows(annotator: User, other_annotator: User) -> dict[str, list[int]]:
    """Real rows for every kind of id a route takes: one rated and one open assignment per annotator in
    an open campaign, a closed campaign with a rating, a finished run and a running one whose worker
    stopped beating long ago (a page that reaps stale runs on GET would write)."""
    campaign = make_campaign(prompts=4, overlap=2)
    for user in (annotator, other_annotator):
        _rate_next(campaign, user)
        assignment_next(campaign=campaign, annotator=user)
    closed = make_campaign(prompts=2, overlap=1, dataset_name="closed-reviews")
    _rate_next(closed, annotator)
    Campaign.objects.filter(pk=closed.pk).update(status=Campaign.Status.CLOSED)
    long_ago = timezone.now() - timedelta(days=2)
    finished = FinetuneRun.objects.create(
        base_model="hub/tiny", output_dir="/tmp/run-done", status=JobStatus.SUCCEEDED
    )
    stale = FinetuneRun.objects.create(
        base_model="hub/tiny",
        output_dir="/tmp/run-stale",
        status=JobStatus.RUNNING,
        started_at=long_ago,
        heartbeat_at=long_ago,
    )
    return {
        "campaign": [campaign.pk, closed.pk],
        "job": [campaign.job_id, closed.job_id],
        "run": [finished.pk, stale.pk],
        "assignment": sorted(Assignment.objects.values_list("pk", flat=True)),
    }


def _admin_fills(fmt: str, params: list[str]) -> list[dict[str, str]]:
    """Admin routes: the model named in the path (or the annotations app's campaigns) and a real pk."""
    match = re.match(r"admin/(\w+)/(\w+)/", fmt)
    model = apps.get_model(*match.groups()) if match else Campaign
    pk = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
    values = {
        "app_label": "annotations",
        "model_name": "campaign",
        "content_type_id": str(ContentType.objects.get_for_model(model).pk),
        "object_id": str(pk),
    }
    return [{p: values.get(p, str(pk)) for p in params}]


def _fills(fmt: str, params: list[str], rows: dict[str, list[int]]) -> list[dict[str, str]]:
    if not params:
        return [{}]
    if fmt.startswith("admin/"):
        return _admin_fills(fmt, params)
    kind = route_kind(fmt, params)
    if kind is None:
        raise AssertionError(f"no rows to fill {fmt} {params}: add its kind to tests/support/routes.py")
    return [{p: str(pk) for p in params} for pk in rows[kind]]


def _allowed(fmt: str, role: str, sql: str) -> bool:
    """Only an annotator's request to a route that reserves an assignment may write, and only there."""
    return role == "annotator" and fmt in RESERVES_AN_ASSIGNMENT and f'"{ASSIGNMENT_TABLE}"' in sql


def test_no_get_request_writes_to_the_database(annotator, other_annotator, researcher, admin_user):
    admin_user.is_staff = admin_user.is_superuser = True  # as `create_user --role admin` makes them
    admin_user.save()
    rows = _site_rows(annotator, other_annotator)
    formats = url_formats()
    assert len(formats) > 20, formats
    violations: list[str] = []
    reached: dict[str, int] = {}
    reserved_writes = 0
    roles = [("anonymous", None), ("annotator", annotator), ("researcher", researcher), ("admin", admin_user)]
    for role, user in roles:
        client = Client()
        if user is not None:
            client.force_login(user)
        for fmt, params in formats:
            for values in _fills(fmt, params, rows):
                url = "/" + fmt % values
                with CaptureQueriesContext(connection) as queries:
                    response = client.get(url)
                where = f"{role} GET {url} → {response.status_code}"
                if response.status_code >= 500:
                    violations.append(f"server error: {where}")
                if 200 <= response.status_code < 300:
                    reached[role] = reached.get(role, 0) + 1
                for query in queries.captured_queries:
                    if not WRITE.match(query["sql"]):
                        continue
                    if _allowed(fmt, role, query["sql"]):
                        reserved_writes += 1
                    else:
                        violations.append(f"{where} wrote: {query['sql'][:200]}")
    # the capture is live: the annotator's next-pair requests did reserve (or renew) their assignment
    assert reserved_writes > 0
    # real pages, not a wall of 404s: the admin opens most routes, the others open some
    assert reached.get("admin", 0) > len(formats) // 2, reached
    assert reached.get("annotator", 0) > 0 and reached.get("researcher", 0) > 0, reached
    assert not violations, "\n".join(violations[:50])
