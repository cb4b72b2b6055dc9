"""The generation API: jobs (`/api/jobs/`, admins only: jobs name models and adapter paths, which
annotators must never see) and fine-tuning runs (`/api/finetune-runs/`: researchers and admins read,
admins queue). Thin views over generation.jobs and generation.runs; GET handlers only read."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsite.access import IsEvalsiteAdmin, ReadersReadAdminsWrite

from .configs import ConfigError
from .jobs import job_cancel, jobs_for_display
from .models import FailureKind, FinetuneRun, GenerationJob
from .runs import runs_for_display
from .serializers import FinetuneRunCreateInput, FinetuneRunOutput, JobCreateInput, JobOutput


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


class JobListAPI(APIView):
    """`GET /api/jobs/`: recent jobs. `POST /api/jobs/`: queue a job → 201 with the job.

    A job that could not be queued because the broker is unreachable is answered with 503 and the
    (failed) job, whose `error` says why; a dataset without prompts gives a 201 job that has failed."""

    permission_classes = [IsEvalsiteAdmin]

    @extend_schema(responses=JobOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(JobOutput(jobs_for_display()[:50], many=True).data)

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


class FinetuneRunListAPI(APIView):
    """`GET /api/finetune-runs/`: recent runs. `POST /api/finetune-runs/` (admin): queue a run → 201;
    503 with the (failed) run when the broker cannot be reached; 400 with field errors, nothing made."""

    permission_classes = [ReadersReadAdminsWrite]

    @extend_schema(responses=FinetuneRunOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(FinetuneRunOutput(runs_for_display()[:50], many=True).data)

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
