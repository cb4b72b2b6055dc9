"""The fine-tuning core (generation.ml.finetune): parameter counts, examples and their split, the
answer-only loss, the benchmark. The training loop with its run row and the `finetune` command are
tested in tests/worker/test_training.py. Everything runs the tiny random llama for real, on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generation.ml.finetune import (
    FinetuneConfig,
    answer_loss_sum,
    build_examples,
    collate,
    count_lora_params,
    count_parameters,
    lora_param_count,
    prepare_model,
    split_examples,
)
from generation.ml.modeling import load_tokenizer, resolve_base
from generation.ml.prompting import render_prompt
from tests.support.training_data import review_prompts


def tiny_tokenizer(tiny_llama_dir: Path):
    return load_tokenizer(resolve_base(str(tiny_llama_dir), model_dir=tiny_llama_dir.parent))


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


def test_examples_train_on_the_generation_input_and_count_loss_on_the_answer_only(tiny_llama_dir):
    tokenizer = tiny_tokenizer(tiny_llama_dir)
    [prompt] = review_prompts(1)
    [example], counts = build_examples(tokenizer, [prompt], max_length=512)

    prompt_ids = tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(prompt.reference, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert example.input_ids == prompt_ids + answer_ids
    assert example.labels == [-100] * len(prompt_ids) + answer_ids
    assert counts == {"truncated": 0, "dropped_too_long": 0}

    [cut], counts = build_examples(tokenizer, [prompt], max_length=len(prompt_ids) + 2)
    assert cut.labels[-2:] == answer_ids[:2] and counts["truncated"] == 1
    assert build_examples(tokenizer, [prompt], max_length=len(prompt_ids))[1]["dropped_too_long"] == 1


def test_the_validation_split_is_deterministic_for_a_seed(tiny_llama_dir):
    tokenizer = tiny_tokenizer(tiny_llama_dir)
    examples, _ = build_examples(tokenizer, review_prompts(30), max_length=256)
    train, val = split_examples(examples, 0.1, seed=3)
    assert len(val) == 3 and len(train) == 27
    assert {e.external_id for e in train}.isdisjoint(e.external_id for e in val)
    again = split_examples(list(reversed(examples)), 0.1, seed=3)[1]
    assert [e.external_id for e in again] == [e.external_id for e in val]
    assert [e.external_id for e in split_examples(examples, 0.1, seed=4)[1]] != [e.external_id for e in val]


def test_the_answer_loss_equals_the_models_own_loss_on_the_same_labels(tiny_llama_dir):
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = tiny_tokenizer(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)).eval()
    examples, _ = build_examples(tokenizer, review_prompts(5), max_length=256)
    batch = collate(examples, tokenizer.pad_token_id, "cpu")
    with torch.no_grad():
        loss_sum, n = answer_loss_sum(model, batch, "cpu")
        reference = model(**batch).loss
    assert n == sum(ex.answer_tokens for ex in examples)  # every answer token is predicted once
    assert torch.allclose(loss_sum / n, reference, atol=1e-5)


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
