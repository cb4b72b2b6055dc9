"""Pages and filters for the API's list endpoints (`/api/campaigns/`, `/api/jobs/`,
`/api/finetune-runs/`, `/api/datasets/`).

A list answers a JSON array, as `/api/jobs/` and `/api/finetune-runs/` always have, so clients written
for them keep working; the page is chosen by `?page=` and `?page_size=` (default 50, capped at 200)
and described in headers: `X-Total-Count` (rows over every page) and `Link` (`rel="next"` /
`rel="prev"` URLs, the form `requests` reads as `response.links`). A malformed page, page size or
filter is a 400 naming the parameter; a page past the end is a 404.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def _given(request: Request) -> dict[str, str]:
    """The query parameters that have a value (the last one where a parameter is repeated)."""
    return {name: value for name, value in request.query_params.items() if value != ""}


class PageQuery(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, required=False)


class ListPagination(PageNumberPagination):
    """DRF's page-number pagination with the page in headers and the body a plain array."""

    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    last_page_strings = ()  # `?page=last` is not offered: a page is a number

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: APIView | None = None) -> list:
        checked = PageQuery(data=_given(request))
        checked.is_valid(raise_exception=True)
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data: Any) -> Response:
        response = Response(data)
        response["X-Total-Count"] = str(self.page.paginator.count)
        links = [
            f'<{url}>; rel="{rel}"'
            for rel, url in (("next", self.get_next_link()), ("prev", self.get_previous_link()))
            if url
        ]
        if links:
            response["Link"] = ", ".join(links)
        return response

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return schema

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"rows per page (default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE}); the answer's "
                    "X-Total-Count header gives the rows over all pages and Link the next and previous pages"
                )
        return parameters


PAGE_HEADERS = [
    OpenApiParameter(
        "X-Total-Count", int, OpenApiParameter.HEADER, response=True, description="rows over every page"
    ),
    OpenApiParameter(
        "Link", str, OpenApiParameter.HEADER, response=True, description='rel="next" and rel="prev" page URLs'
    ),
]


def query_filters(filters: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The list's filters read from the query string by `filters` (a serializer); 400 naming each bad
    one. Parameters it does not name (the page, for one) are left alone; an empty one (`?status=`, what
    a form's "any" choice sends) is no filter."""
    checked = filters(data=_given(request))
    if not checked.is_valid():
        raise ValidationError(checked.errors)
    return dict(checked.validated_data)
