"""The models a worker process holds (ModelHost): a base model is loaded once and reused, one base at a
time, adapters attach once, and a forgotten model lets go of its weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from generation.ml.loading import AdapterLoadError, ModelHost
from generation.ml.modeling import BaseModelRef, ModelLoadError, local_model_dir, resolve_base


def _ref(folder: Path) -> BaseModelRef:
    return resolve_base(str(folder), model_dir=folder.parent)


def test_a_base_model_is_loaded_once_and_reused(tiny_llama_dir, fresh_engine_cache: ModelHost):
    entry, first = fresh_engine_cache.load_base(_ref(tiny_llama_dir), device="cpu")
    again, second = fresh_engine_cache.load_base(_ref(tiny_llama_dir), device="cpu")

    assert again is entry and fresh_engine_cache.loaded == [entry]
    assert (first.from_cache, second.from_cache, second.seconds) == (False, True, 0.0)
    assert entry.dtype == "float32" and entry.device == "cpu" and not entry.is_peft


def test_the_host_holds_one_base_at_a_time(tiny_llama_dir, fresh_engine_cache: ModelHost):
    float32, _ = fresh_engine_cache.load_base(_ref(tiny_llama_dir), device="cpu")
    bfloat16, info = fresh_engine_cache.load_base(_ref(tiny_llama_dir), device="cpu", dtype="bfloat16")

    assert not info.from_cache and fresh_engine_cache.loaded == [bfloat16]
    assert float32.model is None  # dropped, its weights let go
    assert next(bfloat16.model.parameters()).dtype == torch.bfloat16 and bfloat16.dtype == "bfloat16"


def test_an_adapter_attaches_once_and_forget_releases_the_model(
    tiny_llama_dir, tiny_adapter_dir, fresh_engine_cache: ModelHost, monkeypatch
):
    monkeypatch.setenv("EVALSITE_ADAPTER_MODE", "switch")
    entry, _ = fresh_engine_cache.load_base(_ref(tiny_llama_dir), device="cpu")
    name, first = fresh_engine_cache.load_adapter(entry, str(tiny_adapter_dir))
    again, second = fresh_engine_cache.load_adapter(entry, str(tiny_adapter_dir))

    assert (name, again) == ("finetuned", "finetuned") and entry.is_peft
    assert (first.from_cache, second.from_cache) == (False, True)
    fresh_engine_cache.forget(entry)
    assert entry.model is None and fresh_engine_cache.loaded == []


def test_an_adapter_folder_that_is_not_one_is_refused_before_it_touches_the_base(
    tiny_llama_dir, tmp_path, fresh_engine_cache: ModelHost
):
    entry, _ = fresh_engine_cache.load_base(_ref(tiny_llama_dir), device="cpu")
    with pytest.raises(AdapterLoadError, match="adapter folder not found") as missing:
        fresh_engine_cache.load_adapter(entry, str(tmp_path / "nope"))
    with pytest.raises(AdapterLoadError, match="has no adapter_config.json: not a peft adapter folder"):
        fresh_engine_cache.load_adapter(entry, str(tmp_path))
    assert not missing.value.base_damaged and not entry.is_peft and not entry.adapters


def test_a_gguf_model_needs_a_cache_folder_to_be_converted_into(tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"")
    ref = resolve_base(str(tmp_path / "model.gguf"), model_dir=tmp_path / "cache")
    assert (ref.location, ref.gguf_file, ref.model_dir) == (str(tmp_path), "model.gguf", tmp_path / "cache")

    with pytest.raises(ModelLoadError, match="no model cache folder given"):
        local_model_dir(BaseModelRef(str(tmp_path), "model.gguf"))
