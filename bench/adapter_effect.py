"""Does the committed demo adapter change the demo model's answers? Greedy answers to a few evaluation
queries from SmolLM2-135M-Instruct with and without demo/adapter, counted two ways: how many answers
differ at all, and, for sentiment and recommendation queries, how often the answer's first word is the
query's `label` (e.g. "negative", "no").

    .venv/bin/python bench/adapter_effect.py [--per-task 5] [--max-new-tokens 48] [--threads 1]

The same batches, padding and greedy decoding are used for both, so any difference is the adapter's.
A first-word match is a strict, cheap check (the report's task matchers may be more lenient).
Prints one JSON object on its last line. Never asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._models import model_dir  # noqa: E402

LABELLED_TASKS = ("sentiment", "recommendation")


def first_word(text: str) -> str:
    match = re.search(r"[a-z]+", text.lower())
    return match.group(0) if match else ""


def pick_queries(path: Path, per_task: int) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    taken: dict[str, int] = {}
    picked = []
    for row in rows:  # the first `per_task` queries of every task, in file order
        if taken.get(row["task"], 0) < per_task:
            taken[row["task"]] = taken.get(row["task"], 0) + 1
            picked.append(row)
    return picked


def generate(model, tokenizer, rows: list[dict], *, max_new_tokens: int, batch_size: int) -> list[str]:
    import torch

    from generation.ml.prompting import render_prompt

    answers: list[str] = []
    for start in range(0, len(rows), batch_size):
        group = rows[start : start + batch_size]
        texts = [
            render_prompt(tokenizer, SimpleNamespace(text=r["text"], context=r["context"])) for r in group
        ]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        answers += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return [a.strip() for a in answers]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval", default=str(ROOT / "demo" / "data" / "eval.jsonl"))
    parser.add_argument("--adapter", default=str(ROOT / "demo" / "adapter"))
    parser.add_argument("--base", default="smollm2-demo")
    parser.add_argument("--per-task", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--show", action="store_true", help="print every answer pair")
    args = parser.parse_args()

    import torch
    from peft import PeftModel

    from generation.ml.finetune import device_name
    from generation.ml.modeling import load_base_model, resolve_base

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = pick_queries(Path(args.eval), args.per_task)
    base, tokenizer = load_base_model(resolve_base(args.base, model_dir=model_dir()), device="cpu")
    model = PeftModel.from_pretrained(base, args.adapter).eval()

    started = time.perf_counter()
    with model.disable_adapter():
        plain = generate(
            model, tokenizer, rows, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size
        )
    tuned = generate(model, tokenizer, rows, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    seconds = time.perf_counter() - started

    per_task: dict[str, dict] = {}
    for row, a, b in zip(rows, plain, tuned):
        stats = per_task.setdefault(row["task"], {"n": 0, "differ": 0})
        stats["n"] += 1
        stats["differ"] += a != b
        if row["task"] in LABELLED_TASKS and row.get("label"):
            stats["base_first_word_matches_label"] = stats.get("base_first_word_matches_label", 0) + (
                first_word(a) == row["label"].lower()
            )
            stats["adapter_first_word_matches_label"] = stats.get("adapter_first_word_matches_label", 0) + (
                first_word(b) == row["label"].lower()
            )
        if args.show:
            print(
                f"--- {row['external_id']} ({row['task']}, label {row.get('label')!r})\n"
                f"base:    {a!r}\nadapter: {b!r}"
            )
    labelled = [s for t, s in per_task.items() if t in LABELLED_TASKS]
    report = {
        "queries": len(rows),
        "differ": sum(a != b for a, b in zip(plain, tuned)),
        "labelled_queries": sum(s["n"] for s in labelled),
        "base_first_word_matches_label": sum(s.get("base_first_word_matches_label", 0) for s in labelled),
        "adapter_first_word_matches_label": sum(
            s.get("adapter_first_word_matches_label", 0) for s in labelled
        ),
        "per_task": per_task,
        "examples": [
            {"id": r["external_id"], "label": r.get("label"), "base": a, "adapter": b}
            for r, a, b in list(zip(rows, plain, tuned))[:: max(1, args.per_task)]
        ],
        "max_new_tokens": args.max_new_tokens,
        "decoding": "greedy",
        "adapter": os.path.relpath(args.adapter, ROOT),
        "base": args.base,
        "generation_seconds": round(seconds, 1),
        "device": device_name("cpu"),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
