"""How the worker takes its decode steps (EVALSITE_DECODE_STEP): through the transformers forward, a
hand-written llama step over a static cache, or that step replayed as a CUDA graph (on a CPU the same
fixed-shape loop without a graph). Every mode must give the worker's answers word for word; models the
hand-written step does not cover must still answer; a misconfigured worker fails its jobs saying why."""

from __future__ import annotations

import random

import pytest

from generation.ml import static_step
from generation.ml.decoding import STEP_MODES, decode
from generation.ml.loading import decode_step_mode
from generation.ml.modeling import ModelLoadError
from generation.models import JobStatus
from tests.support.engine_data import ENGINE_PROMPTS, engine_answers
from tests.support.generation_data import run_two_prompt_job

pytestmark = pytest.mark.usefixtures("fresh_engine_cache")


@pytest.mark.parametrize("adapter_mode", ["switch", "merged"])
def test_every_step_mode_gives_the_workers_answers_word_for_word(
    tiny_llama_dir, tiny_adapter_dir, monkeypatch, adapter_mode, fresh_engine_cache
):
    monkeypatch.setenv("EVALSITE_ADAPTER_MODE", adapter_mode)
    by_mode = {}
    for mode in STEP_MODES:
        monkeypatch.setenv("EVALSITE_DECODE_STEP", mode)
        fresh_engine_cache.clear()
        _, by_mode[mode] = engine_answers(
            fresh_engine_cache, tiny_llama_dir, tiny_adapter_dir, max_new_tokens=14, batch_size=4
        )

    assert by_mode["static"] == by_mode["transformers"]
    assert by_mode["graph"] == by_mode["transformers"]
    answers = by_mode["transformers"]
    assert len(answers) == 2 * len(ENGINE_PROMPTS)
    assert any(answers[(n, "pretrained")] != answers[(n, "finetuned")] for n, _ in enumerate(ENGINE_PROMPTS))


def test_auto_is_static_and_a_bad_setting_is_refused(monkeypatch):
    monkeypatch.delenv("EVALSITE_DECODE_STEP", raising=False)
    assert decode_step_mode("cpu") == decode_step_mode("cuda:0") == "static"
    monkeypatch.setenv("EVALSITE_DECODE_STEP", " Graph ")
    assert decode_step_mode("cpu") == "graph"
    monkeypatch.setenv("EVALSITE_DECODE_STEP", "compiled")
    with pytest.raises(ModelLoadError, match="EVALSITE_DECODE_STEP must be auto, transformers, static"):
        decode_step_mode("cpu")


@pytest.mark.django_db
def test_a_misconfigured_step_mode_fails_the_job_saying_why(tiny_llama_dir, tiny_adapter_dir, monkeypatch):
    monkeypatch.setenv("EVALSITE_DECODE_STEP", "fastest")
    job = run_two_prompt_job(tiny_llama_dir, tiny_adapter_dir)
    assert job.status == JobStatus.FAILED
    assert "EVALSITE_DECODE_STEP must be auto, transformers, static, graph, not 'fastest'" in job.error
    assert not job.answers.exists()


def _tiny_qwen2():
    """A llama look-alike the hand-written step does not cover (biases on q/k/v, another model type)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512,
    )
    torch.manual_seed(2)
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():  # random, visible biases (they start at zero)
        for layer in model.model.layers:
            layer.self_attn.q_proj.bias.normal_(std=0.5)
            layer.self_attn.k_proj.bias.normal_(std=0.5)
    return model


def test_other_architectures_take_the_transformers_steps_and_still_match_generate():
    import torch

    model = _tiny_qwen2()
    assert not static_step.supports(model)
    rng = random.Random(5)
    prompts = [[7, 8, 9] + [rng.randrange(3, 300) for _ in range(rng.randint(1, 9))] for _ in range(5)]
    expected = []
    with torch.inference_mode():
        for ids in prompts:
            out = model.generate(
                input_ids=torch.tensor([ids]), max_new_tokens=6, do_sample=False, eos_token_id=[],
                pad_token_id=0, temperature=None, top_p=None, top_k=None,
            )
            expected.append(out[0, len(ids) :].tolist())
        for mode in STEP_MODES:
            got = decode(
                model, prompts, max_new_tokens=6, eos_ids=set(), pad_id=0, device="cpu", step_mode=mode
            )
            assert [row.tokens for row in got] == expected, mode


def test_the_static_step_covers_llama_with_fixed_rotary_frequencies_only(tiny_llama_dir):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    llama = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir), dtype=torch.float32)
    assert static_step.supports(llama)
    dynamic = LlamaConfig(
        vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, rope_scaling={"rope_type": "dynamic", "factor": 2.0},
    )
    assert not static_step.supports(LlamaForCausalLM(dynamic))


@pytest.mark.slow  # a child process that imports torch and transformers
def test_the_step_modes_bench_reports_every_mode_and_they_agree():
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-P", str(root / "bench" / "step_modes.py"), "--tiny", "--layers", "2",
         "--width", "64", "--rows", "6", "--tokens", "5", "--repeats", "1"],
        capture_output=True, text=True, timeout=300, cwd=root, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["device"] == "cpu" and report["rows"] == 6 and report["lora_rows"] == 3
    assert set(report["modes"]) == set(STEP_MODES)
    for figures in report["modes"].values():
        assert figures["rows_equal_to_static"] == 6
        assert figures["tok_s"] > 0 and len(figures["seconds"]) == 1
        assert isinstance(figures["step_ms"], float)  # a difference of two timings: noise can flip it
