"""Server-rendered generation pages for evalsite admins: uploading a prompts or answers file
(`/datasets/upload/`), queueing a job (`/jobs/new/`), the job list with filters and pages (`/jobs/`), a
job's page with its progress, systems, settings, chunks, load attempts and first answers, and
cancelling.

Jobs name models and adapter paths, which annotators must never see: every page here is for admins
(evalsite.access). No ML code is imported here."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from evalsite.access import ADMINISTER, role_required

from .configs import GenerationSettings, setting_text
from .forms import JobQueueForm, UploadForm
from .jobs import job_cancel, jobs_for_display
from .models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    Dataset,
    GenerationChunk,
    GenerationJob,
    JobStatus,
    job_system_names,
)
from .selectors import job_progress, job_systems
from .workers import worker_census

PER_PAGE = 25


# ---------------------------------------------------------------------------------------------
# Uploading


@role_required(ADMINISTER)
def dataset_upload_page(request: HttpRequest) -> HttpResponse:
    """A prompts file into a dataset or an answers file as a finished job, all rows or none."""
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        result = form.save()
        if isinstance(result, GenerationJob):
            k = len(job_system_names(result))
            prompts = result.total // k
            answers = "both answers" if k == 2 else f"the answers of {k} systems"
            messages.success(request, f'Imported {prompts} prompts with {answers} as job "{result.name}".')
            return redirect("job-detail", pk=result.pk)
        if isinstance(result, Dataset):
            messages.success(request, f'Imported {form.imported} prompts into dataset "{result.name}".')
            return redirect(f"{reverse('job-new')}?{urlencode({'dataset': result.name})}")
    datasets = Dataset.objects.order_by("-id")[:10]
    status = 400 if form.errors else 200
    return render(request, "generation/upload.html", {"form": form, "datasets": datasets}, status=status)


# ---------------------------------------------------------------------------------------------
# Queueing


WHAT_FIELDS = (
    "dataset", "model", "kept_epochs", "base_model", "gguf_file", "adapter_path", "prompt_limit", "name"
)  # fmt: skip
HOW_FIELDS = (
    "max_new_tokens", "batch_size", "chunk_prompts", "seed", "do_sample", "temperature", "top_p"
)  # fmt: skip


def _initial(request: HttpRequest) -> dict[str, Any]:
    initial: dict[str, Any] = {}
    dataset = request.GET.get("dataset", "").strip()
    found = Dataset.objects.filter(name=dataset).first()
    if found is None and dataset.isdigit():
        found = Dataset.objects.filter(pk=int(dataset)).first()
    if found is not None:
        initial["dataset"] = found.name
    run = request.GET.get("run", "")
    if run.isdigit():
        initial["model"] = f"run:{run}"
    return initial


def _queue(request: HttpRequest) -> HttpResponse:
    """The queue form: GET shows it, POST queues through `job_submit` or shows the errors (400)."""
    if request.method == "POST":
        form = JobQueueForm(request.POST)
        job = form.save(created_by=request.user) if form.is_valid() else None
        if job is not None:
            if job.status == JobStatus.FAILED:
                messages.error(request, f"Job {job.pk} failed: {job.error}")
            else:
                messages.success(request, f"Job {job.pk} queued: {job.total} answers.")
            return redirect("job-detail", pk=job.pk)
    else:
        form = JobQueueForm(initial=_initial(request))
    census = worker_census()
    context = {
        "form": form,
        "what": [form[name] for name in WHAT_FIELDS],
        "how": [form[name] for name in HOW_FIELDS],
        "census": census,
        "has_datasets": Dataset.objects.exists(),
    }
    return render(request, "generation/job_new.html", context, status=400 if form.errors else 200)


@role_required(ADMINISTER)
def job_new_page(request: HttpRequest) -> HttpResponse:
    return _queue(request)


@role_required(ADMINISTER)
def job_list_page(request: HttpRequest) -> HttpResponse:
    """Jobs, newest first, 25 a page, filtered by status and dataset name. A POST queues a job (the
    form used to live here; /jobs/new/ is its page now)."""
    if request.method == "POST":
        return _queue(request)
    jobs = jobs_for_display()
    status = request.GET.get("status", "")
    if status in JobStatus.values:
        jobs = jobs.filter(status=status)
    else:
        status = ""
    dataset = request.GET.get("dataset", "").strip()
    if dataset:
        jobs = jobs.filter(dataset__name__icontains=dataset)
    page = Paginator(jobs, PER_PAGE).get_page(request.GET.get("page"))
    census = worker_census()
    rows = [(job, job_progress(job, census)) for job in page]
    context = {
        "rows": rows,
        "page": page,
        "census": census,
        "waiting": any(progress.waiting_for_worker for _, progress in rows),
        "statuses": JobStatus.values,
        "filters": {"status": status, "dataset": dataset},
        "filtered": bool(status or dataset),
    }
    return render(request, "generation/job_list.html", context)


# ---------------------------------------------------------------------------------------------
# One job


SETTING_LABELS = {
    "prompt_limit": "Prompts answered",
    "max_new_tokens": "Max new tokens",
    "do_sample": "Decoding",
    "temperature": "Temperature",
    "top_p": "Top-p",
    "seed": "Seed",
    "batch_size": "Batch size (rows)",
    "chunk_prompts": "Prompts per worker task",
    "source": "Imported from",
}


def settings_rows(job: GenerationJob) -> list[tuple[str, str]]:
    """The job's settings as (label, value) rows, defaults spelled out, in words rather than a dict."""
    stored = dict(job.settings or {})
    if job.imported:
        return [(SETTING_LABELS.get(k, k), setting_text(v)) for k, v in stored.items()]
    defaults = GenerationSettings().as_dict()
    values = {**defaults, **stored}
    sampling = values.get("do_sample") is True
    limit = values.get("prompt_limit")
    shown = {
        "prompt_limit": f"the first {limit}" if limit else "all of them",
        "do_sample": "sampling" if sampling else "greedy (the most likely token)",
    }
    if sampling:
        for key in ("temperature", "top_p"):
            shown[key] = setting_text(values[key]) if key in values else "the model's own"
    rows = []
    for key, label in SETTING_LABELS.items():
        if key in shown:
            rows.append((label, shown[key]))
        elif key in values and key not in ("temperature", "top_p", "source"):
            rows.append((label, setting_text(values[key])))
    known = set(SETTING_LABELS)
    rows += [(key, setting_text(value)) for key, value in stored.items() if key not in known]
    return rows


