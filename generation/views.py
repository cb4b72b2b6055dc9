"""Generation jobs over HTTP: the admin API (`/api/jobs/`) and server-rendered admin pages (`/jobs/`);
fine-tuning runs: `/api/finetune-runs/` and the `/runs/` pages (researchers read, admins queue).

Everything here is for the evalsite admin role only: jobs name models and adapter paths, which
annotators must never see. No ML code is imported here."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Dataset, FinetuneRun, GenerationJob, JobStatus
from .selectors import job_progress
from .serializers import FinetuneRunCreateInput, FinetuneRunOutput, JobCreateInput, JobOutput
from .services import (
    DEFAULT_SETTINGS,
    FINETUNE_OPTION_FIELDS,
    JobInputError,
    dataset_get,
    finetune_config_build,
    finetune_run_create,
    finetune_run_queue,
    finetune_runs_fail_stale,
    job_cancel,
    job_create,
    job_queue,
)


class IsEvalsiteAdmin(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "is_evalsite_admin", False))


def _queued_status(queued: Any) -> int:
    """201 for a queued job or run; 503 when queueing failed because the broker did not answer (the
    row is failed and its error says so), so clients can tell "try later" from "bad request"."""
    if queued.status == JobStatus.FAILED and queued.error.startswith("broker unreachable"):
        return status.HTTP_503_SERVICE_UNAVAILABLE
    return status.HTTP_201_CREATED


def _jobs() -> Any:
    return GenerationJob.objects.select_related("dataset", "pretrained_model", "finetuned_model")


def queue_job(*, user: Any, data: dict[str, Any]) -> GenerationJob:
    """Create and queue a job from validated input; raises JobInputError. Re-reads the job after the
    commit so a broker failure during queueing shows in its status."""
    with transaction.atomic():
        job = job_create(
            dataset=dataset_get(data["dataset"]),
            base_model=data["base_model"],
            gguf_file=data.get("gguf_file", ""),
            adapter_path=data.get("adapter_path", ""),
            finetune_run_id=data.get("finetune_run"),
            max_new_tokens=data.get("max_new_tokens", 64),
            batch_size=data.get("batch_size", DEFAULT_SETTINGS["batch_size"]),
            seed=data.get("seed", 0),
            name=data.get("name", ""),
            created_by=user,
        )
        job_queue(job)
    return _jobs().get(pk=job.pk)


class JobListAPI(APIView):
    """`GET /api/jobs/`: recent jobs. `POST /api/jobs/`: queue a job → 201 with the job.

    A job that could not be queued because the broker is unreachable is answered with 503 and the
    (failed) job, whose `error` says why; a dataset without prompts gives a 201 job that has failed."""

    permission_classes = [IsEvalsiteAdmin]

    @extend_schema(responses=JobOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(JobOutput(_jobs()[:50], many=True).data)

    @extend_schema(request=JobCreateInput, responses={201: JobOutput, 503: JobOutput})
    def post(self, request: Request) -> Response:
        serializer = JobCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            job = queue_job(user=request.user, data=serializer.validated_data)
        except JobInputError as exc:
            return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(JobOutput(job).data, status=_queued_status(job))


class JobDetailAPI(APIView):
    """`GET /api/jobs/{id}/`: status, done, total, error, tokens_per_s (and more)."""

    permission_classes = [IsEvalsiteAdmin]

    @extend_schema(responses=JobOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(JobOutput(get_object_or_404(_jobs(), pk=pk)).data)


class JobCancelAPI(APIView):
    """`POST /api/jobs/{id}/cancel/`: cancel a queued or running job (200 with the job; 409 if it
    had already finished)."""

    permission_classes = [IsEvalsiteAdmin]

    @extend_schema(request=None, responses={200: JobOutput, 409: JobOutput})
    def post(self, request: Request, pk: int) -> Response:
        job = get_object_or_404(_jobs(), pk=pk)
        changed = job_cancel(job=job)
        return Response(
            JobOutput(job).data, status=status.HTTP_200_OK if changed else status.HTTP_409_CONFLICT
        )


# ---------------------------------------------------------------------------------------------
# Pages


def _require_admin(request: HttpRequest) -> None:
    if not getattr(request.user, "is_evalsite_admin", False):
        raise PermissionDenied


@login_required
def job_list_page(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    form_errors: dict[str, str] = {}
    values = {
        "dataset": request.GET.get("dataset", ""),
        "base_model": "",
        "gguf_file": "",
        "adapter_path": "",
        "max_new_tokens": "64",
    }
    if request.method == "POST":
        values = {key: request.POST.get(key, "").strip() for key in values}
        serializer = JobCreateInput(data=values)
        if serializer.is_valid():
            try:
                job = queue_job(user=request.user, data=serializer.validated_data)
            except JobInputError as exc:
                form_errors[exc.field] = exc.message
            else:
                if job.status == JobStatus.FAILED:
                    messages.error(request, f"Job {job.pk} failed: {job.error}")
                else:
                    messages.success(request, f"Job {job.pk} queued: {job.total} answers.")
                return redirect("job-detail", pk=job.pk)
        else:
            form_errors = {key: " ".join(str(e) for e in errs) for key, errs in serializer.errors.items()}
    jobs = list(_jobs()[:50])
    rows = [(job, job_progress(job)) for job in jobs]
    datasets = Dataset.objects.order_by("name")
    return render(
        request,
        "generation/job_list.html",
        {"rows": rows, "datasets": datasets, "values": values, "form_errors": form_errors},
        status=400 if form_errors else 200,
    )


@login_required
def job_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    _require_admin(request)
    job = get_object_or_404(_jobs(), pk=pk)
    return render(
        request,
        "generation/job_detail.html",
        {
            "job": job,
            "progress": job_progress(job),
            "active": job.status in (JobStatus.QUEUED, JobStatus.RUNNING),
            "chunks": job.chunks.all(),
            "load_attempts": job.load_attempts.order_by("id"),
            "answers": job.answers.select_related("prompt").order_by("prompt_id", "role")[:20],
        },
    )


@login_required
@require_POST
def job_cancel_page(request: HttpRequest, pk: int) -> HttpResponse:
    _require_admin(request)
    job = get_object_or_404(GenerationJob, pk=pk)
    if job_cancel(job=job):
        messages.success(request, f"Job {job.pk} cancelled.")
    else:
        messages.error(request, f"Job {job.pk} had already {job.status}.")
    return redirect("job-detail", pk=job.pk)


# ---------------------------------------------------------------------------------------------
# Fine-tuning runs: `/api/finetune-runs/` (admins queue; researchers and admins read) and the
# `/runs/` pages with the loss curves. Every read first fails runs whose worker stopped beating.


class CanReadRuns(permissions.BasePermission):
    """Researchers and admins read runs; only admins queue them."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return bool(getattr(user, "can_read_reports", False))
        return bool(getattr(user, "is_evalsite_admin", False))


