"""The decode loop's step modes side by side on one batch: transformers, static, graph.

    .venv/bin/python -P bench/step_modes.py --tiny               # a tiny random llama, CPU (smoke run)
    python3 -P bench/step_modes.py                               # random TinyLlama-1.1B shape, GPU

One model, one batch of `--rows` random-token prompts (half of them with the random LoRA switched on
per row, as the worker's "switch" adapter mode runs a chunk's two roles), `--tokens` new tokens each,
no end-of-sequence (every row runs every step). Each mode is timed `--repeats` times after an
untimed warm-up; `step_ms` is the best full run less the best one-token run (the prefill), per step
after the first token. `rows_equal_to_static` counts rows whose tokens equal the static mode's (greedy: the
modes do the same arithmetic, graph replays static's step). Prints progress, then one JSON line.
It never asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._models import build_random_tinyllama, random_lora  # noqa: E402  (torch is imported on use)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tiny_model(device: str, layers: int, width: int) -> Any:
    """A small random llama (TinyLlama's 32 query and 4 key/value heads) with a random LoRA attached:
    with few rows and a narrow width its steps measure the host work per step (CPU runs)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=512, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
        num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=1024,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(device).eval()
    return random_lora(model).eval()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--tiny", action="store_true", help="a small random llama instead of TinyLlama-1.1B")
    parser.add_argument("--layers", type=int, default=4, help="with --tiny (TinyLlama has 22)")
    parser.add_argument("--width", type=int, default=256, help="with --tiny: hidden size")
    return parser.parse_args(argv)


# one timed decode call: (mode, rows, new tokens) -> (seconds, each row's tokens)
Runner = Callable[[str, int, int], tuple[float, list[list[int]]]]


def make_runner(args: argparse.Namespace, device: str) -> tuple[Runner, str, list[bool]]:
    """The model and its batch of prompts, as a function that decodes the first rows in a mode; the
    model's label and which rows run with the LoRA."""
    import torch

    from generation.ml.decoding import RowSwitchedLoRA, decode, prefill_rows_for

    if args.tiny:
        model = tiny_model(device, args.layers, args.width)
        label = f"small random llama ({args.layers} layers, {args.width} wide, 32/4 heads)"
    else:
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
        entry, _ = build_random_tinyllama(device, dtype)
        model, label = entry.model, f"random TinyLlama-1.1B architecture ({dtype})"
    vocab = model.get_base_model().config.vocab_size
    rng = random.Random(0)
    prompts = [[1] + [rng.randrange(3, vocab) for _ in range(rng.randint(16, 160))] for _ in range(args.rows)]
    lora_rows = [r % 2 == 1 for r in range(args.rows)]
    switch = RowSwitchedLoRA(model, "finetuned")
    model.set_adapter("finetuned")
    base = model.get_base_model()

    def run(mode: str, rows: int, tokens: int) -> tuple[float, list[list[int]]]:
        started = time.perf_counter()
        with torch.inference_mode():
            out = decode(
                base, prompts[:rows], max_new_tokens=tokens, eos_ids=set(), pad_id=0, device=device,
                prefill_rows=prefill_rows_for(device), adapter_rows=lora_rows[:rows], row_lora=switch,
                step_mode=mode,
            )
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - started, [o.tokens for o in out]

    return run, label, lora_rows


def time_modes(run: Runner, args: argparse.Namespace) -> dict[str, Any]:
    """Every step mode timed `args.repeats` times after a warm-up, with its rows compared to static's."""
    from generation.ml import static_step
    from generation.ml.decoding import STEP_MODES

    modes: dict[str, Any] = {}
    answers: dict[str, list[list[int]]] = {}
    for mode in STEP_MODES:
        run(mode, min(4, args.rows), 4)  # warm-up
        times, prefill = [], []
        for _ in range(args.repeats):
            prefill.append(run(mode, args.rows, 1)[0])
            seconds, tokens = run(mode, args.rows, args.tokens)
            times.append(round(seconds, 3))
            answers[mode] = tokens
        best = min(times)
        modes[mode] = {
            "cuda_graphs": dict(static_step.GRAPH_COUNTS) if mode == "graph" else None,
            "seconds": times,
            "tok_s": round(args.rows * args.tokens / best, 1),
            # (best full run - best one-token run) / the steps after the first token
            "step_ms": round((best - min(prefill)) / max(args.tokens - 1, 1) * 1000, 2),
        }
        log(f"{mode}: {times} s, {modes[mode]['tok_s']} tok/s, {modes[mode]['step_ms']} ms/step (best runs)")
    for mode in STEP_MODES:
        modes[mode]["rows_equal_to_static"] = sum(
            a == b for a, b in zip(answers[mode], answers["static"], strict=True)
        )
    return modes


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ["EVALSITE_ADAPTER_MODE"] = "switch"

    import peft
    import torch
    import transformers

    from generation.ml.decoding import prefill_rows_for
    from generation.ml.modeling import pick_device

    device = pick_device(args.device)
    run, label, lora_rows = make_runner(args, device)
    modes = time_modes(run, args)
    print(
        json.dumps(
            {
                "model": label,
                "device": device,
                "device_name": (
                    torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor()
                ),
                "rows": args.rows,
                "lora_rows": sum(lora_rows),
                "new_tokens": args.tokens,
                "prefill_rows": prefill_rows_for(device),
                "modes": modes,
                "versions": {
                    "python": platform.python_version(),
                    "torch": torch.__version__,
                    "transformers": transformers.__version__,
                    "peft": peft.__version__,
                },
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
