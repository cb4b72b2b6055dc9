"""A small hand-computed campaign for the report, export and view tests (no tests of its own).

Four prompts, three annotators. Ratings are written in role terms and stored left/right according
to each assignment's `finetuned_side`, so every test also checks the translation back.

    prompt  task            rater side   pt ft  pt_ok ft_ok  preference(role)
    p1      sentiment       u1    left   2  4   F     T      finetuned
    p1      sentiment       u2    right  3  5   F     T      finetuned
    p1      sentiment       u3    left   2  3   -     T      tie
    p2      sentiment       u1    right  3  3   T     T      tie
    p2      sentiment       u2    left   4  5   T     F      finetuned
    p3      recommendation  u1    left   1  4   F     T      finetuned
    p3      recommendation  u2    right  2  2   F     -      both_bad
    p3      recommendation  u3    right  3  4   T     F      finetuned
    p4      recommendation  u3    left   4  2   T     F      pretrained
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROMPTS = [
    # external_id, task, label, pretrained text, finetuned text
    ("p1", "sentiment", "negative", "Positive, I think.", "Negative. It broke."),
    ("p2", "sentiment", "positive", "It is neutral or positive", "positive!"),
    ("p3", "recommendation", "no", "Yes, buy it", "No. It leaks; not yes."),
    ("p4", "recommendation", "yes", "I know nothing", "No way"),
]
# prompt, rater index, finetuned side, pt score, ft score, pt correct, ft correct, preference by role
RATINGS = [
    ("p1", 0, "left", 2, 4, False, True, "finetuned"),
    ("p1", 1, "right", 3, 5, False, True, "finetuned"),
    ("p1", 2, "left", 2, 3, None, True, "tie"),
    ("p2", 0, "right", 3, 3, True, True, "tie"),
    ("p2", 1, "left", 4, 5, True, False, "finetuned"),
    ("p3", 0, "left", 1, 4, False, True, "finetuned"),
    ("p3", 1, "right", 2, 2, False, None, "both_bad"),
    ("p3", 2, "right", 3, 4, True, False, "finetuned"),
    ("p4", 2, "left", 4, 2, True, False, "pretrained"),
]
PRETRAINED_LATENCY = [(100.0, 10), (200.0, 20), (300.0, 30), (400.0, 40)]
FINETUNED_LATENCY = [(1000.0, 50), (2000.0, 60), (3000.0, 70), (None, None)]
TRAINING_METRICS = {
    "mode": "lora",
    "trainable_params": 4_505_600,
    "total_params": 1_104_553_984,
    "trainable_pct": 0.4079,
    "peak_memory_bytes": 3_000_000_000,
    "wall_seconds": 120.5,
    "tokens_per_s": 900.0,
    "epochs_run": 14,
    "best_epoch": 4,
    "early_stopped": True,
    "train_loss": [2.0, 1.5, 1.2],
    "val_loss": [2.1, 1.7, 1.6],
    "seed": 0,
}


def role_to_side_preference(preference: str, finetuned_side: str) -> str:
    if preference == "finetuned":
        return finetuned_side
    if preference == "pretrained":
        return "right" if finetuned_side == "left" else "left"
    return preference


@dataclass
class HandCampaign:
    campaign: object
    job: object
    annotators: list
    pairs: dict = field(default_factory=dict)  # external_id -> Pair
    ratings: list = field(default_factory=list)  # Rating rows in RATINGS order


def build_hand_campaign(
    *,
    ratings=RATINGS,
    prompts=PROMPTS,
    with_training: bool = True,
    name: str = "hand",
    n_annotators: int = 3,
    task_questions: dict | None = None,
) -> HandCampaign:
    from annotations.models import Assignment, Campaign, Pair, Rating, User
    from generation.models import Answer, Dataset, FinetuneRun, GenerationJob, ModelLoadAttempt, Prompt

    dataset = Dataset.objects.create(name=f"ds-{name}")
    run = None
    if with_training:
        run = FinetuneRun.objects.create(
            dataset=dataset,
            base_model="tiny",
            output_dir="/tmp/x",
            status="succeeded",
            metrics=TRAINING_METRICS,
        )
    # five prompts were requested; the fifth failed for both roles, so it has no pair
    job = GenerationJob.objects.create(
        name=f"job-{name}", dataset=dataset, total=10, status="partially_failed", finetune_run=run
    )
    ModelLoadAttempt.objects.create(job=job, kind="base", target="tiny", success=True)
    ModelLoadAttempt.objects.create(job=job, kind="adapter", target="adapter", success=False, error="missing")
    ModelLoadAttempt.objects.create(job=job, kind="adapter", target="adapter", success=True)
    campaign = Campaign.objects.create(name=name, job=job, overlap=3, task_questions=task_questions or {})
    annotators = [
        # no password: hashing one costs a second per user and these raters never log in
        User.objects.create(username=f"{name}-rater{i}", role="annotator")
        for i in range(n_annotators)
    ]
    hc = HandCampaign(campaign=campaign, job=job, annotators=annotators)
    for i, (external_id, task, label, pt_text, ft_text) in enumerate(prompts):
        prompt = Prompt.objects.create(
            dataset=dataset, external_id=external_id, task=task, text=f"q {i}", label=label
        )
        pt_lat, pt_tok = PRETRAINED_LATENCY[i % 4]
        ft_lat, ft_tok = FINETUNED_LATENCY[i % 4]
        pt = Answer.objects.create(
            job=job, prompt=prompt, role="pretrained", text=pt_text, latency_ms=pt_lat, output_tokens=pt_tok
        )
        ft = Answer.objects.create(
            job=job,
            prompt=prompt,
            role="finetuned",
            text=ft_text,
            latency_ms=ft_lat,
            output_tokens=ft_tok,
            fallback=(external_id == "p4"),
        )
        hc.pairs[external_id] = Pair.objects.create(
            campaign=campaign, prompt=prompt, pretrained_answer=pt, finetuned_answer=ft
        )
    for n, (external_id, rater, side, pt_score, ft_score, pt_ok, ft_ok, pref) in enumerate(ratings):
        assignment = Assignment.objects.create(
            pair=hc.pairs[external_id], annotator=annotators[rater], finetuned_side=side
        )
        left_is_ft = side == "left"
        hc.ratings.append(
            Rating.objects.create(
                assignment=assignment,
                score_left=ft_score if left_is_ft else pt_score,
                score_right=pt_score if left_is_ft else ft_score,
                correct_left=ft_ok if left_is_ft else pt_ok,
                correct_right=pt_ok if left_is_ft else ft_ok,
                preference=role_to_side_preference(pref, side),
                duration_ms=1000 * (n + 1),
            )
        )
    return hc


def generated_prompts(
    counts: dict[str, int], *, pt_text: str = "answer a", ft_text: str = "answer b"
) -> list:
    """Prompt rows for `build_hand_campaign`: ``counts`` prompts per task, ids ``<task>-<i>``, no label."""
    return [(f"{task}-{i}", task, "", pt_text, ft_text) for task, n in counts.items() for i in range(n)]


def one_rater_rows(prompt_ids, pt: int, ft: int, *, pt_ok=None, ft_ok=None, sides=("left", "right")) -> list:
    """Rating rows for `build_hand_campaign`: one rating per prompt by rater 0, sides alternating."""
    return [
        (external_id, 0, sides[i % len(sides)], pt, ft, pt_ok, ft_ok, "tie")
        for i, external_id in enumerate(prompt_ids)
    ]
