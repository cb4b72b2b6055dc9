"""Serving latency: what one user of the model waits for, measured on the worker that ran the job.

An answer's `latency_ms` is its share of its batch's compute: what the job cost per answer, which no
client ever waits. So the job's first chunk, after its own batches (the model loaded and warm), also
answers a sample of the job's prompts one at a time, in both roles, with the job's settings, and
records the time to the first token and to the full answer as `ServingMeasurement` rows.

- The sample: `SERVING_SAMPLE_PER_ROLE` prompts (default 8; 0 turns measuring off), drawn at random
  from all the job's prompts with a seed fixed by the job, the same prompts for both roles; the roles
  alternate request by request so that a change in the machine's load falls on both alike.
- Exactly once per (job, prompt, role), like answers: a delivery measures only what is missing and
  writes with `ignore_conflicts` over the unique constraint. A delivery that finds the chunk's answers
  all made (its predecessor died after them) does not load a model just to measure.
- No fine-tuned measurement when the adapter could not be loaded: the pre-trained model would be
  timed under the fine-tuned name.
- Measuring never fails the chunk: an error is logged and the answers stand.
"""

from __future__ import annotations

import logging
import random

from django.conf import settings

from generation.configs import GenerationSettings
from generation.ml import engine, prompting
from generation.models import GenerationJob, JobStatus, Prompt, Role, ServingMeasurement

from .role_models import RoleModels, load_role_models
from .runtime import WorkerRuntime

logger = logging.getLogger(__name__)

DEFAULT_SAMPLE_PER_ROLE = 8
# untimed first request per role: one-off costs (first call of a code path, allocations) are not a wait
WARM_UP_TOKENS = 2


def serving_sample_size() -> int:
    return max(0, int(getattr(settings, "SERVING_SAMPLE_PER_ROLE", DEFAULT_SAMPLE_PER_ROLE)))


def serving_prompts(job: GenerationJob, n: int) -> list[Prompt]:
    """n of the job's prompts (all of them when it has fewer), the same on every delivery."""
    ids = sorted({pk for chunk_ids in job.chunks.values_list("prompt_ids", flat=True) for pk in chunk_ids})
    rng = random.Random(f"evalsite:serving-sample:{job.pk}:{job.created_at.isoformat()}")
    chosen = rng.sample(ids, min(n, len(ids)))
    return list(Prompt.objects.filter(pk__in=chosen).order_by("id"))


def serving_measure(*, runtime: WorkerRuntime, job: GenerationJob) -> int:
    """Measure the job's missing serving sample on this worker; returns how many requests it timed.
    Errors are logged, never raised (the chunk's answers are already saved)."""
    try:
        return _measure(runtime, job)
    except Exception:
        logger.exception("job %s: measuring serving latency failed; the answers stand", job.pk)
        return 0


def _measure(runtime: WorkerRuntime, job: GenerationJob) -> int:
    n = serving_sample_size()
    if n == 0:
        return 0
    models = load_role_models(runtime, job)  # loaded by the chunk just now: reused, nothing recorded
    roles = [Role.PRETRAINED] if models.fallback else [Role.PRETRAINED, Role.FINETUNED]
    done = set(ServingMeasurement.objects.filter(job=job).values_list("prompt_id", "role"))
    todo = [(p, role) for p in serving_prompts(job, n) for role in roles if (p.pk, role) not in done]
    if not todo:
        return 0
    job_settings = GenerationSettings.from_dict(job.settings or {})
    for role in roles:
        _answer(models, todo[0][0], role, job_settings, max_new_tokens=WARM_UP_TOKENS)
    written = 0
    for prompt, role in todo:
        if GenerationJob.objects.filter(pk=job.pk, status=JobStatus.CANCELLED).exists():
            break
        alone = _answer(models, prompt, role, job_settings, max_new_tokens=job_settings.max_new_tokens)
        written += len(
            ServingMeasurement.objects.bulk_create(
                [
                    ServingMeasurement(
                        job=job,
                        prompt=prompt,
                        role=role,
                        first_token_ms=round(alone.first_token_ms, 3),
                        total_ms=round(alone.total_ms, 3),
                        output_tokens=alone.output_tokens,
                        worker=runtime.name,
                        device=models.entry.device,
                    )
                ],
                ignore_conflicts=True,  # another delivery may have measured this one already
            )
        )
    return written


def _answer(
    models: RoleModels, prompt: Prompt, role: str, job_settings: GenerationSettings, *, max_new_tokens: int
) -> engine.Alone:
    entry = models.entry
    request = engine.Request(
        key=(prompt.pk, role),
        prompt_text=prompting.render_prompt(entry.tokenizer, prompt),
        adapter=models.adapter if role == Role.FINETUNED else None,
    )
    return engine.answer_alone(
        entry,
        request,
        max_new_tokens=max_new_tokens,
        do_sample=job_settings.do_sample,
        seed=job_settings.seed,
        temperature=job_settings.temperature,
        top_p=job_settings.top_p,
    )
