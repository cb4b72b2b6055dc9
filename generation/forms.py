"""The admin's browser forms for generation: uploading a prompts or answers file, and queueing a job.

Both are thin: an upload is handed to generation.importing (what `import_prompts` / `import_answers`
run: every row or none, the first bad row named by line and field), a job to `job_submit` with its
settings checked by `GenerationSettings` (what the API and `queue_generation` use). A ConfigError from
either is shown beside the field it names."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import SuspiciousFileOperation
from django.utils.text import get_valid_filename

from .configs import ConfigError, GenerationSettings
from .importing import DataImportError, import_answers, import_prompts, parse_system_names
from .jobs import job_submit
from .models import Dataset, FinetuneRun, GenerationJob, JobStatus, ModelSpec

# an upload bigger than this is refused before it is read (the importer holds a file in memory)
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
DEMO_MODEL = "smollm2-demo"
LIMITS = GenerationSettings.LIMITS


class UploadForm(forms.Form):
    """A prompts file (JSONL or CSV) into a dataset, or an answers file (JSONL) as a finished job."""

    KIND_PROMPTS, KIND_ANSWERS = "prompts", "answers"

    kind = forms.ChoiceField(
        choices=[
            (KIND_PROMPTS, "Prompts (JSONL or CSV): added to a dataset, created if new"),
            (KIND_ANSWERS, "Ready-made answers (JSONL with pretrained and finetuned texts): a finished job"),
        ],
        initial=KIND_PROMPTS,
        widget=forms.RadioSelect,
        label="What the file holds",
    )
    file = forms.FileField(label="File (.jsonl or .csv)")
    name = forms.CharField(
        max_length=200,
        label="Dataset name (prompts) or job name (answers)",
        help_text="Answers make a new dataset of this name too.",
    )
    systems = forms.CharField(
        required=False,
        max_length=1000,
        label="Further systems (answers only)",
        help_text="comma-separated: each is a column of the file with that system's answers, e.g. gpt-4o",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(f"larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
        return upload

    def clean_systems(self) -> list[str]:
        try:
            return parse_system_names(self.cleaned_data.get("systems", ""), option="")
        except DataImportError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("systems") and data.get("kind") == self.KIND_PROMPTS:
            self.add_error("systems", "Only an answers file has further systems.")
        return data

    def save(self) -> Dataset | GenerationJob | None:
        """Import the file; None (with the error on the form) when any row is bad: nothing is saved then."""
        upload = self.cleaned_data["file"]
        with tempfile.TemporaryDirectory(prefix="evalsite-upload-") as folder:
            path = Path(folder) / _file_name(upload.name)
            with path.open("wb") as out:
                for piece in upload.chunks():
                    out.write(piece)
            try:
                if self.cleaned_data["kind"] == self.KIND_ANSWERS:
                    return import_answers(
                        path, job_name=self.cleaned_data["name"], systems=self.cleaned_data["systems"]
                    )
                dataset, self.imported = import_prompts(path, dataset_name=self.cleaned_data["name"])
                return dataset
            except DataImportError as exc:
                self.add_error("file", str(exc))
                return None


def _file_name(name: str) -> str:
    """The uploaded file's own name (error messages name it), made safe to write in a temporary folder."""
    try:
        return get_valid_filename(Path(name or "").name)
    except SuspiciousFileOperation:
        return "upload" + Path(name or "").suffix.lower()


# ---------------------------------------------------------------------------------------------
# Queueing a job


def _base_value(base_model: str, gguf_file: str) -> str:
    return "base:" + json.dumps([base_model, gguf_file])


def model_choices() -> list[tuple[str, Any]]:
    """The model picker: "other" (typed below), finished LoRA runs (their adapter and base), and the
    base models jobs and runs have used (plus the demo model)."""
    runs = (
        FinetuneRun.objects.filter(status=JobStatus.SUCCEEDED, mode=FinetuneRun.Mode.LORA)
        .select_related("dataset")
        .order_by("-id")[:200]
    )
    run_choices = []
    for run in runs:
        trained_on = run.dataset.name if run.dataset else (run.metrics or {}).get("dataset")
        label = f"run #{run.pk}: {run.base_model or '?'} + adapter {run.output_dir}"
        run_choices.append((f"run:{run.pk}", f"{label} (trained on {trained_on})" if trained_on else label))
    bases = {(DEMO_MODEL, "")}
    bases.update(ModelSpec.objects.filter(adapter_path="").values_list("base_model", "gguf_file"))
    bases.update(FinetuneRun.objects.exclude(base_model="").values_list("base_model", "gguf_file"))
    base_choices = [
        (_base_value(base, gguf), f"{base} [{gguf}]" if gguf else base) for base, gguf in sorted(bases)
    ]
    choices: list[tuple[str, Any]] = [("", "Other: type a base model below")]
    if run_choices:
        choices.append(("Finished fine-tuning runs (adapter + its base)", run_choices))
    choices.append(("Base models (optionally with an adapter folder below)", base_choices))
    return choices


