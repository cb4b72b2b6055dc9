"""`python manage.py queue_generation --dataset NAME --base MODEL [--gguf-file F] [--adapter DIR]
[--max-new-tokens N] [--batch-size N] [--chunk-prompts N] [--wait]`

Prints the job id alone on the last line of stdout. With `--wait` it follows the job on stderr with a
progress bar (answers done/total, output tokens per second, ETA) and exits non-zero unless it succeeded.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from generation.models import FINISHED_STATUSES, GenerationJob, JobStatus
from generation.selectors import Progress, job_progress
from generation.services import (
    DEFAULT_SETTINGS,
    JobInputError,
    dataset_get,
    job_create,
    job_queue,
)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def progress_line(progress: Progress, width: int = 30) -> str:
    share = progress.done / progress.total if progress.total else 0.0
    filled = round(share * width)
    rate = f"{progress.tokens_per_s:.1f} tok/s" if progress.tokens_per_s else "- tok/s"
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {progress.done}/{progress.total} answers  {rate}  "
        f"ETA {_clock(progress.eta_s)}  {progress.status}"
    )


class Command(BaseCommand):
    help = "Queue a generation job (both roles for every prompt of a dataset); prints the job id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", required=True, help="dataset name (or id)")
        parser.add_argument(
            "--base",
            default="",
            help="base model: hub id, local folder, .gguf path or smollm2-demo (default: the run's)",
        )
        parser.add_argument("--gguf-file", default="", help="GGUF file name inside the --base folder")
        parser.add_argument("--adapter", default="", help="peft adapter folder for the fine-tuned role")
        parser.add_argument(
            "--finetune-run", type=int, default=None, help="use the adapter of this finished LoRA run"
        )
        parser.add_argument("--max-new-tokens", type=int, default=64)
        parser.add_argument("--batch-size", type=int, default=DEFAULT_SETTINGS["batch_size"])
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--chunk-prompts",
            type=int,
            default=None,
            help=f"prompts per worker task (default {DEFAULT_SETTINGS['batch_size'] // 2})",
        )
        parser.add_argument("--name", default="", help="job name (default: dataset / model)")
        parser.add_argument("--wait", action="store_true", help="follow the job until it finishes")
        parser.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with transaction.atomic():
                job = job_create(
                    dataset=dataset_get(options["dataset"]),
                    base_model=options["base"],
                    gguf_file=options["gguf_file"],
                    adapter_path=options["adapter"],
                    finetune_run_id=options["finetune_run"],
                    max_new_tokens=options["max_new_tokens"],
                    batch_size=options["batch_size"],
                    seed=options["seed"],
                    name=options["name"],
                    chunk_size=options["chunk_prompts"],
                )
                job_queue(job)
        except JobInputError as exc:
            flag = {"base_model": "base", "adapter_path": "adapter", "chunk_prompts": "chunk-prompts"}.get(
                exc.field, exc.field.replace("_", "-")
            )
            raise CommandError(f"--{flag}: {exc.message}") from None
        job.refresh_from_db()  # queueing ran on commit; it may have failed the job
        if job.status == JobStatus.FAILED:
            self.stdout.write(str(job.pk))
            raise CommandError(f"job {job.pk} failed: {job.error}")
        self.stderr.write(f"queued job {job.pk}: {job.total} answers ({job.total // 2} prompts x 2 roles)")
        if options["wait"]:
            job = self._follow(job, options["poll"])
        self.stdout.write(str(job.pk))
        if options["wait"] and job.status != JobStatus.SUCCEEDED:
            raise CommandError(f"job {job.pk} {job.status}: {job.error or 'no error recorded'}")

    def _follow(self, job: GenerationJob, poll: float) -> GenerationJob:
        interactive = sys.stderr.isatty()
        last = ""
        last_print = 0.0
        while True:
            job.refresh_from_db()
            line = progress_line(job_progress(job))
            finished = job.status in FINISHED_STATUSES
            if interactive:
                self.stderr.write(f"\r{line}", ending="\n" if finished else "")
                self.stderr.flush()
            elif line != last and (finished or time.monotonic() - last_print >= 5):
                self.stderr.write(line)
                last, last_print = line, time.monotonic()
            if finished:
                return job
            time.sleep(poll)
