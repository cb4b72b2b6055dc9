"""Researcher and admin pages: the campaign list, the live report, and the report/export API.

Annotators get 403 everywhere here: these pages name the roles, which would unblind them.
Every figure comes from `building.campaign_report`, so page, API and command cannot disagree.
"""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.models import Campaign
from evalsite.access import EXPORT_USERNAMES, READ_REPORTS, IsReportReader, role_required
from reports import charts, export_formats, overview
from reports.building import campaign_report
from reports.checkpoint_chart import checkpoint_chart
from reports.systems_page import win_matrix_rows

EXPORT_CONTENT_TYPES = export_formats.CONTENT_TYPES
# the page re-fetches itself this often (static/reports/report-refresh.js) so it follows new ratings
REFRESH_SECONDS = 15


def _campaign(pk: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("job", "job__finetune_run"), pk=pk)


# ------------------------------------------------------------------------------------------------
# HTML pages
# ------------------------------------------------------------------------------------------------


@role_required(READ_REPORTS)
def campaign_list(request: HttpRequest) -> HttpResponse:
    """`/campaigns/`: each campaign's headline difference with its 95% CI, coverage and status;
    `?sort=` any column (`-` for descending), `?status=open|closed`, `?page=`. A bad `?sort=` or
    `?status=` answers 400 with the page and the reason (reports/overview.py)."""
    error, status = "", 200
    try:
        sort_key, descending = overview.parse_sort(request.GET.get("sort"))
        status_filter = overview.parse_status(request.GET.get("status"))
    except overview.BadQuery as bad:
        error, status = str(bad), 400
        sort_key, descending = overview.parse_sort(None)
        status_filter = ""
    campaigns = Campaign.objects.all()
    if status_filter:
        campaigns = campaigns.filter(status=status_filter)
    rows = overview.sort_rows(overview.campaign_rows(campaigns), sort_key, descending)
    page = Paginator(rows, overview.PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "campaigns": page.object_list,
        "page_obj": page,
        "sort": ("-" if descending else "") + sort_key,
        "columns": overview.sort_links(sort_key, descending, status_filter),
        "sort_choices": overview.SORT_CHOICES,
        "status_filter": status_filter,
        "statuses": Campaign.Status.choices,
        "error": error,
        "any_campaign": Campaign.objects.exists(),
    }
    return render(request, "reports/campaign_list.html", context, status=status)


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
        "checkpoint_chart": checkpoint_chart(report),
        "win_rows": win_matrix_rows(report),
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


EXPORT_PARAMETERS = [
    OpenApiParameter(
        "texts", str, enum=["0", "1"], description="1: add prompt_text, prompt_context, answer_text"
    ),
    OpenApiParameter(
        "revisions", str, enum=["current", "all"], description="all: one row per kept version × answer"
    ),
    OpenApiParameter("with_usernames", str, enum=["0", "1"], description="1: real usernames (admins only)"),
]
_YES, _NO = {"1", "true", "yes"}, {"", "0", "false", "no"}


def _export_options(request: Request) -> dict[str, bool]:
    """`?texts=`, `?revisions=` and `?with_usernames=` as reports.exports.ExportOptions' fields; 400 for
    a value that is neither, 403 for usernames asked by a non-admin."""
    params = request.query_params
    texts = params.get("texts", "").lower()
    revisions = params.get("revisions", "current").lower()
    errors = {}
    if texts not in _YES | _NO:
        errors["texts"] = ["use 1 (with the texts) or 0"]
    if revisions not in {"current", "all"}:
        errors["revisions"] = ["use current or all"]
    if errors:
        raise ValidationError(errors)
    with_usernames = params.get("with_usernames") in _YES
    if with_usernames and not EXPORT_USERNAMES.allows(request.user):
        raise PermissionDenied(EXPORT_USERNAMES.message)
    return {
        "with_usernames": with_usernames,
        "with_texts": texts in _YES,
        "all_revisions": revisions == "all",
    }


class CampaignExportAPI(APIView):
    """`GET /api/campaigns/{id}/export.csv` / `export.jsonl` / `export.parquet`: streamed, one row per
    rating × answer; `?texts=1` adds the prompt and answer texts, `?revisions=all` gives every kept
    version of each rating instead of its current one.

    Raters are named by their pseudonym. `?with_usernames=1` names them by username, for admins only
    (evalsite.access.EXPORT_USERNAMES): a researcher asking for it gets 403, never the real names."""

    permission_classes = (IsReportReader,)
    fmt = "csv"

    @extend_schema(parameters=EXPORT_PARAMETERS, responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        campaign = _campaign(pk)
        options = _export_options(request)
        response = StreamingHttpResponse(
            export_formats.stream(campaign, fmt=self.fmt, **options),
            content_type=EXPORT_CONTENT_TYPES[self.fmt],
        )
        response["Content-Disposition"] = f'attachment; filename="campaign-{pk}-scores.{self.fmt}"'
        return response


class CampaignParquetExportAPI(CampaignExportAPI):
    """`GET /api/campaigns/{id}/export.parquet`: the same rows and options, typed (reports.parquet_export)."""

    fmt = "parquet"

    @extend_schema(
        parameters=EXPORT_PARAMETERS, responses={(200, "application/vnd.apache.parquet"): OpenApiTypes.BINARY}
    )
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        return super().get(request, pk)
