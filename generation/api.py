"""The generation API: jobs (`/api/jobs/`, admins only: jobs name models and adapter paths, which
annotators must never see), fine-tuning runs (`/api/finetune-runs/`: researchers and admins read,
admins queue) and datasets (`/api/datasets/`: researchers and admins). Thin views over generation.jobs
and generation.runs; GET handlers only read. Lists are paged and filtered by evalsite.pagination."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsite.access import IsEvalsiteAdmin, IsReportReader, ReadersReadAdminsWrite
from evalsite.pagination import PAGE_HEADERS, ListPagination, query_filters

from .configs import ConfigError
from .jobs import job_cancel, jobs_for_display
from .models import Dataset, FailureKind, FinetuneRun, GenerationJob, Prompt
from .runs import runs_for_display
from .serializers import (
    DatasetListFilters,
    DatasetOutput,
    FinetuneRunCreateInput,
    FinetuneRunListFilters,
    FinetuneRunOutput,
    JobCreateInput,
    JobListFilters,
    JobOutput,
)


def queued_status(queued: GenerationJob | FinetuneRun) -> int:
    """201 for a queued job or run; 503 when queueing failed because the broker did not answer (the
    row is failed and says so), so clients can tell "try later" from "bad request"."""
    if queued.failure_kind == FailureKind.BROKER_UNREACHABLE:
        return status.HTTP_503_SERVICE_UNAVAILABLE
    return status.HTTP_201_CREATED


def _submit(
    serializer: JobCreateInput | FinetuneRunCreateInput, request: Request
) -> GenerationJob | FinetuneRun:
    """Validate and submit; a refusal by the services is a 400 with that field's error, like the
    serializer's own."""
    serializer.is_valid(raise_exception=True)
    try:
        return serializer.save(created_by=request.user)
    except ConfigError as exc:
        raise serializers.ValidationError({exc.field: [exc.message]}) from exc


class JobListAPI(generics.ListAPIView):
    """`GET /api/jobs/`: jobs, newest first, a page at a time (`?page=`, `?page_size=`;
    headers `X-Total-Count` and `Link`), filtered by
    `?status=` and `?dataset=` (id or name). `POST /api/jobs/`: queue a job → 201 with the job.

    A job that could not be queued because the broker is unreachable is answered with 503 and the
    (failed) job, whose `error` says why; a dataset without prompts gives a 201 job that has failed."""

    permission_classes = [IsEvalsiteAdmin]
    serializer_class = JobOutput
    pagination_class = ListPagination

    def get_queryset(self) -> QuerySet[GenerationJob]:
        filters = query_filters(JobListFilters, self.request)
        return _filtered(jobs_for_display().order_by("-id"), filters)

    @extend_schema(parameters=[JobListFilters, *PAGE_HEADERS])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=JobCreateInput, responses={201: JobOutput, 503: JobOutput})
    def post(self, request: Request) -> Response:
        job = _submit(JobCreateInput(data=request.data), request)
        return Response(JobOutput(job).data, status=queued_status(job))


class JobDetailAPI(APIView):
    """`GET /api/jobs/{id}/`: status, done, total, error, tokens_per_s (and more); `waiting_for_worker`
    is true while the job is queued or running and no worker is live (`workers_live` is 0)."""

    permission_classes = [IsEvalsiteAdmin]

    @extend_schema(responses=JobOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(JobOutput(get_object_or_404(jobs_for_display(), pk=pk)).data)


class JobCancelAPI(APIView):
    """`POST /api/jobs/{id}/cancel/`: cancel a queued or running job (200 with the job; 409 if it
    had already finished)."""

    permission_classes = [IsEvalsiteAdmin]

    @extend_schema(request=None, responses={200: JobOutput, 409: JobOutput})
    def post(self, request: Request, pk: int) -> Response:
        job = get_object_or_404(jobs_for_display(), pk=pk)
        changed = job_cancel(job=job)
        return Response(
            JobOutput(job).data, status=status.HTTP_200_OK if changed else status.HTTP_409_CONFLICT
        )


class FinetuneRunListAPI(generics.ListAPIView):
    """`GET /api/finetune-runs/`: runs, newest first, a page at a time (`?page=`, `?page_size=`;
    headers `X-Total-Count` and `Link`), filtered by
    `?status=`, `?dataset=` (id or name) and `?mode=`. `POST /api/finetune-runs/` (admin): queue a run →
    201; 503 with the (failed) run when the broker cannot be reached; 400 with field errors, nothing made."""

    permission_classes = [ReadersReadAdminsWrite]
    serializer_class = FinetuneRunOutput
    pagination_class = ListPagination

    def get_queryset(self) -> QuerySet[FinetuneRun]:
        filters = query_filters(FinetuneRunListFilters, self.request)
        return _filtered(runs_for_display().order_by("-id"), filters)

    @extend_schema(parameters=[FinetuneRunListFilters, *PAGE_HEADERS])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=FinetuneRunCreateInput, responses={201: FinetuneRunOutput, 503: FinetuneRunOutput})
    def post(self, request: Request) -> Response:
        run = _submit(FinetuneRunCreateInput(data=request.data), request)
        return Response(FinetuneRunOutput(run).data, status=queued_status(run))


class FinetuneRunDetailAPI(APIView):
    """`GET /api/finetune-runs/{id}/`: status, epochs so far, train_loss, val_loss, best_epoch, error."""

    permission_classes = [ReadersReadAdminsWrite]

    @extend_schema(responses=FinetuneRunOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(FinetuneRunOutput(get_object_or_404(runs_for_display(), pk=pk)).data)


class DatasetListAPI(generics.ListAPIView):
    """`GET /api/datasets/` (researchers, admins): each dataset's name, description, prompt count, tasks
    and creation time, newest first, a page at a time; `?task=` keeps the datasets with that task."""

    permission_classes = [IsReportReader]
    serializer_class = DatasetOutput
    pagination_class = ListPagination

    def get_queryset(self) -> QuerySet[Dataset]:
        filters = query_filters(DatasetListFilters, self.request)
        datasets = Dataset.objects.annotate(prompt_count=Count("prompts")).order_by("-id")
        if "task" in filters:
            datasets = datasets.filter(
                pk__in=Prompt.objects.filter(task=filters["task"]).values("dataset_id")
            )
        return datasets

    @extend_schema(parameters=[DatasetListFilters, *PAGE_HEADERS])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        tasks: dict[int, list[str]] = {}
        pairs = Prompt.objects.filter(dataset__in=[d.pk for d in page]).values_list("dataset_id", "task")
        for dataset_id, task in pairs.distinct().order_by("dataset_id", "task"):
            tasks.setdefault(dataset_id, []).append(task)
        serializer = self.get_serializer(page, many=True, context={"tasks_by_dataset": tasks})
        return self.get_paginated_response(serializer.data)


def _filtered(rows: QuerySet, filters: dict[str, Any]) -> QuerySet:
    """Jobs or runs narrowed by the filters read from the query string (`dataset` is an id or a name)."""
    if "status" in filters:
        rows = rows.filter(status=filters["status"])
    if "mode" in filters:
        rows = rows.filter(mode=filters["mode"])
    if "dataset" in filters:
        ref = filters["dataset"].strip()
        by_name = Q(dataset__name=ref)
        rows = rows.filter(by_name | Q(dataset_id=int(ref)) if ref.isdigit() else by_name)
    return rows
