"""Several LoRA systems on one base: mixed batches (each row's adapter switched per row) against a batch
of each system's own, through the worker's engine on the same loaded model.

    .venv/bin/python bench/systems_batches.py                  # demo model (SmolLM2-135M), CPU
    .venv/bin/python bench/systems_batches.py --adapters 1     # the two-system case

The adapters are random LoRA weights (r=16 on q/k/v/o, non-zero, one seed each) on the demo model: the
speed of a forward pass does not depend on what the weights hold. mixed = one `engine.generate` call over
every request (the base's and every adapter's rows share batches: `decoding.RowSwitchedLoRA`, every
adapter's branch computed for every row); per_system = one `engine.generate` call per system, as a worker
ran a job of several adapters before. Both greedy, batches of --batch-size rows, tokens counted up to and
including end-of-sequence. `matching_answers`: how many mixed answers equal the per-system ones.
Prints progress, then one JSON object on the last line; it never asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _random_adapter(base_ref, folder: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    from generation.ml.modeling import load_base_model

    model, _ = load_base_model(base_ref, device="cpu", dtype="float32")
    torch.manual_seed(seed)
    config = LoraConfig(
        r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        init_lora_weights=False, task_type="CAUSAL_LM",
    )  # fmt: skip
    peft_model = get_peft_model(model, config)
    with torch.no_grad():  # random but small: answers stay text-like
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.05)
    peft_model.save_pretrained(str(folder))
    return folder


def _run(entry, requests, batch_size: int, max_new_tokens: int) -> tuple[dict, float, int]:
    from generation.ml import engine

    answers, tokens = {}, 0
    started = time.perf_counter()
    for results in engine.generate(entry, requests, max_new_tokens=max_new_tokens, batch_size=batch_size):
        for r in results:
            answers[r.key] = r.text
            tokens += r.output_tokens
    return answers, time.perf_counter() - started, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    os.environ.setdefault("EVALSITE_ADAPTER_MODE", "switch")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from generation.ml import engine
    from generation.ml.loading import ModelHost
    from generation.ml.modeling import resolve_base

    model_dir = Path(os.environ.get("EVALSITE_MODEL_DIR", ROOT / "var" / "models"))
    ref = resolve_base("smollm2-demo", model_dir=model_dir)
    rows = [json.loads(line) for line in (ROOT / "demo/data/eval.jsonl").read_text().splitlines() if line]
    texts = [f"{r['text']}\n\n{r['context']}" for r in rows[:: max(1, len(rows) // args.prompts)][: args.prompts]]
    with tempfile.TemporaryDirectory() as tmp:
        folders = [_random_adapter(ref, Path(tmp) / f"a{n}", seed=100 + n) for n in range(args.adapters)]
        host = ModelHost()
        entry, _ = host.load_base(ref, device="cpu")
        names = [host.load_adapter(entry, str(f))[0] for f in folders]
        systems = [None, *names]
        requests = [
            engine.Request(key=(i, s), prompt_text=text, adapter=adapter)
            for i, text in enumerate(texts)
            for s, adapter in enumerate(systems)
        ]
        print(f"warm-up; then {len(requests)} requests ({len(systems)} systems)", file=sys.stderr, flush=True)
        _run(entry, requests[: len(systems) * 2], args.batch_size, 4)
        mixed, mixed_s, mixed_tokens = _run(entry, requests, args.batch_size, args.max_new_tokens)
        print(f"mixed: {mixed_s:.1f} s", file=sys.stderr, flush=True)
        own: dict = {}
        own_s, own_tokens = 0.0, 0
        for adapter in systems:
            answers, seconds, tokens = _run(
                entry, [r for r in requests if r.adapter == adapter], args.batch_size, args.max_new_tokens
            )
            own.update(answers)
            own_s += seconds
            own_tokens += tokens
        print(f"per system: {own_s:.1f} s", file=sys.stderr, flush=True)
    print(json.dumps({
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "model": "smollm2-demo (SmolLM2-135M-Instruct), float32, CPU",
        "systems": len(systems), "prompts": len(texts), "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "mixed_seconds": round(mixed_s, 2), "mixed_tokens": mixed_tokens,
        "mixed_tok_s": round(mixed_tokens / mixed_s, 1),
        "per_system_seconds": round(own_s, 2), "per_system_tokens": own_tokens,
        "per_system_tok_s": round(own_tokens / own_s, 1),
        "speedup": round((mixed_tokens / mixed_s) / (own_tokens / own_s), 3),
        "matching_answers": f"{sum(mixed[k] == own[k] for k in mixed)}/{len(mixed)}",
    }))  # fmt: skip


if __name__ == "__main__":
    main()
