"""Role × endpoint × method matrix over every URL pattern the resolver knows.

Every route (the site's and Django admin's) is requested with GET and POST by an anonymous visitor,
an annotator, another annotator, a researcher and an admin, with each `<int:…>` filled by real ids of
objects someone else owns and by ids guessed around them. Rules:

* no 500 anywhere;
* anonymous visitors reach nothing but the login pages, the health check, the API schema and the favicon;
* annotators never reach reports, exports, jobs, fine-tuning runs or the admin (no 2xx; a redirect
  only to a login page);
* researchers cannot queue or cancel jobs or runs (POST → 403; nothing created or changed);
* nobody reads or changes another annotator's assignment or rating: every assignment URL with an id
  that is not the caller's answers 404 (403 / login redirect for non-annotators), and the ratings and
  assignments in the database are unchanged afterwards.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from annotations.assignment import assignment_next
from annotations.models import Assignment, Rating
from annotations.rating import rating_submit
from generation.models import FinetuneRun, GenerationJob
from tests.support.annotation_data import VALID_RATING, make_campaign
from tests.support.figures import figure
from tests.support.routes import route_kind, url_formats

pytestmark = [pytest.mark.django_db, pytest.mark.reliability]

PUBLIC = {"login/", "healthz", "api/schema/", "admin/login/", "favicon.ico"}  # /api/docs/ is behind login (issue 15)
ANNOTATOR_FORBIDDEN = (
    "campaigns/",
    "api/campaigns/%(pk)s/",
    "api/jobs/",
    "jobs/",
    "api/finetune-runs/",
    "runs/",
    "admin/",
    "api/datasets/",
    "datasets/",
)
QUEUE_ROUTES = {
    "api/jobs/",
    "api/jobs/%(pk)s/cancel/",
    "jobs/",
    "jobs/%(pk)s/cancel/",
    "api/finetune-runs/",
}


def _admin_user(admin_user):
    # what `create_user --role admin` makes: staff and superuser, so Django admin is open to it
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    return admin_user


def _snapshot() -> tuple[list, list, list, list]:
    ratings = list(Rating.objects.order_by("pk").values())
    assignments = list(
        Assignment.objects.order_by("pk").values(
            "pk", "pair_id", "annotator_id", "finetuned_side", "completed_at", "skipped_at"
        )
    )
    jobs = list(GenerationJob.objects.order_by("pk").values("pk", "status"))
    runs = list(FinetuneRun.objects.order_by("pk").values("pk", "status"))
    return ratings, assignments, jobs, runs


def test_role_endpoint_method_matrix(annotator, other_annotator, researcher, admin_user):
    admin = _admin_user(admin_user)
    campaign = make_campaign(prompts=4, overlap=2)
    # each annotator rates one pair and holds one open assignment
    for user in (annotator, other_annotator):
        rated = assignment_next(campaign=campaign, annotator=user)
        rating_submit(
            assignment=rated,
            annotator=user,
            **{k: v for k, v in VALID_RATING.items()},
        )
        assignment_next(campaign=campaign, annotator=user)
    job = campaign.job
    run = FinetuneRun.objects.create(base_model="hub/tiny", output_dir="/tmp/run-x", status="succeeded")
    assignment_ids = list(Assignment.objects.values_list("pk", flat=True))
    guesses = sorted({i + d for i in assignment_ids for d in (-1, 1)} - set(assignment_ids) - {0, -1})
    ids = {
        "campaign": [campaign.pk, campaign.pk + 1],
        "job": [job.pk, job.pk + 1],
        "run": [run.pk, run.pk + 1],
        "other": [campaign.pk],
    }

    def fills(fmt: str, params: list[str], user) -> list[dict[str, str]]:
        if not params:
            return [{}]
        kind = route_kind(fmt, params) or "other"
        if kind == "assignment":
            mine = set(Assignment.objects.filter(annotator=user).values_list("pk", flat=True)) if user else set()
            values = [i for i in assignment_ids if i not in mine] + guesses
            return [{params[0]: str(v)} for v in values]
        out = []
        for v in ids[kind]:
            values = {}
            for p in params:
                if p == "app_label":
                    values[p] = "annotations"
                elif p == "model_name":
                    values[p] = "rating"
                else:
                    values[p] = str(v)
            out.append(values)
        return out

    formats = url_formats()
    assert len(formats) > 20, formats
    checked = 0
    reached: dict[str, int] = {}
    violations: list[str] = []
    before = _snapshot()
    users = [("anonymous", None), ("annotator", annotator), ("other_annotator", other_annotator),
             ("researcher", researcher), ("admin", admin)]
    for label, user in users:
        client = Client()
        if user is not None:
            client.force_login(user)
        for fmt, params in formats:
            for values in fills(fmt, params, user):
                try:
                    url = "/" + (fmt % values)
                except (KeyError, TypeError, ValueError):
                    violations.append(f"cannot fill {fmt} {params}")
                    continue
                for method in ("GET", "POST"):
                    if user is not None and label != "admin" and "assignment_id" in params:
                        owner = Assignment.objects.filter(pk=int(values["assignment_id"])).values_list(
                            "annotator_id", flat=True
                        ).first()
                        if owner == user.pk:  # became the caller's own during the run (next/ made it)
                            continue
                    if method == "GET":
                        response = client.get(url)
                    else:
                        response = client.post(url, VALID_RATING)
                    checked += 1
                    code = response.status_code
                    if 200 <= code < 300:
                        reached[label] = reached.get(label, 0) + 1
                    where = f"{label} {method} {url} → {code}"
                    location = response.get("Location", "")
                    if code >= 500:
                        violations.append(f"server error: {where}")
                    if user is None and fmt not in PUBLIC and "logout" not in fmt:
                        if 200 <= code < 300 or (code in (301, 302) and "login" not in location):
                            violations.append(f"anonymous reached: {where} {location}")
                    if label in ("annotator", "other_annotator") and fmt.startswith(ANNOTATOR_FORBIDDEN):
                        if fmt not in PUBLIC and "logout" not in fmt:
                            if 200 <= code < 300 or (code in (301, 302) and "login" not in location):
                                violations.append(f"annotator reached: {where} {location}")
                    if label == "researcher" and method == "POST" and fmt in QUEUE_ROUTES and code != 403:
                        violations.append(f"researcher could queue/cancel: {where}")
                    if "assignment_id" in params and user is not None:
                        expected = {404} if label in ("annotator", "other_annotator") else {403, 302}
                        if method == "GET":  # the skip and rating endpoints are POST only
                            expected = expected | {405}
                        if code not in expected:
                            violations.append(f"someone else's assignment: {where} (expected {expected})")
                    if "logout" in fmt and user is not None:
                        client.force_login(user)
        if label != "admin":
            after = _snapshot()
            if after[0] != before[0]:
                violations.append(f"ratings changed after {label}")
            old = {a["pk"]: a for a in before[1]}
            for row in after[1]:
                if row["pk"] in old and row != old[row["pk"]]:
                    violations.append(f"assignment {row['pk']} changed after {label}")
            if after[2:] != before[2:]:
                violations.append(f"jobs or runs changed after {label}")
    figure(
        "security-matrix",
        urls=len(formats),
        roles=len(users),
        checked=checked,
        violations=len(violations),
        **{f"ok_{label}": reached.get(label, 0) for label, _ in users},
    )
    # the matrix must hit real pages, not a wall of 404s: the admin opens most of them
    assert reached.get("admin", 0) > len(formats) // 2, reached
    assert not violations, "\n".join(violations[:50])


def test_every_url_pattern_is_covered():
    """A new route with a parameter the matrix cannot fill shows up here, not as a silent skip."""
    for fmt, params in url_formats():
        for p in params:
            assert re.fullmatch(r"pk|campaign_id|assignment_id|object_id|app_label|content_type_id|"
                                r"model_name|url|path|id", p), (fmt, p)
