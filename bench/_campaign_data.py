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


def build_campaign(*, n_prompts: int, raters_per_prompt: int, n_annotators: int, seed: int = 0) -> int:
    """A campaign with n_prompts pairs, each rated by raters_per_prompt distinct annotators. Returns its id."""
    import numpy as np
    from django.db import transaction

    from annotations.models import Assignment, Campaign, Pair, Rating, User
    from generation.models import Answer, Dataset, GenerationJob, ModelLoadAttempt, Prompt

    rng = np.random.default_rng(seed)
    tasks = ["sentiment", "features", "recommendation", "relevance"]
    labels = {"sentiment": "positive", "features": "battery", "recommendation": "yes", "relevance": ""}
    batch = 10_000
    started = time.perf_counter()
    with transaction.atomic():
        dataset = Dataset.objects.create(name="bench")
        job = GenerationJob.objects.create(
            name="bench", dataset=dataset, total=2 * n_prompts, status="succeeded"
        )
        ModelLoadAttempt.objects.bulk_create(
            [ModelLoadAttempt(job=job, kind=k, target="m", success=True) for k in ("base", "adapter")]
        )
        prompts = Prompt.objects.bulk_create(
            [
                Prompt(
                    dataset=dataset,
                    external_id=f"p{i}",
                    task=tasks[i % 4],
                    text=f"question {i}",
                    label=labels[tasks[i % 4]],
                )
                for i in range(n_prompts)
            ],
            batch_size=batch,
        )
        latency = rng.gamma(4.0, 300.0, size=2 * n_prompts)
        answers = Answer.objects.bulk_create(
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
            batch_size=batch,
        )
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
            batch_size=batch,
        )
        users = User.objects.bulk_create(
            [User(username=f"bench-rater-{i}", role="annotator") for i in range(n_annotators)]
        )
        n = n_prompts * raters_per_prompt
        # distinct annotators per pair: a random offset and a stride coprime to nothing that matters
        offsets = rng.integers(0, n_annotators, size=n_prompts)
        sides = rng.integers(0, 2, size=n)
        quality = rng.normal(0.0, 1.0, size=n_prompts)
        pt_scores = np.clip(np.round(3 + quality.repeat(raters_per_prompt) + rng.normal(0, 0.8, n)), 1, 5)
        ft_scores = np.clip(np.round(3.4 + quality.repeat(raters_per_prompt) + rng.normal(0, 0.8, n)), 1, 5)
        verdict = rng.integers(-1, 2, size=(n, 2))
        durations = rng.integers(2000, 60000, size=n)
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            assignments = []
            for k in range(start, stop):
                i, j = divmod(k, raters_per_prompt)
                assignments.append(
                    Assignment(
                        pair=pairs[i],
                        annotator=users[(offsets[i] + j) % n_annotators],
                        finetuned_side="left" if sides[k] else "right",
                    )
                )
            assignments = Assignment.objects.bulk_create(assignments)
            ratings = []
            for k, assignment in zip(range(start, stop), assignments):
                ft_left = sides[k] == 1
                pt, ft = int(pt_scores[k]), int(ft_scores[k])
                v_pt, v_ft = (None if v < 0 else bool(v) for v in verdict[k])
                ratings.append(
                    Rating(
                        assignment=assignment,
                        score_left=ft if ft_left else pt,
                        score_right=pt if ft_left else ft,
                        correct_left=v_ft if ft_left else v_pt,
                        correct_right=v_pt if ft_left else v_ft,
                        preference="left" if ft > pt else ("right" if pt > ft else "tie"),
                        duration_ms=int(durations[k]),
                    )
                )
            Rating.objects.bulk_create(ratings)
    print(f"built {n_prompts} prompts, {n} ratings in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return campaign.pk