def chunk_state(chunk: GenerationChunk, job: GenerationJob) -> str:
    """A chunk's status as it stands for its job: one the job gave up on before it finished was never
    run to the end, whatever its row last said."""
    if chunk.finished_at is None and job.status in FINISHED_STATUSES:
        verb = "stopped" if chunk.status == JobStatus.RUNNING else "not run"
        return f"{verb} (job {job.status.replace('_', ' ')})"
    return chunk.status.replace("_", " ")


def _job_and_chunks(pk: int) -> tuple[GenerationJob, list[GenerationChunk]]:
    """The job and its chunks from one SELECT (the chunks joined to their job row), so the statuses
    the page shows were read together and agree."""
    chunks = list(
        GenerationChunk.objects.filter(job_id=pk)
        .select_related("job__dataset", "job__pretrained_model", "job__finetuned_model")
        .order_by("index")
    )
    if not chunks:
        return get_object_or_404(jobs_for_display(), pk=pk), []
    job = chunks[0].job
    for chunk in chunks:
        chunk.job = job
    return job, chunks


@role_required(ADMINISTER)
def job_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    job, chunks = _job_and_chunks(pk)
    census = worker_census()
    progress = job_progress(job, census)
    chunk_rows = [(chunk, chunk_state(chunk, job)) for chunk in chunks]
    counts: dict[str, int] = {}
    for _, state in chunk_rows:
        counts[state] = counts.get(state, 0) + 1
    finished = job.status in FINISHED_STATUSES
    return render(
        request,
        "generation/job_detail.html",
        {
            "job": job,
            "census": census,
            "progress": progress,
            "active": job.status in ACTIVE_STATUSES,
            "chunk_rows": chunk_rows,
            "chunk_counts": sorted(counts.items()),
            "settings_rows": settings_rows(job),
            "systems": job_systems(job),
            "prompt_count": sum(len(chunk.prompt_ids) for chunk in chunks),
            "can_open_campaign": finished and progress.done > 0,
            "campaigns": job.campaigns.order_by("-id") if finished else [],
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