def _optional_int(label: str, **kwargs: Any) -> forms.IntegerField:
    return forms.IntegerField(required=False, label=label, **kwargs)


class JobQueueForm(forms.Form):
    """What to run (dataset, model, adapter, first N prompts) and how (every GenerationSettings field).
    Empty settings take GenerationSettings' defaults, as the API does."""

    dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.order_by("name"), to_field_name="name", empty_label=None
    )
    model = forms.ChoiceField(required=False, label="Model")
    kept_epochs = forms.BooleanField(
        required=False,
        label="Also answer with the run's kept epochs",
        help_text="with a fine-tuning run: each epoch it kept is one more system (epoch-NNN)",
    )
    base_model = forms.CharField(
        required=False,
        max_length=1000,
        label="Base model",
        help_text="with Other: hub id, local folder, .gguf path",
    )
    gguf_file = forms.CharField(
        required=False, max_length=1000, label="GGUF file", help_text="with Other: a .gguf inside that folder"
    )
    adapter_path = forms.CharField(
        required=False, max_length=1000, label="Adapter folder", help_text="fine-tuned role; not with a run"
    )
    prompt_limit = _optional_int("Prompt limit", min_value=1, help_text="the first N prompts; empty: all")
    max_new_tokens = _optional_int(
        "Max new tokens", min_value=LIMITS["max_new_tokens"][0], max_value=LIMITS["max_new_tokens"][1]
    )
    batch_size = _optional_int(
        "Batch size (rows)", min_value=LIMITS["batch_size"][0], max_value=LIMITS["batch_size"][1]
    )
    chunk_prompts = _optional_int(
        "Prompts per task", min_value=1, help_text="per worker task; empty: the site's"
    )
    seed = _optional_int("Seed")
    do_sample = forms.BooleanField(required=False, label="Sample", help_text="off: greedy")
    temperature = forms.FloatField(
        required=False, label="Temperature", help_text="with sampling; empty: the model's"
    )
    top_p = forms.FloatField(required=False, label="Top-p", help_text="with sampling; empty: the model's")
    name = forms.CharField(required=False, max_length=200, label="Job name", help_text="optional")

    SETTING_FIELDS = (
        "max_new_tokens", "batch_size", "seed", "do_sample", "temperature", "top_p", "chunk_prompts",
        "prompt_limit",
    )  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = model_choices()
        defaults = GenerationSettings()
        for name in ("max_new_tokens", "batch_size", "seed"):
            self.fields[name].initial = getattr(defaults, name)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        choice = data.get("model") or ""
        target = {"base_model": data.get("base_model", "").strip(), "gguf_file": data.get("gguf_file", "")}
        run_id = None
        if data.get("kept_epochs") and not choice.startswith("run:"):
            self.add_error("kept_epochs", "Pick a finished fine-tuning run above to use its kept epochs.")
            return data
        if choice.startswith("run:"):
            run_id, target = int(choice[4:]), {"base_model": "", "gguf_file": ""}
        elif choice.startswith("base:"):
            base, gguf = json.loads(choice[5:])
            target = {"base_model": base, "gguf_file": gguf}
        elif not target["base_model"]:
            self.add_error("base_model", "Pick a model above or type a base model here.")
            return data
        try:
            settings = GenerationSettings.from_dict({k: data.get(k) for k in self.SETTING_FIELDS})
        except ConfigError as exc:
            self._config_error(exc)
            return data
        self.submit_kwargs = {
            "dataset": data["dataset"], **target, "adapter_path": data.get("adapter_path", "").strip(),
            "finetune_run_id": run_id, "settings": settings, "name": data.get("name", "").strip(),
            "kept_epochs": bool(data.get("kept_epochs")),
        }  # fmt: skip
        return data

    def _config_error(self, exc: ConfigError) -> None:
        field = exc.field
        if field == "finetune_run" or (field == "base_model" and self.cleaned_data.get("model")):
            field = "model"
        self.add_error(field if field in self.fields else None, exc.message)

    def save(self, *, created_by: AbstractBaseUser | None) -> GenerationJob | None:
        """Queue the job through `job_submit`; None (the error on the form, nothing created) on bad input."""
        try:
            return job_submit(**self.submit_kwargs, created_by=created_by)
        except ConfigError as exc:
            self._config_error(exc)
            return None