def _runs() -> Any:
    return FinetuneRun.objects.select_related("dataset")


def queue_finetune_run(*, user: Any, data: dict[str, Any]) -> FinetuneRun:
    """Create and queue a run from validated input; raises JobInputError (nothing created). Re-reads
    the run after the commit so a broker failure during queueing shows in its status."""
    options = {k: v for k, v in data.items() if k in FINETUNE_OPTION_FIELDS}
    with transaction.atomic():
        run = finetune_run_create(
            dataset=data["dataset"],
            base_model=data["base_model"],
            gguf_file=data.get("gguf_file", ""),
            output_dir=data["output_dir"],
            config=finetune_config_build(options),
            created_by=user,
        )
        finetune_run_queue(run)
    return _runs().get(pk=run.pk)


class FinetuneRunListAPI(APIView):
    """`GET /api/finetune-runs/`: recent runs. `POST /api/finetune-runs/` (admin): queue a run → 201;
    503 with the (failed) run when the broker cannot be reached; 400 with field errors, nothing made."""

    permission_classes = [CanReadRuns]

    @extend_schema(responses=FinetuneRunOutput(many=True))
    def get(self, request: Request) -> Response:
        finetune_runs_fail_stale()
        return Response(FinetuneRunOutput(_runs()[:50], many=True).data)

    @extend_schema(request=FinetuneRunCreateInput, responses={201: FinetuneRunOutput, 503: FinetuneRunOutput})
    def post(self, request: Request) -> Response:
        serializer = FinetuneRunCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            run = queue_finetune_run(user=request.user, data=serializer.validated_data)
        except JobInputError as exc:
            return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(FinetuneRunOutput(run).data, status=_queued_status(run))


class FinetuneRunDetailAPI(APIView):
    """`GET /api/finetune-runs/{id}/`: status, epochs so far, train_loss, val_loss, best_epoch, error."""

    permission_classes = [CanReadRuns]

    @extend_schema(responses=FinetuneRunOutput)
    def get(self, request: Request, pk: int) -> Response:
        finetune_runs_fail_stale()
        return Response(FinetuneRunOutput(get_object_or_404(_runs(), pk=pk)).data)
