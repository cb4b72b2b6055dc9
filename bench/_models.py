"""The models the ML benchmarks run: a real one (the demo's by default) loaded as a worker loads it, or
a random model with TinyLlama-1.1B's architecture, each with a real or a random LoRA adapter as the
fine-tuned role. torch, transformers and peft are imported where a model is built, so a script's
argument errors and `--help` come back at once."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

    from generation.ml.loading import LoadedModel

ROOT = Path(__file__).resolve().parent.parent


def model_dir() -> Path:
    """Where converted GGUF models are cached: the folder evalsite.settings.EVALSITE_MODEL_DIR names."""
    var_dir = Path(os.environ.get("EVALSITE_VAR_DIR") or ROOT / "var")
    return Path(os.environ.get("EVALSITE_MODEL_DIR") or var_dir / "models")


def random_lora(model: PreTrainedModel, *, r: int = 16, seed: int = 1) -> PeftModel:
    """A LoRA adapter with random (non-zero) weights on q/k/v/o, attached in memory as "finetuned"."""
    import torch
    from peft import LoraConfig, PeftModel

    torch.manual_seed(seed)
    config = LoraConfig(
        r=r,
        lora_alpha=2 * r,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    return PeftModel(model, config, adapter_name="finetuned")


def word_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """A tokenizer whose tokens are t0..tN: enough to pad, stop and decode random-token prompts."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab_size)}, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="t0", bos_token="t1", eos_token="t2", pad_token="t0"
    )
    fast.padding_side = "left"
    return fast


def build_random_tinyllama(device: str, dtype: str) -> tuple[LoadedModel, dict[str, Any]]:
    """TinyLlama-1.1B's architecture with random weights, made on the device, plus a random LoRA r=16."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from generation.ml.loading import LoadedModel
    from generation.ml.modeling import BaseModelRef

    config = LlamaConfig(
        vocab_size=32000,
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=22,
        num_attention_heads=32,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    entry = LoadedModel(
        ref=BaseModelRef("random-tinyllama-1.1b"),
        model=model,
        tokenizer=word_tokenizer(32000),
        device=device,
        dtype=dtype,
        load_seconds=0.0,
    )
    return entry, attach_random_lora(entry)


def attach_random_lora(entry: LoadedModel) -> dict[str, Any]:
    """A random LoRA r=16 as the fine-tuned role, attached or merged into a copy as the worker would
    (generation.ml.loading.adapter_mode). Returns the parameter counts."""
    import copy

    from generation.ml.loading import adapter_mode

    mode = adapter_mode(entry.device)
    base_params = sum(p.numel() for p in entry.model.parameters())
    peft_model = random_lora(copy.deepcopy(entry.model) if mode == "merged" else entry.model)
    peft_model.to(device=entry.device, dtype=next(entry.model.parameters()).dtype)
    peft_model.eval()
    lora = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    if mode == "merged":
        entry.merged["finetuned"] = peft_model.merge_and_unload().eval()
    else:
        entry.model = peft_model
    entry.adapters["<random lora r=16 q,k,v,o>"] = "finetuned"
    return {"adapter_params": lora, "base_params": base_params}


def load_real(
    base: str, gguf_file: str, adapter: str, device: str | None, dtype: str | None
) -> tuple[LoadedModel, dict[str, Any]]:
    """`base` (and `adapter`, else a random LoRA) loaded as a worker loads them; the loaded model, and
    what the benchmark reports about the adapter."""
    from safetensors import safe_open

    from generation.ml.loading import ModelHost
    from generation.ml.modeling import resolve_base

    host = ModelHost()
    ref = resolve_base(base, gguf_file, model_dir=model_dir())
    entry, info = host.load_base(ref, device=device, dtype=dtype)
    print(f"loaded {entry.ref.label} on {entry.device} ({entry.dtype}) in {info.seconds:.1f} s", flush=True)
    if not adapter:
        counts = attach_random_lora(entry)
        return entry, {"adapter": "random LoRA r=16 on q,k,v,o (made on the fly)", **counts}
    base_params = sum(p.numel() for p in entry.model.parameters())
    host.load_adapter(entry, adapter)  # the first adapter attached is named "finetuned"
    with safe_open(str(Path(adapter) / "adapter_model.safetensors"), "pt") as tensors:
        lora = sum(math.prod(tensors.get_slice(k).get_shape()) for k in tensors.keys())  # noqa: SIM118
    return entry, {"adapter": adapter, "adapter_params": lora, "base_params": base_params}

