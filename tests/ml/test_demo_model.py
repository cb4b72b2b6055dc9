"""The demo model itself (SmolLM2-135M-Instruct from its GGUF) with the committed demo adapter, run
through the same engine the workers use. Slow: the first load dequantises the GGUF (~20 s here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from generation.models import Answer, Dataset, ModelLoadAttempt, Prompt
from generation.configs import GenerationSettings
from generation.jobs import job_create
from tests.support.generation_data import run_job_here

ROOT = Path(__file__).resolve().parents[2]
LABEL_FIRST = re.compile(r"^\W*(positive|negative|neutral)\b", re.IGNORECASE)


@pytest.mark.slow
@pytest.mark.django_db
def test_the_demo_adapter_loads_and_answers_sentiment_in_the_trained_format():
    rows = [json.loads(line) for line in (ROOT / "demo/data/eval.jsonl").read_text().splitlines() if line]
    sentiment = [row for row in rows if row["task"] == "sentiment"][:6]
    dataset = Dataset.objects.create(name="demo-sentiment")
    Prompt.objects.bulk_create(Prompt(dataset=dataset, **row) for row in sentiment)

    job = run_job_here(
        job_create(
            dataset=dataset, base_model="smollm2-demo", adapter_path=str(ROOT / "demo/adapter"),
            settings=GenerationSettings(max_new_tokens=8, batch_size=6),
        )
    )

    assert job.status == "succeeded", job.error
    assert ModelLoadAttempt.objects.filter(job=job, success=False).count() == 0
    rows_made = Answer.objects.filter(job=job).select_related("prompt")
    answers = {(a.prompt.external_id, a.role): a for a in rows_made}
    assert len(answers) == 12
    assert not any(a.fallback for a in answers.values())
    tuned = [answers[(row["external_id"], "finetuned")].text for row in sentiment]
    base = [answers[(row["external_id"], "pretrained")].text for row in sentiment]
    # The adapter was trained to open with the label word ("Negative. The reviewer ..."); the base
    # model, greedy on the same input, does not answer that way.
    tuned_format = sum(bool(LABEL_FIRST.match(text)) for text in tuned)
    base_format = sum(bool(LABEL_FIRST.match(text)) for text in base)
    assert tuned_format >= 5, tuned
    assert tuned_format > base_format, (tuned, base)
    assert sum(t != b for t, b in zip(tuned, base)) >= 4
