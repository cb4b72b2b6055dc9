"""`make demo-checkpoints`: a campaign that ranks five systems, checkpoints of one run among them.

Steps, on the same SQLite database and worker set-up as `make demo` (it reuses its steps):
1. import 40 of the demo evaluation queries (10 per task) and the demo training set;
2. fine-tune SmolLM2-135M-Instruct with LoRA for 3 epochs on the first 48 training examples, keeping
   every epoch's adapter (`finetune --keep-every 1`); early stopping keeps the epoch of lowest
   validation loss as the run's adapter (the "finetuned" system);
3. one generation job answers the 40 queries with the base model, the kept adapter and the other kept
   epochs (`queue_generation --finetune-run RUN --kept-epochs`): one base load serves them all;
4. an "outside" system's answers are imported beside them (`import_answers --add-system outside`):
   the queries' hand-written reference answers stand in for a hosted model's answers here;
5. one campaign over all of them (`create_campaign`): each pair shows two systems, every pair of
   systems covered in turn within each task; then the site is served as by `make demo`.

The report's `systems` section ranks the systems once annotators have rated, and sets the epochs'
human strength against their validation loss. Running it again reuses what is already there.
"""

from __future__ import annotations

import json
import time

from run_demo import ROOT, check_port, django_query, import_once, manage, open_and_serve, say

DATASET = "demo-eval-40"
TRAIN_DATASET = "demo-train"
RUN_OUTPUT = "var/demo-checkpoints"
CAMPAIGN = "Demo: review answers, checkpoint round"
PER_TASK = 10
OUTSIDE = "outside"


def write_subset() -> tuple[str, str]:
    """var/demo-eval-40.jsonl (the first PER_TASK queries of each task) and the outside system's answers
    for them (their reference texts, keyed by external_id)."""
    rows = [json.loads(line) for line in (ROOT / "demo/data/eval.jsonl").read_text().splitlines() if line]
    taken: dict[str, int] = {}
    subset = []
    for row in rows:
        if taken.get(row["task"], 0) < PER_TASK:
            taken[row["task"]] = taken.get(row["task"], 0) + 1
            subset.append(row)
    prompts, outside = ROOT / "var/demo-eval-40.jsonl", ROOT / "var/demo-outside.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in subset))
    outside.write_text(
        "".join(json.dumps({"prompt_external_id": r["external_id"], "answer": r["reference"]}) + "\n" for r in subset)
    )
    return str(prompts.relative_to(ROOT)), str(outside.relative_to(ROOT))


def finetune_once() -> str:
    """The id of the finished run that wrote RUN_OUTPUT, training it first when there is none."""
    run_id = django_query(
        "from generation.models import FinetuneRun\n"
        f"r = FinetuneRun.objects.filter(output_dir__endswith={RUN_OUTPUT!r}, status='succeeded').order_by('-id').first()\n"
        "print(r.id if r else '')"
    )
    if run_id:
        return run_id
    say("fine-tuning 3 epochs on 48 examples, keeping every epoch (a few minutes on 2 cores)")
    return manage(
        "finetune", "--dataset", TRAIN_DATASET, "--base", "smollm2-demo", "--output", RUN_OUTPUT,
        "--epochs", "3", "--patience", "3", "--keep-every", "1", "--max-examples", "48",
        "--lr", "5e-4", "--batch-size", "8", "--max-length", "384", "--seed", "0", "--threads", "1",
    )


def job_once(run_id: str, outside_path: str) -> str:
    """The finished job of every system on DATASET (generated, then the outside answers added)."""
    job_id = django_query(
        "from generation.models import GenerationJob\n"
        f"j = GenerationJob.objects.filter(dataset__name={DATASET!r}, finetune_run_id={run_id}, "
        "status='succeeded').order_by('-id').first()\n"
        "print(j.id if j else '')"
    )
    if not job_id:
        say("generating: the base model, the kept adapter and the other kept epochs, one base load")
        job_id = manage(
            "queue_generation", "--dataset", DATASET, "--finetune-run", run_id, "--kept-epochs",
            "--max-new-tokens", "48", "--wait",
        )
    has_outside = django_query(
        f"from generation.models import JobSystem; print(JobSystem.objects.filter(job_id={job_id}, name={OUTSIDE!r}).exists())"
    )
    if has_outside != "True":
        say(f"importing the outside system's answers ({outside_path})")
        manage("import_answers", outside_path, "--add-system", OUTSIDE, "--job", job_id)
    systems = django_query(f"from generation.models import job_system_names; print(', '.join(job_system_names({job_id})))")
    say(f"job {job_id} has answers from: {systems}")
    return job_id


def main() -> None:
    started = time.monotonic()
    check_port()
    (ROOT / "var").mkdir(exist_ok=True)
    say("migrating the SQLite database (var/evalsite.sqlite3)")
    manage("migrate", "--noinput")
    prompts_path, outside_path = write_subset()
    import_once(prompts_path, DATASET, f"{PER_TASK * 4} evaluation queries, {PER_TASK} per task")
    import_once("demo/data/train.jsonl", TRAIN_DATASET, "the training set")
    run_id = finetune_once()
    say(f"fine-tuning run {run_id} finished")
    open_and_serve(lambda: job_once(run_id, outside_path), CAMPAIGN, started)


if __name__ == "__main__":
    main()
