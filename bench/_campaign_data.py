"""Synthetic campaign data for the report and export benchmarks, in a throwaway SQLite database.

`setup_throwaway_django()` must run before anything imports Django models: it points the settings
at a temporary var folder (so the real database is never touched) and migrates it.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent


def setup_throwaway_django(var_dir: str | None = None) -> str:
    var_dir = var_dir or tempfile.mkdtemp(prefix="evalsite-bench-")
    os.environ["EVALSITE_VAR_DIR"] = var_dir
    os.environ["DEBUG"] = "1"
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    return var_dir


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def machine() -> str:
    return (
        f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, {platform.system()}, "
        f"Python {platform.python_version()}, SQLite".replace("  ", " ")
    )


TASKS = ["sentiment", "features", "recommendation", "relevance"]
LABELS = {"sentiment": "positive", "features": "battery", "recommendation": "yes", "relevance": ""}
BATCH = 10_000


class _RatingDraws(NamedTuple):
    """Random draws for the n = n_prompts * raters_per_prompt ratings (per-prompt arrays where noted)."""

    offsets: Any  # per prompt: the first annotator (distinct annotators per pair via a random offset)
    sides: Any  # 1: the fine-tuned answer is on the left
    pt_scores: Any
    ft_scores: Any
    verdict: Any  # (n, 2): correctness of pretrained, fine-tuned; -1 = not judged
    durations: Any


def build_campaign(*, n_prompts: int, raters_per_prompt: int, n_annotators: int, seed: int = 0) -> int:
    """A campaign of n_prompts pairs, each rated by raters_per_prompt distinct annotators; returns its id."""
    import numpy as np
    from django.db import transaction

    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    with transaction.atomic():
        dataset, job = _create_job(n_prompts)
        prompts = _create_prompts(dataset, n_prompts)
        answers = _create_answers(job, prompts, rng.gamma(4.0, 300.0, size=2 * n_prompts))
        campaign, pairs = _create_pairs(job, prompts, answers, raters_per_prompt)
        users = _create_annotators(n_annotators)
        draws = _draw_ratings(rng, n_prompts, raters_per_prompt, n_annotators)
        _create_ratings(pairs, users, draws, raters_per_prompt, n_annotators)
    n = n_prompts * raters_per_prompt
    print(f"built {n_prompts} prompts, {n} ratings in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return campaign.pk


def _create_job(n_prompts: int) -> tuple:
    """The bench dataset and a finished generation job on it, with its two model-load attempts."""
    from generation.models import Dataset, GenerationJob, ModelLoadAttempt

    dataset = Dataset.objects.create(name="bench")
    job = GenerationJob.objects.create(name="bench", dataset=dataset, total=2 * n_prompts, status="succeeded")
    ModelLoadAttempt.objects.bulk_create(
        [ModelLoadAttempt(job=job, kind=k, target="m", success=True) for k in ("base", "adapter")]
    )
    return dataset, job


def _create_prompts(dataset, n_prompts: int) -> list:
    from generation.models import Prompt

    return Prompt.objects.bulk_create(
        [
            Prompt(
                dataset=dataset,
                external_id=f"p{i}",
                task=TASKS[i % 4],
                text=f"question {i}",
                label=LABELS[TASKS[i % 4]],
            )
            for i in range(n_prompts)
        ],
        batch_size=BATCH,
    )


def _create_answers(job, prompts: list, latency) -> list:
    """Two answers per prompt (pretrained, then fine-tuned), in prompt order."""
    from generation.models import Answer

    return Answer.objects.bulk_create(
        [
            Answer(
                job=job,
                prompt=p,
                role=role,
                text=f"Yes, positive: battery answer {p.pk} {role}",
                latency_ms=float(latency[2 * i + r]),
                output_tokens=int(40 + (i % 50)),
            )
            for i, p in enumerate(prompts)
            for r, role in enumerate(("pretrained", "finetuned"))
        ],
        batch_size=BATCH,
    )


def _create_pairs(job, prompts: list, answers: list, raters_per_prompt: int) -> tuple:
    """The campaign and one pair per prompt; returns (campaign, pairs)."""
    from annotations.models import Campaign, Pair

    campaign = Campaign.objects.create(name="bench", job=job, overlap=raters_per_prompt)
    pairs = Pair.objects.bulk_create(
        [
            Pair(
                campaign=campaign,
                prompt=p,
                pretrained_answer=answers[2 * i],
                finetuned_answer=answers[2 * i + 1],
            )
            for i, p in enumerate(prompts)
        ],
        batch_size=BATCH,
    )
    return campaign, pairs


def _create_annotators(n_annotators: int) -> list:
    from annotations.models import User

    return User.objects.bulk_create(
        [User(username=f"bench-rater-{i}", role="annotator") for i in range(n_annotators)]
    )


def _draw_ratings(rng, n_prompts: int, raters_per_prompt: int, n_annotators: int) -> _RatingDraws:
    """All the random draws for the ratings, in a fixed order (so a seed gives the same campaign)."""
    import numpy as np

    n = n_prompts * raters_per_prompt
    # distinct annotators per pair: a random offset and a stride coprime to nothing that matters
    offsets = rng.integers(0, n_annotators, size=n_prompts)
    sides = rng.integers(0, 2, size=n)
    quality = rng.normal(0.0, 1.0, size=n_prompts)
    pt_scores = np.clip(np.round(3 + quality.repeat(raters_per_prompt) + rng.normal(0, 0.8, n)), 1, 5)
    ft_scores = np.clip(np.round(3.4 + quality.repeat(raters_per_prompt) + rng.normal(0, 0.8, n)), 1, 5)
    verdict = rng.integers(-1, 2, size=(n, 2))
    durations = rng.integers(2000, 60000, size=n)
    return _RatingDraws(offsets, sides, pt_scores, ft_scores, verdict, durations)


def _create_ratings(
    pairs: list, users: list, draws: _RatingDraws, raters_per_prompt: int, n_annotators: int
) -> None:
    """raters_per_prompt assignments per pair, each with its rating, bulk-created in batches."""
    from annotations.models import Assignment, Rating

    n = len(pairs) * raters_per_prompt
    for start in range(0, n, BATCH):
        stop = min(n, start + BATCH)
        assignments = []
        for k in range(start, stop):
            i, j = divmod(k, raters_per_prompt)
            assignments.append(
                Assignment(
                    pair=pairs[i],
                    annotator=users[(draws.offsets[i] + j) % n_annotators],
                    finetuned_side="left" if draws.sides[k] else "right",
                )
            )
        assignments = Assignment.objects.bulk_create(assignments)
        Rating.objects.bulk_create(
            [_rating(assignment, k, draws) for k, assignment in zip(range(start, stop), assignments)]
        )


def _rating(assignment, k: int, draws: _RatingDraws):
    """The k-th rating: scores and verdicts placed on the side each answer was shown on."""
    from annotations.models import Rating

    ft_left = draws.sides[k] == 1
    pt, ft = int(draws.pt_scores[k]), int(draws.ft_scores[k])
    v_pt, v_ft = (None if v < 0 else bool(v) for v in draws.verdict[k])
    return Rating(
        assignment=assignment,
        score_left=ft if ft_left else pt,
        score_right=pt if ft_left else ft,
        correct_left=v_ft if ft_left else v_pt,
        correct_right=v_pt if ft_left else v_ft,
        preference="left" if ft > pt else ("right" if pt > ft else "tie"),
        duration_ms=int(draws.durations[k]),
    )
