"""Fine-tuning runs on the worker side: the training loop with early stopping, the saved adapter (or
model), the FinetuneRun row it keeps, and the `finetune` command. Everything trains the tiny random
llama for real, on the CPU. The training core without Django is tested in tests/ml/test_finetune.py."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from generation.ml.finetune import SPEC_KEYS, FinetuneError
from generation.models import Dataset, FailureKind, FinetuneRun, JobStatus
from generation.worker.training import finetune_run_execute
from tests.support.training_data import lora_tensors, tiny_config
from tests.support.training_data import make_review_dataset as make_dataset

# --- the training loop --------------------------------------------------------------------------


@pytest.mark.django_db
def test_early_stopping_stops_after_patience_and_writes_the_best_epochs_adapter(tiny_llama_dir, tmp_path):
    from safetensors.torch import load_file

    make_dataset()
    curve = [3.0, 2.0, 1.5, 1.7, 1.6, 1.9, 1.2]  # best at epoch 3; patience 3 stops after epoch 6
    snapshots = {}

    def scripted_validation(model, epoch):
        snapshots[epoch] = lora_tensors(model)
        return curve[epoch - 1]

    output = tmp_path / "adapter"
    run = finetune_run_execute(
        dataset_name="reviews",
        base_model=str(tiny_llama_dir),
        output_dir=output,
        config=tiny_config(epochs=10, patience=3),
        evaluate=scripted_validation,
    )

    metrics = json.loads((output / "training.json").read_text())
    assert metrics["epochs_run"] == 6
    assert metrics["best_epoch"] == 3
    assert metrics["early_stopped"] is True
    assert metrics["val_loss"] == curve[:6]
    # training is real: the adapter moved every epoch
    assert not all(snapshots[2][n].equal(snapshots[3][n]) for n in snapshots[3])
    saved = load_file(str(output / "adapter_model.safetensors"))
    assert saved and all(
        name.rsplit(".weight", 1)[0]
        in {n.replace(".default", "").rsplit(".weight", 1)[0] for n in snapshots[3]}
        for name in saved
    )
    best = {n.replace(".default", ""): t for n, t in snapshots[3].items()}
    last = {n.replace(".default", ""): t for n, t in snapshots[6].items()}
    for name, tensor in saved.items():
        assert tensor.equal(best[name]), name
    assert any(not saved[n].equal(last[n]) for n in saved)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED and run.metrics["best_epoch"] == 3


@pytest.mark.django_db
def test_a_run_that_never_loses_patience_runs_every_epoch_and_is_not_early_stopped(tiny_llama_dir, tmp_path):
    make_dataset()
    run = finetune_run_execute(
        dataset_name="reviews",
        base_model=str(tiny_llama_dir),
        output_dir=tmp_path / "a",
        config=tiny_config(epochs=3, patience=5),
        evaluate=lambda m, e: 5.0 - e,
    )
    assert (run.metrics["epochs_run"], run.metrics["best_epoch"], run.metrics["early_stopped"]) == (
        3,
        3,
        False,
    )


@pytest.mark.django_db
def test_training_json_has_the_spec_keys_and_consistent_values_and_the_adapter_changes_outputs(
    tiny_llama_dir, tmp_path
):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    make_dataset()
    output = tmp_path / "adapter"
    progress = []
    threads_before = torch.get_num_threads()
    run = finetune_run_execute(
        dataset_name="reviews",
        base_model=str(tiny_llama_dir),
        output_dir=output,
        config=tiny_config(epochs=4, patience=4),
        on_epoch=progress.append,
    )

    metrics = json.loads((output / "training.json").read_text())
    assert set(SPEC_KEYS) <= set(metrics)
    assert metrics["mode"] == "lora"
    assert len(metrics["train_loss"]) == len(metrics["val_loss"]) == metrics["epochs_run"] == 4
    best = min(range(4), key=lambda i: metrics["val_loss"][i]) + 1
    assert metrics["best_epoch"] == best
    assert metrics["val_loss"][-1] < metrics["val_loss"][0]  # a real model really learning
    assert metrics["val_loss_before_training"] > metrics["val_loss"][best - 1]
    assert metrics["train_loss"][-1] < metrics["train_loss"][0]
    assert metrics["trainable_params"] == 2 * 16 * ((64 + 64) * 2 + (64 + 32) * 2)
    assert metrics["trainable_pct"] == round(100 * metrics["trainable_params"] / metrics["total_params"], 4)
    assert metrics["lora"] == {
        "r": 16,
        "alpha": 32,
        "dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "bias": "none",
    }
    assert metrics["peak_memory_bytes"] > 0 and metrics["peak_memory_kind"] == "process_peak_rss"
    assert metrics["wall_seconds"] > 0 and metrics["tokens_per_s"] > 0
    assert metrics["seed"] == 0 and metrics["train_examples"] == 18 and metrics["val_examples"] == 2
    assert len(metrics["data_sha256"]) == 64 and set(metrics["versions"]) >= {"torch", "transformers", "peft"}
    assert metrics["status"] == "succeeded" and metrics["base_model"] == str(tiny_llama_dir)
    assert [p.epoch for p in progress] == [1, 2, 3, 4]
    assert metrics["config"]["threads"] == 1 and torch.get_num_threads() == threads_before
    assert sorted(p.name for p in output.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "training.json",
    ]
    assert not list(tmp_path.glob(".*partial*"))
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED and run.metrics == metrics and run.finished_at is not None
    assert run.mode == "lora" and run.dataset.name == "reviews" and run.output_dir == str(output)

    base = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)).eval()
    ids = torch.tensor([[1, 20, 30, 40, 50, 60]])
    with torch.no_grad():
        before = base(ids).logits
        tuned = PeftModel.from_pretrained(base, str(output)).eval()
        after = tuned(ids).logits
    assert not torch.allclose(before, after, atol=1e-4)


@pytest.mark.django_db
def test_full_fine_tuning_trains_every_parameter_and_writes_a_model_folder(tiny_llama_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    make_dataset()
    output = tmp_path / "full"
    run = finetune_run_execute(
        dataset_name="reviews",
        base_model=str(tiny_llama_dir),
        output_dir=output,
        config=tiny_config(mode="full", epochs=2, lr=None),
    )
    m = run.metrics
    assert m["mode"] == "full" and m["lora"] is None and m["config"]["lr"] == 2e-5
    assert m["trainable_params"] == m["total_params"] and m["trainable_pct"] == 100.0
    AutoModelForCausalLM.from_pretrained(str(output))
    AutoTokenizer.from_pretrained(str(output))


@pytest.mark.django_db
def test_a_run_that_raises_mid_training_is_marked_failed_and_writes_nothing(tiny_llama_dir, tmp_path):
    make_dataset()

    def broken_validation(model, epoch):
        if epoch == 2:
            raise RuntimeError("disk on fire")
        return 1.0

    output = tmp_path / "adapter"
    with pytest.raises(RuntimeError, match="disk on fire"):
        finetune_run_execute(
            dataset_name="reviews",
            base_model=str(tiny_llama_dir),
            output_dir=output,
            config=tiny_config(epochs=5),
            evaluate=broken_validation,
        )
    run = FinetuneRun.objects.get()
    assert run.status == JobStatus.FAILED and run.failure_kind == FailureKind.ERROR
    assert run.error.startswith("RuntimeError: disk on fire")
    assert run.finished_at is not None
    assert run.metrics["epochs_run"] == 1 and run.metrics["status"] == "failed"
    assert not output.exists() and not list(tmp_path.glob(".*"))


# --- the command --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_command_prints_each_epoch_and_the_run_id_on_the_last_line(tiny_llama_dir, tmp_path):
    make_dataset()
    out = StringIO()
    call_command(
        "finetune",
        "--dataset",
        "reviews",
        "--base",
        str(tiny_llama_dir),
        "--output",
        str(tmp_path / "a"),
        "--epochs",
        "2",
        "--patience",
        "1",
        "--batch-size",
        "4",
        "--max-length",
        "128",
        "--r",
        "4",
        "--alpha",
        "8",
        "--target-modules",
        "q_proj,v_proj",
        "--device",
        "cpu",
        "--threads",
        "1",
        stdout=out,
    )
    lines = out.getvalue().strip().splitlines()
    run = FinetuneRun.objects.get()
    assert lines[-1] == str(run.pk)
    assert lines[0].startswith("epoch 1/2  train_loss ")
    assert run.metrics["lora"]["target_modules"] == ["q_proj", "v_proj"] and run.metrics["lora"]["r"] == 4
    assert run.metrics["trainable_params"] == 2 * 4 * ((64 + 64) + (64 + 32))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "setup, args, message",
    [
        (lambda: None, ["--dataset", "nope"], "unknown dataset 'nope'"),
        (
            lambda: Dataset.objects.create(name="empty"),
            ["--dataset", "empty"],
            "dataset 'empty' has no prompts",
        ),
        (
            lambda: make_dataset("bare", references=False),
            ["--dataset", "bare"],
            "dataset 'bare' has no prompt with a reference answer to train on",
        ),
        (
            lambda: make_dataset(),
            ["--dataset", "reviews", "--base", "/no/such/model"],
            "model folder not found: /no/such/model",
        ),
        (lambda: make_dataset(), ["--dataset", "reviews", "--epochs", "0"], "--epochs must be at least 1"),
        (
            lambda: make_dataset(),
            ["--dataset", "reviews", "--target-modules", "nonexistent_proj"],
            "target modules not found in the model: nonexistent_proj",
        ),
    ],
)
def test_the_command_rejects_bad_input_with_one_line_and_writes_nothing(
    tiny_llama_dir, tmp_path, setup, args, message
):
    setup()
    argv = ["--base", str(tiny_llama_dir), "--output", str(tmp_path / "out"), "--device", "cpu", *args]
    with pytest.raises(CommandError) as caught:
        call_command("finetune", *argv, stdout=StringIO())
    assert str(caught.value).endswith(message) and "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".*"))
    assert not FinetuneRun.objects.exists()


@pytest.mark.django_db
def test_a_run_row_given_by_a_queue_is_marked_failed_on_bad_input(tmp_path):
    run = FinetuneRun.objects.create(base_model="x", output_dir=str(tmp_path))
    with pytest.raises(FinetuneError):
        finetune_run_execute(
            dataset_name="nope", base_model="x", output_dir=tmp_path / "o", config=tiny_config(), run=run
        )
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and run.error == "unknown dataset 'nope'"
    assert run.failure_kind == FailureKind.BAD_INPUT
