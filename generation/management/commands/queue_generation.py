"""`python manage.py queue_generation --dataset NAME --base MODEL [--gguf-file F] [--adapter DIR]
[--system NAME=ADAPTER_DIR ...] [--finetune-run ID [--kept-epochs]] [--max-new-tokens N]
[--batch-size N] [--chunk-prompts N] [--do-sample [--temperature T] [--top-p P]] [--wait]`

`--system` (repeatable) adds a further system, another adapter on the same base; `--kept-epochs` adds
one per kept epoch of the `--finetune-run` (named epoch-NNN). Bad input: a one-line error, a non-zero
exit, nothing created.

Prints the job id alone on the last line of stdout. With `--wait` it follows the job on stderr with a
progress bar (answers done/total, output tokens per second, ETA) and exits non-zero unless it succeeded.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.configs import ConfigError, GenerationSettings
from generation.job_systems import generated_system_names
from generation.jobs import chunk_prompts, job_submit
from generation.models import FINISHED_STATUSES, GenerationJob, JobStatus
from generation.selectors import Progress, job_progress
from generation.workers import worker_census

# the option that names a setting, where it is not the setting's name with dashes
FLAGS = {"base_model": "base", "adapter_path": "adapter", "systems": "system"}


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
        + ("  (no live worker)" if progress.waiting_for_worker else "")
    )


def _system(value: str) -> tuple[str, str]:
    """NAME=ADAPTER_DIR as (name, folder); CommandError for anything else."""
    name, sep, folder = value.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise CommandError(f"--system: give NAME=ADAPTER_DIR, not {value!r}")
    return name.strip(), folder.strip()


class Command(BaseCommand):
    help = "Queue a generation job (every system for every prompt of a dataset); prints the job id."

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
        parser.add_argument(
            "--system",
            action="append",
            default=[],
            metavar="NAME=ADAPTER_DIR",
            help="a further system: this adapter on the same base, its answers named NAME (repeatable)",
        )
        parser.add_argument(
            "--kept-epochs",
            action="store_true",
            help="also answer with every kept epoch of the --finetune-run (systems epoch-NNN)",
        )
        parser.add_argument("--max-new-tokens", type=int, default=GenerationSettings.max_new_tokens)
        parser.add_argument("--batch-size", type=int, default=GenerationSettings.batch_size)
        parser.add_argument("--seed", type=int, default=GenerationSettings.seed)
        parser.add_argument(
            "--chunk-prompts",
            type=int,
            default=None,
            help=f"prompts per worker task (default {chunk_prompts()})",
        )
        parser.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
        parser.add_argument("--temperature", type=float, default=None, help="with --do-sample")
        parser.add_argument("--top-p", type=float, default=None, help="with --do-sample")
        parser.add_argument(
            "--prompt-limit", type=int, default=None, help="answer only the dataset's first N prompts"
        )
        parser.add_argument("--name", default="", help="job name (default: dataset / model)")
        parser.add_argument("--wait", action="store_true", help="follow the job until it finishes")
        parser.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["kept_epochs"] and options["finetune_run"] is None:
            raise CommandError("--kept-epochs: needs --finetune-run")
        try:
            job = job_submit(
                dataset=options["dataset"],
                base_model=options["base"],
                gguf_file=options["gguf_file"],
                adapter_path=options["adapter"],
                finetune_run_id=options["finetune_run"],
                settings=GenerationSettings.from_dict(options),
                name=options["name"],
                systems=[_system(value) for value in options["system"]],
                kept_epochs=options["kept_epochs"],
            )
        except ConfigError as exc:
            flag = FLAGS.get(exc.field, exc.field.replace("_", "-"))
            raise CommandError(f"--{flag}: {exc.message}") from None
        if job.status == JobStatus.FAILED:  # job_submit re-read it after queueing, which may have failed
            self.stdout.write(str(job.pk))
            raise CommandError(f"job {job.pk} failed: {job.error}")
        k = len(generated_system_names(job))
        what = "2 roles" if k == 2 else f"{k} systems"
        self.stderr.write(f"queued job {job.pk}: {job.total} answers ({job.total // k} prompts x {what})")
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
            line = progress_line(job_progress(job, census=worker_census()))
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
