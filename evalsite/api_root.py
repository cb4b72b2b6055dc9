"""`GET /api/`: the API endpoints the signed-in user may use, by name, as absolute URLs.

Each role sees only its own: annotators the campaign list and the rating endpoints, researchers the
lists, reports and exports, admins also the jobs. URLs with an id hold the placeholder `{id}`.
Sign-in (session or token) is required, as everywhere in the API.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .access import can_read_reports, is_admin, is_annotator

_ID = 987654321  # reversed in place of an id, then written as {id}

# (name in the answer, URL name, takes an id); shown to the roles below
EVERYONE = [
    ("schema", "schema", False),
    ("docs", "api-docs", False),
    ("campaigns", "api-campaign-list", False),
]
ANNOTATORS = [
    ("campaign_next", "api-campaign-next", True),
    ("assignment_rating", "api-assignment-rating", True),
    ("assignment_skip", "api-assignment-skip", True),
]
READERS = [
    ("campaign_report", "api-campaign-report", True),
    ("campaign_report_json", "api-campaign-report-download", True),
    ("campaign_export_csv", "api-campaign-export-csv", True),
    ("campaign_export_jsonl", "api-campaign-export-jsonl", True),
    ("campaign_export_parquet", "api-campaign-export-parquet", True),
    ("datasets", "api-dataset-list", False),
    ("finetune_runs", "api-run-list", False),
    ("finetune_run", "api-run-detail", True),
]
ADMINS = [
    ("jobs", "api-job-list", False),
    ("job", "api-job-detail", True),
    ("job_cancel", "api-job-cancel", True),
]
# the URL keyword each id-taking route names its id with
_ID_KWARGS = {
    "api-campaign-next": "campaign_id",
    "api-assignment-rating": "assignment_id",
    "api-assignment-skip": "assignment_id",
}


def _url(request: Request, url_name: str, takes_id: bool) -> str:
    kwargs = {_ID_KWARGS.get(url_name, "pk"): _ID} if takes_id else None
    return request.build_absolute_uri(reverse(url_name, kwargs=kwargs)).replace(str(_ID), "{id}")


class ApiRootView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="api_root",
        responses={200: OpenApiTypes.OBJECT},
        examples=[
            OpenApiExample(
                "an annotator",
                value={
                    "role": "annotator",
                    "endpoints": {
                        "campaigns": "https://evalsite.example.org/api/campaigns/",
                        "campaign_next": "https://evalsite.example.org/api/campaigns/{id}/next/",
                    },
                },
            )
        ],
    )
    def get(self, request: Request) -> Response:
        """The endpoints this user may use: `{"role": ..., "endpoints": {name: URL}}`."""
        user = request.user
        routes = list(EVERYONE)
        if is_annotator(user):
            routes += ANNOTATORS
        if can_read_reports(user):
            routes += READERS
        if is_admin(user):
            routes += ADMINS
        endpoints = {name: _url(request, url_name, takes_id) for name, url_name, takes_id in routes}
        return Response({"role": getattr(user, "role", None), "endpoints": endpoints})
