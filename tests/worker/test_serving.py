"""Serving latency on the worker (issue 14, item 12): the job's first chunk also answers a sample of
prompts alone (batch of 1) in both roles and records the time to the first token and to the full
answer, once per (job, prompt, role), without changing what the chunk answers."""

from __future__ import annotations

import os

import pytest
from django.test import override_settings

from generation.configs import GenerationSettings
from generation.jobs import job_create
from generation.models import Answer, GenerationChunk, JobStatus, ServingMeasurement
from generation.worker.chunks import chunk_run
from generation.worker.runtime import WorkerRuntime
from tests.support.generation_data import make_dataset, run_job_here
from tests.support.processes import query
from tests.worker.test_worker import run_job_through_a_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

# long enough answers that the full answer takes clearly longer than its first token
SETTINGS = GenerationSettings(max_new_tokens=24, batch_size=4, chunk_prompts=2)


def make_job(base_dir, adapter_dir, *, n: int = 5, adapter: bool = True):
    return job_create(
        dataset=make_dataset(n=n), base_model=str(base_dir),
        adapter_path=str(adapter_dir) if adapter else "", settings=SETTINGS,
    )  # fmt: skip


@override_settings(SERVING_SAMPLE_PER_ROLE=3)
def test_the_first_chunk_measures_a_sample_of_requests_answered_alone_in_both_roles(
    tiny_llama_dir, tiny_adapter_dir
):
    job = run_job_here(make_job(tiny_llama_dir, tiny_adapter_dir))
    assert job.status == JobStatus.SUCCEEDED, job.error
    rows = list(ServingMeasurement.objects.filter(job=job))
    assert len(rows) == 6
    prompts = {r.prompt_id for r in rows}
    assert len(prompts) == 3 and {(r.prompt_id, r.role) for r in rows} == {
        (p, role) for p in prompts for role in ("pretrained", "finetuned")
    }
    for row in rows:
        assert 0 < row.first_token_ms and 0 < row.total_ms
        assert row.device == "cpu" and row.worker.endswith(f":{os.getpid()}")
        # the request timed is the one the job answered: greedy, same settings, the same tokens
        answer = Answer.objects.get(job=job, prompt_id=row.prompt_id, role=row.role)
        assert row.output_tokens == answer.output_tokens
    # the full-answer time covers a whole answer, not one token (no timing order is asserted: the two
    # are separate calls, and on a busy CPU a preempted first-token call can take longer than the other)
    assert all(r.output_tokens > 1 for r in rows)
    # the job's other chunks measured nothing more, and the answers are all there, once
    assert Answer.objects.filter(job=job).count() == job.total == 10


@override_settings(SERVING_SAMPLE_PER_ROLE=2)
def test_a_second_delivery_measures_only_what_is_missing(tiny_llama_dir, tiny_adapter_dir):
    job = make_job(tiny_llama_dir, tiny_adapter_dir, n=4)
    first = job.chunks.get(index=0)
    runtime = WorkerRuntime()
    chunk_run(chunk_id=first.pk, runtime=runtime)
    measured = list(ServingMeasurement.objects.filter(job=job).order_by("id").values_list("id", "total_ms"))
    assert len(measured) == 4
    # the worker died after the answers and one measurement: the chunk is delivered again
    ServingMeasurement.objects.filter(pk__in=[m[0] for m in measured[1:]]).delete()
    Answer.objects.filter(job=job, prompt_id__in=first.prompt_ids[:1]).delete()
    GenerationChunk.objects.filter(pk=first.pk).update(status=JobStatus.RUNNING, finished_at=None)
    chunk_run(chunk_id=first.pk, runtime=runtime)
    again = list(ServingMeasurement.objects.filter(job=job).order_by("id").values_list("id", "total_ms"))
    assert len(again) == 4 and again[0] == measured[0]
    # a duplicate delivery of a finished chunk measures nothing
    chunk_run(chunk_id=first.pk, runtime=runtime)
    assert ServingMeasurement.objects.filter(job=job).count() == 4


@override_settings(SERVING_SAMPLE_PER_ROLE=2)
def test_without_its_adapter_the_finetuned_role_is_not_timed_under_its_name(tiny_llama_dir, tiny_adapter_dir):
    job = run_job_here(make_job(tiny_llama_dir, tiny_adapter_dir, n=3, adapter=False))
    assert job.status == JobStatus.SUCCEEDED
    assert set(ServingMeasurement.objects.filter(job=job).values_list("role", flat=True)) == {"pretrained"}
    assert ServingMeasurement.objects.filter(job=job).count() == 2


@override_settings(SERVING_SAMPLE_PER_ROLE=0)
def test_a_sample_of_zero_turns_measuring_off(tiny_llama_dir, tiny_adapter_dir):
    job = run_job_here(make_job(tiny_llama_dir, tiny_adapter_dir, n=2))
    assert job.status == JobStatus.SUCCEEDED
    assert not ServingMeasurement.objects.filter(job=job).exists()


SERVING_FACTS = """
import json
from generation.models import Answer, ServingMeasurement
rows = ServingMeasurement.objects.filter(job_id={job_id}).select_related("prompt")
answers = {{(a.prompt_id, a.role): a.output_tokens for a in Answer.objects.filter(job_id={job_id})}}
print(json.dumps([
    [r.prompt.external_id, r.role, r.first_token_ms > 0, r.total_ms > 0, r.worker, r.device,
     r.output_tokens == answers[(r.prompt_id, r.role)]]
    for r in rows.order_by("prompt__external_id", "role")
]))
"""


def test_a_real_worker_process_measures_serving_latency(
    process_env, start_worker, dataset_file, tiny_llama_dir, tiny_adapter_dir
):
    # the worker as deployed (a celery process, the filesystem broker), the default sample (8 per role):
    # the dataset's 5 prompts, each answered alone in both roles, by that process
    worker = start_worker(dict(process_env))
    job_id, _ = run_job_through_a_worker(
        process_env, worker, dataset_file, "served", tiny_llama_dir, tiny_adapter_dir
    )
    rows = query(process_env, SERVING_FACTS.format(job_id=job_id))
    assert [(r[0], r[1]) for r in rows] == [
        (f"q{i}", role) for i in range(5) for role in ("finetuned", "pretrained")
    ], worker.log_tail()
    for _, _, first_token, total, who, device, same_tokens in rows:
        assert first_token and total and device == "cpu" and same_tokens
        assert who.rsplit(":", 1)[1] == str(worker.pid())
