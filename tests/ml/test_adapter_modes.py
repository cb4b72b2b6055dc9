"""The two ways a worker answers the fine-tuned role (EVALSITE_ADAPTER_MODE): the adapter switched on
and off on one base ("switch"), or a copy of the base with the adapter merged in ("merged"). They must
give the same answers; a broken adapter must leave the base answering as the pre-trained model; a
misconfigured worker fails its jobs saying why."""

from __future__ import annotations

import pytest

from generation.ml import engine
from generation.ml.loading import adapter_mode
from generation.ml.modeling import ModelLoadError
from generation.models import JobStatus, ModelLoadAttempt
from generation.worker.runtime import WorkerRuntime
from tests.support.engine_data import ENGINE_PROMPTS, engine_answers
from tests.support.generation_data import run_two_prompt_job

pytestmark = pytest.mark.usefixtures("fresh_engine_cache")


def _has_lora(model) -> bool:
    return any(hasattr(m, "lora_A") for m in model.modules())


def test_merged_and_switched_adapters_give_the_same_answers(
    tiny_llama_dir, tiny_adapter_dir, monkeypatch, fresh_engine_cache
):
    monkeypatch.setenv("EVALSITE_ADAPTER_MODE", "switch")
    switched_entry, switched = engine_answers(fresh_engine_cache, tiny_llama_dir, tiny_adapter_dir)
    assert switched_entry.is_peft and not switched_entry.merged
    fresh_engine_cache.clear()

    monkeypatch.setenv("EVALSITE_ADAPTER_MODE", "merged")
    merged_entry, merged = engine_answers(fresh_engine_cache, tiny_llama_dir, tiny_adapter_dir)

    assert merged == switched
    assert any(merged[(n, "pretrained")] != merged[(n, "finetuned")] for n, _ in enumerate(ENGINE_PROMPTS))
    # the base stays plain; the fine-tuned role is a separate model with no LoRA layers left in it
    assert not merged_entry.is_peft and not _has_lora(merged_entry.model)
    assert set(merged_entry.merged) == {"finetuned"} and not _has_lora(merged_entry.merged["finetuned"])


def test_auto_mode_switches_on_cpu_and_merges_on_cuda(monkeypatch):
    monkeypatch.delenv("EVALSITE_ADAPTER_MODE", raising=False)
    assert (adapter_mode("cpu"), adapter_mode("cuda:0")) == ("switch", "merged")
    monkeypatch.setenv("EVALSITE_ADAPTER_MODE", "Merged")
    assert adapter_mode("cpu") == "merged"


def _error_of_a_job_falling_back(base_dir, adapter_dir) -> str:
    """Runs a two-prompt job with an adapter that cannot be used; checks that it still succeeds, the
    untouched base answering the fine-tuned role (fallback set); returns the failed load's error."""
    runtime = WorkerRuntime()
    job = run_two_prompt_job(base_dir, adapter_dir, runtime)
    assert job.status == JobStatus.SUCCEEDED
    assert job.answers.filter(role="finetuned", fallback=True).count() == 2
    attempt = ModelLoadAttempt.objects.get(job=job, kind="adapter")
    assert not attempt.success
    (entry,) = runtime.host.loaded
    assert not _has_lora(entry.model) and not entry.merged
    texts = {a.prompt_id: a.text for a in job.answers.filter(role="pretrained")}
    assert {a.prompt_id: a.text for a in job.answers.filter(role="finetuned")} == texts
    return attempt.error


@pytest.mark.django_db
def test_a_broken_adapter_in_merged_mode_leaves_the_base_answering(tiny_llama_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSITE_ADAPTER_MODE", "merged")
    broken = tmp_path / "adapter"
    broken.mkdir()
    (broken / "adapter_config.json").write_text('{"peft_type": "LORA", "target_modules": ["q_proj"], "r": 4}')
    assert _error_of_a_job_falling_back(tiny_llama_dir, broken).startswith(f"cannot load adapter {broken}")


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["switch", "merged"])
def test_an_adapter_with_nan_weights_is_refused_and_the_base_answers_for_it(
    tiny_llama_dir, tiny_adapter_dir, tmp_path, monkeypatch, mode
):
    import shutil

    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("EVALSITE_ADAPTER_MODE", mode)
    diverged = tmp_path / "diverged"
    shutil.copytree(tiny_adapter_dir, diverged)
    weights = load_file(str(diverged / "adapter_model.safetensors"))
    poisoned = sorted(k for k in weights if "lora_B" in k)[0]
    weights[poisoned][0, 0] = float("nan")
    save_file(weights, str(diverged / "adapter_model.safetensors"))

    assert _error_of_a_job_falling_back(tiny_llama_dir, diverged) == (
        f"cannot load adapter {diverged}: its weights hold NaN or inf values ({poisoned});"
        " was its fine-tuning diverging?"
    )


@pytest.mark.django_db
def test_a_misconfigured_adapter_mode_fails_the_job_saying_why(tiny_llama_dir, tiny_adapter_dir, monkeypatch):
    monkeypatch.setenv("EVALSITE_ADAPTER_MODE", "both")
    with pytest.raises(ModelLoadError, match="EVALSITE_ADAPTER_MODE must be auto, switch or merged"):
        adapter_mode("cpu")
    job = run_two_prompt_job(tiny_llama_dir, tiny_adapter_dir)
    assert job.status == JobStatus.FAILED
    assert "EVALSITE_ADAPTER_MODE must be auto, switch or merged, not 'both'" in job.error
    assert not job.answers.exists()


def test_a_dora_adapter_is_not_switched_per_row_and_still_answers_both_roles(
    tiny_llama_dir, tmp_path, monkeypatch, fresh_engine_cache
):
    """DoRA is not plain LoRA (`lora_variant`): its rows cannot share a batch through per-row scaling,
    so the roles run in batches of their own, and the answers are what each role gives alone."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.support.tiny_models import build_lora_adapter

    dora = build_lora_adapter(tiny_llama_dir, tmp_path / "dora", use_dora=True)
    monkeypatch.setenv("EVALSITE_ADAPTER_MODE", "switch")
    entry, answers = engine_answers(fresh_engine_cache, tiny_llama_dir, dora)
    assert engine.row_switch(entry, [None, "finetuned"]) is None
    assert any(answers[(n, "pretrained")] != answers[(n, "finetuned")] for n, _ in enumerate(ENGINE_PROMPTS))

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama_dir))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)), str(dora))
    model.eval()
    for n, text in enumerate(ENGINE_PROMPTS):
        ids = torch.tensor([engine.encode(entry, text)])
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                eos_token_id=sorted(engine.eos_ids(entry)), pad_token_id=tokenizer.pad_token_id,
            )
        new = out[0, ids.shape[1]:].tolist()
        stop = next((i for i, t in enumerate(new) if t in engine.eos_ids(entry)), None)
        text_out = tokenizer.decode(new if stop is None else new[:stop], skip_special_tokens=True).strip()
        assert answers[(n, "finetuned")][0] == text_out
