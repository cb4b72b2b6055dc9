"""Generation throughput: the worker's engine against a naive loop, on the same loaded model.

    .venv/bin/python bench/generation.py                       # demo model (SmolLM2-135M), CPU
    .venv/bin/python bench/generation.py --random-tinyllama    # random TinyLlama-1.1B shape, bf16, GPU

naive  = one prompt at a time, two transformers generate() calls per prompt: the pre-trained model, then
         the fine-tuned one (the same role models the engine uses: see --adapter-mode).
engine = what a worker does (generation.ml.engine.generate): role-homogeneous batches of --batch-size rows
         (default: the worker's), run by the worker's decode loop (generation/ml/decoding/).
Both decode greedily and count the same way: tokens generated up to and including the end-of-sequence
token (padding not counted). tok/s = those tokens / wall seconds of the generate calls. A warm-up call
runs first and is not timed. `matching_answers` says how many engine answers equal the naive ones
(batching and padding can change a greedy pick where two tokens are nearly tied, more so in bf16).

With --rounds R the engine runs R times, and after each run the naive loop takes its next share of the
naive prompts: both meet the same phases of a shared machine whose speed drifts over minutes.
`engine_tok_s` is then the median round, `engine_tok_s_rounds` every round, `speedup_rounds` each
round's engine rate over that round's naive rate (with a distribution-free interval for their median,
`speedup_rounds_median_interval`), and `engine_repeatable` whether every round gave the same answers.

Prints progress, then one JSON object on the last line. It never asserts a time: the figures depend on
the machine, which the JSON names. It needs torch, transformers and peft, not Django: a GGUF model
(the demo's) is converted into EVALSITE_MODEL_DIR, else var/models, as the site's settings say.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._models import build_random_tinyllama, load_real  # noqa: E402  (torch is imported on use)
from generation.configs import DEFAULT_BATCH_SIZE  # noqa: E402  (torch-free)

QUESTIONS = [
    (
        "What is the sentiment of this review? Answer positive, negative or neutral.",
        "The blender is loud and it broke after a week. I want my money back.",
    ),
    (
        "Which features does the reviewer mention?",
        (
            "Light and quiet, the battery lasts two days, but the case feels cheap and the screen"
            " scratches easily."
        ),
    ),
    (
        "Would you recommend this product to a friend? Answer yes or no.",
        "The tent leaks in the rain and the zipper broke on the second night.",
    ),
    (
        "Is this review relevant to battery life?",
        "The battery life of this phone is great and the screen is bright even in sunlight.",
    ),
    (
        "Summarise the review in one sentence.",
        (
            "Comfortable headphones with great sound. The noise cancelling works well on trains, and they"
            " fold flat."
        ),
    ),
    ("What is the sentiment of this review?", "Fine."),
    (
        "Which product would suit someone who travels a lot?",
        "Compact kettle, 0.5 litre, dual voltage, boils in two minutes; the lid is a bit stiff.",
    ),
    (
        "Does the reviewer mention the price?",
        "Worth every penny. Cheaper than the big brands and it has lasted three years of daily use so far.",
    ),
]


def log(message: str) -> None:
    print(message, flush=True)


def text_prompts(n: int) -> list[Any]:
    return [
        SimpleNamespace(text=q, context=f"Review {i + 1}: {c}")
        for i, (q, c) in ((i, QUESTIONS[i % len(QUESTIONS)]) for i in range(n))
    ]


def naive(entry: Any, prompt_ids: list[list[int]], max_new_tokens: int) -> tuple[float, int, list[str]]:
    """One prompt at a time; for each, a base generate() and an adapter generate()."""
    import torch

    from generation.ml import engine

    eos = engine.eos_ids(entry)
    tokenizer = entry.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    options = {
        "max_new_tokens": max_new_tokens,
        "do_sample": False,
        "pad_token_id": pad,
        "eos_token_id": sorted(eos),
        "temperature": None,
        "top_p": None,
        "top_k": None,
    }
    tokens = 0
    seconds = 0.0
    texts: list[str] = []
    for ids in prompt_ids:
        input_ids = torch.tensor([ids], device=entry.device)
        mask = torch.ones_like(input_ids)
        for role in ("pretrained", "finetuned"):
            started = time.perf_counter()
            adapter = "finetuned" if role == "finetuned" else None
            with torch.inference_mode(), engine.role_model(entry, adapter) as model:
                out = model.generate(input_ids=input_ids, attention_mask=mask, **options)
            if entry.device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds += time.perf_counter() - started
            new = out[0, len(ids) :].tolist()
            stop = next((i for i, t in enumerate(new) if t in eos), None)
            tokens += len(new) if stop is None else stop + 1
            texts.append(
                tokenizer.decode(new if stop is None else new[:stop], skip_special_tokens=True).strip()
            )
    return seconds, tokens, texts


def run_engine(
    entry: Any, prompt_ids: list[list[int]], max_new_tokens: int, batch_size: int
) -> tuple[float, int, list[str]]:
    from generation.ml import engine

    requests = []
    for n, ids in enumerate(prompt_ids):
        requests.append(engine.Request(key=(n, "pretrained"), prompt_text="", adapter=None, prompt_ids=ids))
        requests.append(
            engine.Request(key=(n, "finetuned"), prompt_text="", adapter="finetuned", prompt_ids=ids)
        )
    seconds = 0.0
    tokens = 0
    texts: dict[tuple[int, str], str] = {}
    for results in engine.generate(entry, requests, max_new_tokens=max_new_tokens, batch_size=batch_size):
        seconds += results[0].batch_ms / 1000.0
        for r in results:
            tokens += r.output_tokens
            texts[r.key] = r.text
    return (
        seconds,
        tokens,
        [texts[(n, role)] for n in range(len(prompt_ids)) for role in ("pretrained", "finetuned")],
    )


def median_interval(values: list[float], confidence: float = 0.95) -> dict[str, Any] | None:
    """A distribution-free interval for the median of what `values` sample: order statistics
    [x(k), x(n+1-k)] with the largest k whose binomial coverage, 1 - 2 P(Binomial(n, 1/2) < k), is at
    least `confidence`; with too few values, k = 1 (the range) and the lower coverage it has. Assumes
    the values are independent draws, which rounds on a machine whose speed drifts only approximate.
    None for fewer than 2 values."""
    n = len(values)
    if n < 2:
        return None

    def coverage(k: int) -> float:
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n

    k = 1
    while k + 1 <= n // 2 and coverage(k + 1) >= confidence:
        k += 1
    ordered = sorted(values)
    return {
        "low": ordered[k - 1], "high": ordered[n - k], "confidence": round(coverage(k), 4),
        "method": "order statistics (sign test)", "n": n,
    }


def machine(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        # other processes share these cores; a high load means slower, noisier figures
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base", default="smollm2-demo", help="hub id, local folder, .gguf path or smollm2-demo"
    )
    parser.add_argument("--gguf-file", default="")
    parser.add_argument(
        "--adapter",
        default=None,
        help="peft adapter folder (default: demo/adapter if it exists, else a random LoRA)",
    )
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument(
        "--naive-prompts",
        type=int,
        default=None,
        help="time the naive loop on the first N prompts only (default: all; 0 skips it). Its tok/s is a "
        "one-row-at-a-time rate, so a subset measures it without waiting for hours on a GPU",
    )
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="rows per batch (default: the worker's)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="engine runs, each followed by its share of the naive prompts (default 1)",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--adapter-mode",
        choices=["auto", "switch", "merged"],
        default=None,
        help="how the fine-tuned role runs (default: EVALSITE_ADAPTER_MODE, else auto: switch on CPU, "
        "merged on CUDA)",
    )
    parser.add_argument(
        "--decode-step",
        choices=["auto", "transformers", "static", "graph"],
        default=None,
        help="how the decode loop takes its steps (default: EVALSITE_DECODE_STEP, else auto)",
    )
    parser.add_argument(
        "--dtype", default=None, help="float32, bfloat16, float16 (default: bf16 on cuda, fp32 on cpu)"
    )
    parser.add_argument(
        "--random-tinyllama",
        action="store_true",
        help="random TinyLlama-1.1B-shaped model + random LoRA r=16 (q,k,v,o), random-token prompts",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def prepare(args: argparse.Namespace) -> tuple[Any, dict[str, Any], str, list[list[int]]]:
    """The loaded model (with its fine-tuned role), what to report about it, its label, and the
    prompts as token ids."""
    from generation.ml.engine import encode
    from generation.ml.modeling import pick_device
    from generation.ml.prompting import render_prompt

    device = pick_device(args.device)
    if args.random_tinyllama:
        dtype = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
        log(f"building a random TinyLlama-1.1B-shaped model on {device} ({dtype})")
        entry, extra = build_random_tinyllama(device, dtype)
        extra["adapter"] = "random LoRA r=16 on q,k,v,o"
        model_label = (
            "random TinyLlama-1.1B architecture (LlamaConfig 2048/22 layers/32 heads/4 kv/5632/32000)"
        )
        rng = random.Random(0)
        prompt_ids = [
            [1] + [rng.randrange(3, 32000) for _ in range(rng.randint(16, 160))] for _ in range(args.prompts)
        ]
        return entry, extra, model_label, prompt_ids
    adapter = args.adapter
    if adapter is None:
        demo = ROOT / "demo" / "adapter"
        adapter = str(demo) if (demo / "adapter_config.json").is_file() else ""
    entry, extra = load_real(args.base, args.gguf_file, adapter, args.device, args.dtype)
    model_label = entry.ref.label if args.base != "smollm2-demo" else f"smollm2-demo ({entry.ref.gguf_file})"
    prompt_ids = [encode(entry, render_prompt(entry.tokenizer, p)) for p in text_prompts(args.prompts)]
    return entry, extra, model_label, prompt_ids


Run = tuple[float, int, list[str]]  # seconds, tokens, answers


def run_rounds(
    entry: Any, prompt_ids: list[list[int]], args: argparse.Namespace, naive_count: int
) -> tuple[list[Run], list[Run], list[float]]:
    """`args.rounds` engine runs, each followed by its share of the first `naive_count` prompts run
    the naive way: (engine runs, naive runs, each round's engine rate over its naive rate)."""
    rounds = args.rounds
    shares = [prompt_ids[naive_count * r // rounds : naive_count * (r + 1) // rounds] for r in range(rounds)]
    engine_runs: list[Run] = []
    naive_runs: list[Run] = []
    speedup_rounds: list[float] = []  # each round with a naive share: its engine rate / its naive rate
    for r, share in enumerate(shares, 1):
        log(f"round {r}/{rounds}: engine, the worker's batches ...")
        run = run_engine(entry, prompt_ids, args.max_new_tokens, args.batch_size)
        log(f"engine: {run[1]} tokens in {run[0]:.1f} s = {run[1] / run[0]:.1f} tok/s")
        engine_runs.append(run)
        if share:
            log(f"naive: one prompt at a time, base then adapter, {len(share)} prompts ...")
            naive_runs.append(naive(entry, share, args.max_new_tokens))
            naive_s, naive_tokens, _ = naive_runs[-1]
            log(f"naive: {naive_tokens} tokens in {naive_s:.1f} s = {naive_tokens / naive_s:.1f} tok/s")
            speedup_rounds.append(round((run[1] / run[0]) / (naive_tokens / naive_s), 2))
    return engine_runs, naive_runs, speedup_rounds


def figures(engine_runs: list[Run], naive_runs: list[Run], speedup_rounds: list[float]) -> dict[str, Any]:
    """The report's rates and counts: the median engine round against every naive share together."""
    rounds = len(engine_runs)
    engine_rates = [tokens / seconds for seconds, tokens, _ in engine_runs]
    median_round = sorted(range(rounds), key=lambda r: engine_rates[r])[(rounds - 1) // 2]
    engine_s, engine_tokens, engine_texts = engine_runs[median_round]
    engine_tok_s = engine_rates[median_round]
    naive_s = sum(run[0] for run in naive_runs)
    naive_tokens = sum(run[1] for run in naive_runs)
    naive_texts = [text for run in naive_runs for text in run[2]]
    naive_tok_s = naive_tokens / naive_s if naive_runs else None
    return {
        "naive_tok_s": round(naive_tok_s, 2) if naive_tok_s else None,
        "engine_tok_s": round(engine_tok_s, 2),
        "speedup": round(engine_tok_s / naive_tok_s, 2) if naive_tok_s else None,
        "naive_seconds": round(naive_s, 3),
        "engine_seconds": round(engine_s, 3),
        "naive_tokens": naive_tokens,
        "engine_tokens": engine_tokens,
        "rounds": rounds,
        "engine_tok_s_rounds": [round(rate, 2) for rate in engine_rates],
        "speedup_rounds": speedup_rounds,
        "speedup_rounds_median_interval": median_interval(speedup_rounds),
        "engine_repeatable": all(run[2] == engine_texts for run in engine_runs),
        # of the naive run's answers, how many the engine gave word for word
        "matching_answers": sum(a == b for a, b in zip(naive_texts, engine_texts, strict=False)),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.adapter_mode:
        os.environ["EVALSITE_ADAPTER_MODE"] = args.adapter_mode
    if args.decode_step:
        os.environ["EVALSITE_DECODE_STEP"] = args.decode_step

    import peft
    import torch
    import transformers

    from generation.ml import static_step
    from generation.ml.loading import decode_step_mode

    entry, extra, model_label, prompt_ids = prepare(args)
    lengths = [len(p) for p in prompt_ids]
    log(
        f"{args.prompts} prompts ({min(lengths)}-{max(lengths)} tokens), 2 roles, "
        f"up to {args.max_new_tokens} new tokens"
    )
    log("warm-up")
    run_engine(entry, prompt_ids[:2], 4, args.batch_size)
    naive(entry, prompt_ids[:1], 4)
    naive_count = len(prompt_ids) if args.naive_prompts is None else min(args.naive_prompts, len(prompt_ids))
    result = figures(*run_rounds(entry, prompt_ids, args, naive_count))
    result = {
        **{key: result.pop(key) for key in ("naive_tok_s", "engine_tok_s", "speedup")},
        "device": entry.device,
        "dtype": entry.dtype,
        "model": model_label,
        "prompts": args.prompts,
        "answers": 2 * args.prompts,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "adapter_mode": "merged" if entry.merged else "switch",
        "decode_step": decode_step_mode(entry.device),
        # CUDA graphs captured / captures that failed and ran eagerly (both 0 off CUDA)
        "cuda_graphs": dict(static_step.GRAPH_COUNTS),
        "naive_prompts": naive_count,
        **result,
        **extra,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
        "machine": machine(entry.device),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
