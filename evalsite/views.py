"""The site's own pages: the start page (sends each role to its work), the health check and the
`/favicon.ico` every browser asks for (sent to the SVG icon in static/, so no page's request 404s)."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.http import require_GET, require_safe

from evalsite.access import can_read_reports
from evalsite.celery import app
from generation.workers import live_workers, worker_liveness_seconds


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if can_read_reports(request.user):
        return redirect("campaign-list")
    return redirect("annotate-home")


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """`/favicon.ico`: browsers ask for it whatever the page links; answer with the site's SVG icon."""
    return redirect(static("favicon.svg"), permanent=True)


def _dependency_problems() -> dict[str, str]:
    """The web node's own dependencies that do not answer, by name: `database`, `broker`."""
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
    return problems


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """`GET /healthz`: is this web node able to serve? 200 when the database and the broker answer;
    503 naming the one that does not. For a load balancer in front of the web nodes: annotators and
    researchers are served whether or not a generation worker runs, so no worker is not a reason to take
    a web node out.

    `GET /healthz?workers=1`: is the whole set working? The same, and also 503 while no generation
    worker is live (none has written its heartbeat within WORKER_LIVENESS_SECONDS; see
    generation/workers.py), with the count of live workers. For monitoring and alerts. Reads only."""
    want_workers = request.GET.get("workers", "0")
    if want_workers not in {"0", "1"}:
        return JsonResponse({"detail": "workers must be 1 (also check the workers) or 0"}, status=400)
    problems = _dependency_problems()
    body: dict[str, object] = {}
    if want_workers == "1":
        body.update(database="unavailable" if "database" in problems else "ok")
        body.update(broker="unavailable" if "broker" in problems else "ok")
        limit = worker_liveness_seconds()
        live = None if "database" in problems else live_workers().count()
        body["workers"] = {"live": live, "liveness_seconds": limit}
        if live == 0:
            problems["workers"] = f"no live worker: none has written its heartbeat in the last {limit:g} s"
    if problems:
        return JsonResponse({"status": "unavailable", **body, "problems": problems}, status=503)
    return JsonResponse({"status": "ok", **body})
