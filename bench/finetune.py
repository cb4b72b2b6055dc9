"""LoRA vs full fine-tuning: trainable parameters, peak memory and step time, measured with the
project's own training code (generation.ml.finetune: prepare_model, make_optimizer, training_step).

Data are random token ids (the model's weights are random too with --random-tinyllama or --tiny), so
no hub access is needed; the numbers are about memory and time, not quality. Each mode runs in its
own child process, so its peak memory (CUDA max_memory_allocated on a GPU, the process's peak RSS on
a CPU) is its own. On CUDA the forward pass runs under bf16 autocast while weights, gradients and
AdamW states stay fp32 (fp32 master weights), for both modes.

    python bench/finetune.py --random-tinyllama --batch-size 8 --seq-len 512 --steps 10
    python bench/finetune.py --tiny --batch-size 2 --seq-len 32 --steps 3       # seconds, on a CPU

Prints one JSON object on its last line: per mode trainable_params, total_params, trainable_pct,
peak_memory_bytes, step_seconds (median), tokens_per_s, device, versions. Never asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# First, always: the script's own folder holds bench/generation.py, which would shadow the
# `generation` package (seen on the GPU machine when the repo root was also on PYTHONPATH).
sys.path.insert(0, str(ROOT))

TINYLLAMA = {
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "vocab_size": 32000,
    "tie_word_embeddings": False,
    "max_position_embeddings": 2048,
}
TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 512,
    "tie_word_embeddings": False,
    "max_position_embeddings": 1024,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--random-tinyllama", action="store_true", help="TinyLlama-1.1B architecture, random weights"
    )
    which.add_argument(
        "--tiny", action="store_true", help="a 2-layer, 64-wide llama (checks the script runs)"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--modes", default="lora,full", help="comma-separated: lora, full")
    parser.add_argument("--r", type=int, default=16)
    parser.add_argument("--alpha", type=int, default=32)
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--child", choices=["lora", "full"], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def train_steps(
    model: Any,
    optimizer: Any,
    args: argparse.Namespace,
    vocab_size: int,
    device: str,
    step_seconds: list[float],
    losses: list[float],
) -> None:
    """`args.steps` training steps on random token ids, appending each step's time and mean loss
    (so the steps before an out-of-memory error still count)."""
    import torch

    from generation.ml.finetune import training_step

    generator = torch.Generator().manual_seed(args.seed)
    for _ in range(args.steps):
        ids = torch.randint(0, vocab_size, (args.batch_size, args.seq_len), generator=generator)
        batch = {
            "input_ids": ids.to(device),
            "labels": ids.to(device),
            "attention_mask": torch.ones_like(ids).to(device),
        }
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        loss_sum, n = training_step(model, optimizer, batch, device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        step_seconds.append(time.perf_counter() - started)
        losses.append(loss_sum / n)


def run_mode(args: argparse.Namespace) -> dict:
    """Runs in a child process: build the model, train `steps` steps, measure."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from generation.ml.finetune import (
        FinetuneConfig,
        count_parameters,
        device_name,
        make_optimizer,
        peak_memory,
        prepare_model,
        trainable_share,
        versions,
    )

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    mode = args.child
    torch.manual_seed(args.seed)
    llama = LlamaConfig(**(TINYLLAMA if args.random_tinyllama else TINY))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with torch.device(device):
        model = LlamaForCausalLM(llama)  # fp32 weights: the master copy the optimiser updates
    config = FinetuneConfig(
        mode=mode,
        r=args.r,
        alpha=args.alpha,
        gradient_checkpointing=args.gradient_checkpointing,
        device=device,
        seed=args.seed,
        batch_size=args.batch_size,
        max_length=args.seq_len,
    )
    model = prepare_model(model, config)
    trainable, with_adapter = count_parameters(model)
    total = with_adapter - trainable if mode == "lora" else with_adapter
    optimizer = make_optimizer(model, config)

    result: dict = {"mode": mode}
    step_seconds: list[float] = []
    losses: list[float] = []
    try:
        train_steps(model, optimizer, args, llama.vocab_size, device, step_seconds, losses)
    except torch.cuda.OutOfMemoryError as exc:
        result["error"] = f"CUDA out of memory after {len(step_seconds)} steps: {str(exc).splitlines()[0]}"
    peak, kind = peak_memory(device)
    median = statistics.median(step_seconds) if step_seconds else None
    result.update(
        {
            "trainable_params": trainable,
            "total_params": total,
            "trainable_pct": trainable_share(trainable, total),
            "peak_memory_bytes": peak,
            "peak_memory_kind": kind,
            "peak_memory_gib": round(peak / 2**30, 3),
            "step_seconds": round(median, 5) if median else None,
            "first_step_seconds": round(step_seconds[0], 5) if step_seconds else None,
            "tokens_per_s": round(args.batch_size * args.seq_len / median, 1) if median else None,
            "steps": len(step_seconds),
            "loss_first_last": [round(losses[0], 4), round(losses[-1], 4)] if losses else None,
            "precision": "bf16 autocast, fp32 weights/grads/AdamW" if device.startswith("cuda") else "fp32",
            "lr": config.learning_rate,
            "lora": config.lora_dict(),
            "gradient_checkpointing": args.gradient_checkpointing,
            "device": device_name(device),
            "versions": versions(),
        }
    )
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_mode(args)))
        return 0
    forwarded = [a for a in (argv if argv is not None else sys.argv[1:])]
    report: dict = {
        "model": "TinyLlama-1.1B architecture, random weights"
        if args.random_tinyllama
        else "tiny llama (2x64), random",
        "data": "random token ids, loss on every token",
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "steps": args.steps,
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
    }
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        child = subprocess.run(
            [sys.executable, __file__, *forwarded, "--child", mode],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = child.stdout.strip().splitlines()
        if child.returncode != 0 or not lines:
            report[mode] = {
                "error": (child.stderr.strip().splitlines() or ["no output"])[-1],
                "returncode": child.returncode,
            }
            print(child.stderr[-3000:], file=sys.stderr)
            continue
        for line in lines[:-1]:
            print(line)
        report[mode] = json.loads(lines[-1])
    lora, full = report.get("lora", {}), report.get("full", {})
    if lora.get("peak_memory_bytes") and full.get("peak_memory_bytes"):
        report["full_over_lora_peak_memory"] = round(full["peak_memory_bytes"] / lora["peak_memory_bytes"], 3)
    if lora.get("step_seconds") and full.get("step_seconds"):
        report["full_over_lora_step_seconds"] = round(full["step_seconds"] / lora["step_seconds"], 3)
    print(json.dumps(report))
    return 0 if all("error" not in report.get(m, {}) for m in args.modes.split(",")) else 1


if __name__ == "__main__":
    sys.exit(main())
