"""Server-rendered job pages for evalsite admins (`/jobs/`): the list with a form that queues a job, a
job's page with its progress, chunks, load attempts and first answers, and cancelling. Jobs name
models and adapter paths, which annotators must never see. No ML code is imported here."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from evalsite.access import ADMINISTER, role_required

from .configs import ConfigError, GenerationSettings
from .jobs import job_cancel, jobs_for_display
from .models import ACTIVE_STATUSES, Dataset, GenerationJob, JobStatus
from .selectors import job_progress
from .serializers import JobCreateInput
from .workers import worker_census

FORM_FIELDS = ("dataset", "base_model", "gguf_file", "adapter_path", "max_new_tokens")


@role_required(ADMINISTER)
def job_list_page(request: HttpRequest) -> HttpResponse:
    form_errors: dict[str, str] = {}
    values = {key: "" for key in FORM_FIELDS}
    values.update(dataset=request.GET.get("dataset", ""))
    values.update(max_new_tokens=str(GenerationSettings.max_new_tokens))
    if request.method == "POST":
        values = {key: request.POST.get(key, "").strip() for key in FORM_FIELDS}
        serializer = JobCreateInput(data=values)
        if serializer.is_valid():
            try:
                job = serializer.save(created_by=request.user)
            except ConfigError as exc:
                form_errors[exc.field] = exc.message
            else:
                if job.status == JobStatus.FAILED:
                    messages.error(request, f"Job {job.pk} failed: {job.error}")
                else:
                    messages.success(request, f"Job {job.pk} queued: {job.total} answers.")
                return redirect("job-detail", pk=job.pk)
        else:
            form_errors = {key: " ".join(str(e) for e in errs) for key, errs in serializer.errors.items()}
    census = worker_census()
    rows = [(job, job_progress(job, census)) for job in jobs_for_display()[:50]]
    return render(
        request,
        "generation/job_list.html",
        {
            "rows": rows,
            "census": census,
            "waiting": any(progress.waiting_for_worker for _, progress in rows),
            "datasets": Dataset.objects.order_by("name"),
            "values": values,
            "form_errors": form_errors,
        },
        status=400 if form_errors else 200,
    )


@role_required(ADMINISTER)
def job_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(jobs_for_display(), pk=pk)
    census = worker_census()
    return render(
        request,
        "generation/job_detail.html",
        {
            "job": job,
            "census": census,
            "progress": job_progress(job, census),
            "active": job.status in ACTIVE_STATUSES,
            "chunks": job.chunks.all(),
            "load_attempts": job.load_attempts.order_by("id"),
            "answers": job.answers.select_related("prompt").order_by("prompt_id", "role")[:20],
        },
    )


@role_required(ADMINISTER)
@require_POST
def job_cancel_page(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(GenerationJob, pk=pk)
    if job_cancel(job=job):
        messages.success(request, f"Job {job.pk} cancelled.")
    else:
        messages.error(request, f"Job {job.pk} had already {job.status}.")
    return redirect("job-detail", pk=job.pk)
