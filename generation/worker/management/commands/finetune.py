"""`python manage.py finetune --dataset NAME --base MODEL --output DIR`: LoRA (or --full) fine-tuning.

Prints one progress line per epoch and the FinetuneRun id alone on the last line. With --queue the run
is sent to a Celery worker instead (the command returns at once, printing the queued run's id)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.configs import DEFAULT_TARGET_MODULES, ConfigError, FinetuneConfig
from generation.jobs import JobInputError
from generation.ml.finetune import EpochProgress, FinetuneError
from generation.ml.modeling import ModelLoadError
from generation.models import FinetuneRun, JobStatus
from generation.runs import finetune_run_submit
from generation.worker.training import finetune_run_execute

# the option that names a setting, where it is not the setting's name with dashes
FLAGS = {"base_model": "base", "output_dir": "output"}


class Command(BaseCommand):
    help = "Fine-tune a base model on a dataset's reference answers (LoRA by default) with early stopping."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dataset", required=True, help="dataset name; prompts with a reference are used"
        )
        parser.add_argument("--base", required=True, help="hub id, local folder, .gguf file, or smollm2-demo")
        parser.add_argument("--gguf-file", default="", help="GGUF file inside the --base folder")
        parser.add_argument(
            "--output", required=True, help="folder for the adapter (or model) and training.json"
        )
        parser.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
        parser.add_argument("--epochs", type=int, default=50)
        parser.add_argument(
            "--patience",
            type=int,
            default=10,
            help="stop after this many epochs without a lower validation loss",
        )
        parser.add_argument(
            "--lr", type=float, default=None, help="learning rate (default 2e-4 LoRA, 2e-5 full)"
        )
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument(
            "--max-length", type=int, default=384, help="tokens per example (prompt + answer)"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--val-fraction", type=float, default=0.1)
        parser.add_argument("--r", type=int, default=16, help="LoRA rank")
        parser.add_argument("--alpha", type=int, default=32, help="LoRA alpha")
        parser.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout")
        parser.add_argument(
            "--target-modules",
            default=",".join(DEFAULT_TARGET_MODULES),
            help="comma-separated module names LoRA wraps",
        )
        parser.add_argument("--gradient-checkpointing", action="store_true")
        parser.add_argument("--max-examples", type=int, default=None, help="use only the first N prompts")
        parser.add_argument(
            "--keep-epochs",
            default="",
            help="also keep these epochs' weights, e.g. 5,10,25 (folders epochs/epoch-NNN in --output)",
        )
        parser.add_argument("--keep-every", type=int, default=None, help="also keep every N-th epoch's weights")
        parser.add_argument(
            "--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)"
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help="torch CPU threads (default: torch's choice; 1 is often faster on a busy CPU)",
        )
        parser.add_argument(
            "--queue",
            action="store_true",
            help="send the run to a Celery worker and print its id, instead of training here",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = FinetuneConfig.from_options({**options, "mode": "full" if options["full"] else "lora"})
        except ConfigError as exc:
            flag = FLAGS.get(exc.field, exc.field.replace("_", "-"))
            raise CommandError(exc.message if exc.field == "mode" else f"--{flag} {exc.message}") from exc
        if options["queue"]:
            self._queue(config, options)
            return
        try:
            run = finetune_run_execute(
                dataset_name=options["dataset"],
                base_model=options["base"],
                gguf_file=options["gguf_file"],
                output_dir=options["output"],
                config=config,
                on_epoch=self._progress,
            )
        except (FinetuneError, ModelLoadError) as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            # the run row is already marked failed with the traceback; the user gets one line
            raise CommandError(f"fine-tuning failed: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
        m = run.metrics
        self.stdout.write(
            f"{m['mode']}: best epoch {m['best_epoch']} of {m['epochs_run']}"
            f"{' (early stop)' if m['early_stopped'] else ''}; trainable {m['trainable_params']:,} of "
            f"{m['total_params']:,} ({m['trainable_pct']}%); {m['wall_seconds']} s; wrote {run.output_dir}"
        )
        self.stdout.write(str(run.pk))

    def _progress(self, p: EpochProgress) -> None:
        mark = " *" if p.improved else ""
        self.stdout.write(
            f"epoch {p.epoch}/{p.epochs}  train_loss {p.train_loss:.4f}  val_loss {p.val_loss:.4f}  "
            f"best epoch {p.best_epoch} ({p.best_val_loss:.4f}){mark}"
        )
        self.stdout.flush()

    def _queue(self, config: FinetuneConfig, options: dict[str, Any]) -> None:
        try:
            run: FinetuneRun = finetune_run_submit(
                dataset=options["dataset"],
                base_model=options["base"],
                gguf_file=options["gguf_file"],
                output_dir=options["output"],
                config=config,
            )
        except JobInputError as exc:
            flag = FLAGS.get(exc.field, exc.field.replace("_", "-"))
            raise CommandError(f"--{flag}: {exc.message}") from exc
        if run.status == JobStatus.FAILED:  # the broker was asked after the commit: a failure shows here
            self.stdout.write(str(run.pk))
            raise CommandError(f"run {run.pk} failed: {run.error}")
        self.stdout.write(f"queued fine-tuning run {run.pk} ({run.mode}); follow it at /runs/{run.pk}/")
        self.stdout.write(str(run.pk))
