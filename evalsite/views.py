"""The site's own pages: the start page (sends each role to its work) and the health check."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET

from evalsite.access import can_read_reports
from evalsite.celery import app


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if can_read_reports(request.user):
        return redirect("campaign-list")
    return redirect("annotate-home")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer; 503 naming the one that does not."""
    problems = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "database down" to a health check
        problems["database"] = type(exc).__name__
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        problems["broker"] = type(exc).__name__
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    return JsonResponse({"status": "ok"})
