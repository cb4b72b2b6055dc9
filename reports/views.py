"""Researcher and admin pages: the campaign list, the live report, and the report/export API.

Annotators get 403 everywhere here: these pages name the roles, which would unblind them.
Every figure comes from `building.campaign_report`, so page, API and command cannot disagree.
"""

from __future__ import annotations

import json

from django.db.models import Count
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.models import Campaign
from evalsite.access import EXPORT_USERNAMES, READ_REPORTS, IsReportReader, role_required
from reports import charts, exports
from reports.building import campaign_report

EXPORT_CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
# the page re-fetches itself this often (static/reports/report-refresh.js) so it follows new ratings
REFRESH_SECONDS = 15


def _campaign(pk: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("job", "job__finetune_run"), pk=pk)


# ------------------------------------------------------------------------------------------------
# HTML pages
# ------------------------------------------------------------------------------------------------


@role_required(READ_REPORTS)
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = Campaign.objects.select_related("job").annotate(
        n_pairs=Count("pairs", distinct=True), n_ratings=Count("pairs__assignments__rating", distinct=True)
    )
    return render(request, "reports/campaign_list.html", {"campaigns": campaigns})


@role_required(READ_REPORTS)
def campaign_report_page(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign(pk)
    report = campaign_report(campaign)
    context = {
        "campaign": campaign,
        "report": report,
        "score_chart": charts.score_distribution_chart(report),
        "accuracy_chart": charts.accuracy_chart(report),
        "difference_chart": charts.difference_chart(report),
        "latency_chart": charts.latency_chart(report),
        "loss_chart": charts.report_loss_chart(report),
        "length_chart": charts.length_chart(report),
        "generated_at": timezone.now(),
        "refresh_seconds": REFRESH_SECONDS,
        "report_json": json.dumps(report, indent=2, ensure_ascii=False),
    }
    return render(request, "reports/campaign_report.html", context)


# ------------------------------------------------------------------------------------------------
# API
# ------------------------------------------------------------------------------------------------


class CampaignReportAPI(APIView):
    """`GET /api/campaigns/{id}/report/`: the report dict; `?download=1` (or `report.json`) as a file."""

    permission_classes = (IsReportReader,)
    download = False

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, pk: int) -> Response:
        report = campaign_report(_campaign(pk))
        response = Response(report)
        if self.download or request.query_params.get("download"):
            response["Content-Disposition"] = f'attachment; filename="campaign-{pk}-report.json"'
        return response


class CampaignExportAPI(APIView):
    """`GET /api/campaigns/{id}/export.csv` / `export.jsonl`: streamed, one row per rating × answer.

    Raters are named by their pseudonym. `?with_usernames=1` names them by username, for admins only
    (evalsite.access.EXPORT_USERNAMES): a researcher asking for it gets 403, never the real names."""

    permission_classes = (IsReportReader,)
    fmt = "csv"

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        campaign = _campaign(pk)
        with_usernames = request.query_params.get("with_usernames") in {"1", "true", "yes"}
        if with_usernames and not EXPORT_USERNAMES.allows(request.user):
            raise PermissionDenied(EXPORT_USERNAMES.message)
        response = StreamingHttpResponse(
            exports.stream(campaign, fmt=self.fmt, with_usernames=with_usernames),
            content_type=EXPORT_CONTENT_TYPES[self.fmt],
        )
        response["Content-Disposition"] = f'attachment; filename="campaign-{pk}-scores.{self.fmt}"'
        return response
