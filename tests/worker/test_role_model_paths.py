"""The worker checks the model paths of a job again before it loads anything: a job row made before
EVALSITE_MODEL_ROOTS was set (or edited since) cannot make a worker read outside the roots."""

from __future__ import annotations

import pytest

from generation.configs import GenerationSettings
from generation.jobs import job_create
from generation.models import FailureKind, JobStatus, ModelLoadAttempt
from generation.paths import NOT_ALLOWED
from tests.support.generation_data import make_dataset, run_job_here

pytestmark = pytest.mark.django_db


def _job(base_dir, adapter_dir):
    return job_create(
        dataset=make_dataset(n=2), base_model=str(base_dir), adapter_path=str(adapter_dir),
        settings=GenerationSettings(max_new_tokens=3, batch_size=4),
    )


def test_an_adapter_outside_the_roots_is_not_read_and_the_base_answers(
    tiny_llama_dir, tiny_adapter_dir, settings
):
    job = _job(tiny_llama_dir, tiny_adapter_dir)  # made while the roots allowed both
    settings.EVALSITE_MODEL_ROOTS = [str(tiny_llama_dir)]  # now only the base model's folder
    job = run_job_here(job)
    assert job.status == JobStatus.SUCCEEDED
    assert job.answers.filter(role="finetuned", fallback=True).count() == 2
    attempt = ModelLoadAttempt.objects.get(job=job, kind="adapter")
    assert not attempt.success and attempt.error == f"cannot load adapter: {NOT_ALLOWED}"
    assert str(tiny_adapter_dir) not in attempt.error


def test_a_base_model_outside_the_roots_fails_the_job_without_saying_what_is_there(
    tiny_llama_dir, tiny_adapter_dir, tmp_path, settings
):
    job = _job(tiny_llama_dir, tiny_adapter_dir)
    settings.EVALSITE_MODEL_ROOTS = [str(tmp_path)]
    job = run_job_here(job)
    assert job.status == JobStatus.FAILED and job.failure_kind == FailureKind.MODEL_LOAD
    assert job.answers.count() == 0
    attempt = ModelLoadAttempt.objects.get(job=job, kind="base")
    assert not attempt.success and attempt.error == f"base_model: {NOT_ALLOWED}"
    assert NOT_ALLOWED in job.error and str(tiny_llama_dir) not in job.error
