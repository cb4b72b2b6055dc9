"""Fine-tuning: parameter counts, the training loop with early stopping, the saved adapter, the run row
and the `finetune` command. Everything trains the tiny random llama for real, on the CPU."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from generation.ml.finetune import (
    SPEC_KEYS,
    FinetuneConfig,
    build_examples,
    count_lora_params,
    count_parameters,
    lora_param_count,
    prepare_model,
    split_examples,
)
from generation.models import Dataset, FinetuneRun, JobStatus, Prompt
from generation.worker.training import finetune_run_execute

REVIEWS = [
    (
        "The blender is loud and broke after a week.",
        "What is the sentiment?",
        "Negative. It broke after a week.",
    ),
    ("I love the sound quality of these headphones.", "What is the sentiment?", "Positive. Great sound."),
    ("The tent leaks in the rain and the zipper is weak.", "Would you recommend it?", "No. The tent leaks."),
    ("This kettle boils water quickly.", "Would you recommend it?", "Yes. It is quick."),
    ("The phone battery lasts two days and the screen is bright.", "Which features?", "battery, screen"),
]


def make_dataset(name: str = "reviews", n: int = 20, *, references: bool = True) -> Dataset:
    dataset = Dataset.objects.create(name=name)
    Prompt.objects.bulk_create(
        Prompt(
            dataset=dataset,
            external_id=f"p{i:03d}",
            task="sentiment",
            context=REVIEWS[i % 5][0],
            text=REVIEWS[i % 5][1],
            reference=REVIEWS[i % 5][2] if references else "",
        )
        for i in range(n)
    )
    return dataset


def tiny_config(**overrides) -> FinetuneConfig:
    values = {
        "epochs": 3,
        "patience": 2,
        "batch_size": 4,
        "max_length": 128,
        "lr": 5e-3,
        "device": "cpu",
        "seed": 0,
        "threads": 1,  # oversubscribed threads on a shared CPU made these tiny runs up to 10x slower
    }
    values.update(overrides)
    return FinetuneConfig(**values)


def lora_tensors(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


# --- parameter counts ---------------------------------------------------------------------------


def test_lora_trainable_count_equals_sum_of_r_times_in_plus_out_on_the_tiny_model(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir))
    base_total = count_parameters(base)[1]
    config = FinetuneConfig(r=8)
    # hidden 64, 4 heads of 16, 2 kv heads: q,o are 64->64, k,v are 64->32; 2 layers
    expected = 2 * 8 * ((64 + 64) * 2 + (64 + 32) * 2)
    assert lora_param_count(base, 8, config.target_modules) == expected
    assert count_lora_params(base.config, 8, config.target_modules) == expected

    model = prepare_model(base, config)
    trainable, with_adapter = count_parameters(model)
    assert trainable == expected
    assert with_adapter == base_total + expected


def test_tinyllama_config_with_lora_r16_on_qkvo_trains_4505600_of_1100048384_parameters():
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=22,
        num_attention_heads=32,
        num_key_value_heads=4,
        vocab_size=32000,
        tie_word_embeddings=False,
    )
    assert count_lora_params(config, 16, ["q_proj", "k_proj", "v_proj", "o_proj"]) == 4_505_600

    with torch.device("meta"):  # no weights are allocated: 1.1 B parameters cost nothing here
        base = AutoModelForCausalLM.from_config(config)
    assert count_parameters(base) == (1_100_048_384, 1_100_048_384)
    model = get_peft_model(
        base,
        LoraConfig(
            r=16,
            lora_alpha=32,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            task_type="CAUSAL_LM",
        ),
    )
    trainable, with_adapter = count_parameters(model)
    assert trainable == 4_505_600
    assert with_adapter - trainable == 1_100_048_384
    assert round(100 * trainable / 1_100_048_384, 4) == 0.4096  # "0.41%", not "1.1M = 0.1%"


# --- data ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_examples_train_on_the_generation_input_and_count_loss_on_the_answer_only(tiny_llama_dir):
    from generation.ml.modeling import load_tokenizer, resolve_base
    from generation.ml.prompting import render_prompt

    tokenizer = load_tokenizer(resolve_base(str(tiny_llama_dir)))
    prompt = make_dataset(n=1).prompts.get()
    [example], counts = build_examples(tokenizer, [prompt], max_length=512)

    prompt_ids = tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(prompt.reference, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert example.input_ids == prompt_ids + answer_ids
    assert example.labels == [-100] * len(prompt_ids) + answer_ids
    assert counts == {"truncated": 0, "dropped_too_long": 0}

    [cut], counts = build_examples(tokenizer, [prompt], max_length=len(prompt_ids) + 2)
    assert cut.labels[-2:] == answer_ids[:2] and counts["truncated"] == 1
    assert build_examples(tokenizer, [prompt], max_length=len(prompt_ids))[1]["dropped_too_long"] == 1


@pytest.mark.django_db
def test_the_validation_split_is_deterministic_for_a_seed(tiny_llama_dir):
    from generation.ml.modeling import load_tokenizer, resolve_base

    tokenizer = load_tokenizer(resolve_base(str(tiny_llama_dir)))
    examples, _ = build_examples(tokenizer, list(make_dataset(n=30).prompts.all()), max_length=256)
    train, val = split_examples(examples, 0.1, seed=3)
    assert len(val) == 3 and len(train) == 27
    assert {e.external_id for e in train}.isdisjoint(e.external_id for e in val)
    again = split_examples(list(reversed(examples)), 0.1, seed=3)[1]
    assert [e.external_id for e in again] == [e.external_id for e in val]
    assert [e.external_id for e in split_examples(examples, 0.1, seed=4)[1]] != [e.external_id for e in val]


@pytest.mark.django_db
def test_the_answer_loss_equals_the_models_own_loss_on_the_same_labels(tiny_llama_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from generation.ml.finetune import answer_loss_sum, collate
    from generation.ml.modeling import load_tokenizer, resolve_base

    tokenizer = load_tokenizer(resolve_base(str(tiny_llama_dir)))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)).eval()
    examples, _ = build_examples(tokenizer, list(make_dataset(n=5).prompts.all()), max_length=256)
    batch = collate(examples, tokenizer.pad_token_id, "cpu")
    with torch.no_grad():
        loss_sum, n = answer_loss_sum(model, batch, "cpu")
        reference = model(**batch).loss
    assert n == sum(ex.answer_tokens for ex in examples)  # every answer token is predicted once
    assert torch.allclose(loss_sum / n, reference, atol=1e-5)


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
    assert run.status == JobStatus.FAILED
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
    from generation.ml.finetune import FinetuneError

    run = FinetuneRun.objects.create(base_model="x", output_dir=str(tmp_path))
    with pytest.raises(FinetuneError):
        finetune_run_execute(
            dataset_name="nope", base_model="x", output_dir=tmp_path / "o", config=tiny_config(), run=run
        )
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and run.error == "unknown dataset 'nope'"


def test_lora_defaults_match_the_spec():
    config = FinetuneConfig()
    assert (config.r, config.alpha, config.dropout, config.learning_rate) == (16, 32, 0.05, 2e-4)
    assert config.target_modules == ("q_proj", "k_proj", "v_proj", "o_proj")
    assert (config.epochs, config.patience) == (50, 10)
    assert FinetuneConfig(mode="full").learning_rate == 2e-5


@pytest.mark.slow  # two child processes that each import torch and transformers: ~15 s here
def test_bench_runs_lora_and_full_on_a_tiny_config(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [
            sys.executable,
            str(root / "bench" / "finetune.py"),
            "--tiny",
            "--batch-size",
            "2",
            "--seq-len",
            "32",
            "--steps",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    lora, full = report["lora"], report["full"]
    assert lora["trainable_params"] < full["trainable_params"] == full["total_params"]
    assert lora["total_params"] == full["total_params"]
    for mode in (lora, full):
        assert mode["step_seconds"] > 0 and mode["tokens_per_s"] > 0 and mode["peak_memory_bytes"] > 0
        assert mode["device"].startswith("cpu") and "torch" in mode["versions"]
