#!/usr/bin/env python
"""Build the evalsite demo data: a product-review corpus, an evaluation set and a training set.

Deterministic and stdlib only. Run from anywhere:

    .venv/bin/python demo/build_data.py

It writes, next to this script:

* ``data/products.jsonl`` - one product per line: name, category, split, key features (with the
  verdict reviewers reach on each), and 4-6 reviews (rating, text, which features each mentions).
* ``data/eval.jsonl``     - 100 evaluation prompts, 25 per task.
* ``data/train.jsonl``    - >= 320 instruction/answer pairs for LoRA fine-tuning.

Prompt rows carry the ``Prompt`` fields of the spec: external_id, task, text, context, reference,
label. Evaluation prompts come only from products whose split is ``eval``; training pairs only from
products whose split is ``train``, so no review text is shared between the two sets.

Label conventions (machine-checkable truth):

* sentiment       -> "positive" | "negative" | "neutral" (rating 4-5 / 1-2 / 3; a 3-star review
                     always mixes one praised and one criticised feature). The reference starts with
                     the capitalised label word: "Positive. ...".
* features        -> one lowercase feature phrase (1-3 words) that occurs literally in the context
                     and that a correct answer must name.
* recommendation  -> "yes" | "no": yes when reviewers praise the feature the need is about, no when
                     they criticise it. The reference starts with "Yes." or "No.".
* relevance       -> "" (no automated check; judged against the reference).

The script validates its output and prints a summary; it exits non-zero if a check fails.

Modules (next to this script, imported from its folder): ``corpus.py`` parses the hand-written
``corpus.txt`` and composes the reviews, ``questions.py`` generates each task's prompts (with the
shared phrasing helpers of ``prompt_text.py``); this script builds the splits, writes and validates.
"""
from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path

from corpus import build_corpus, product_row
from prompt_text import MAX_CONTEXT
from questions import gen_features, gen_recommendation, gen_relevance, gen_sentiment

SEED = 20240611
HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "data"
EVAL_PER_TASK = 25
TRAIN_PER_TASK = 80


def build_split(products: list[dict], per_task: int, prefix: str | None, rng: random.Random) -> list[dict]:
    rows = []
    rows += gen_sentiment(products, per_task, rng)
    rows += gen_features(products, per_task, rng)
    rows += gen_recommendation(products, per_task, rng)
    rows += gen_relevance(products, per_task, rng)
    # drop accidental duplicates within the split
    seen, unique = set(), []
    for r in rows:
        key = (r["text"], r["context"])
        if key not in seen:
            seen.add(key)
            unique.append(r)
    rows = unique
    if prefix is None:  # eval: ids per task
        short = {"sentiment": "sent", "features": "feat", "recommendation": "rec", "relevance": "rel"}
        counter: Counter = Counter()
        for r in rows:
            counter[r["task"]] += 1
            r["external_id"] = f"{short[r['task']]}-{counter[r['task']]:03d}"
    else:  # train: interleave tasks so any prefix of the file is balanced
        by_task: dict[str, list] = {}
        for r in rows:
            by_task.setdefault(r["task"], []).append(r)
        inter = []
        for i in range(max(len(v) for v in by_task.values())):
            for task in ("sentiment", "features", "recommendation", "relevance"):
                if i < len(by_task.get(task, [])):
                    inter.append(by_task[task][i])
        rows = inter
        for i, r in enumerate(rows, 1):
            r["external_id"] = f"{prefix}-{i:04d}"
    keys = ("external_id", "task", "text", "context", "reference", "label")
    return [{k: r[k] for k in keys} for r in rows]


# ---------------------------------------------------------------------------------------------
# Output and validation
# ---------------------------------------------------------------------------------------------
def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


REQUIRED = ("external_id", "task", "text", "context", "reference", "label")
LABELS = {"sentiment": {"positive", "negative", "neutral"}, "recommendation": {"yes", "no"}}
TASKS = ("sentiment", "features", "recommendation", "relevance")


def validate(products_path: Path, eval_path: Path, train_path: Path) -> list[str]:
    errors: list[str] = []
    products = _load_jsonl(products_path, errors)
    errors += _check_products(products)
    eval_rows, train_rows = _load_jsonl(eval_path, errors), _load_jsonl(train_path, errors)
    for name, rows in (("eval", eval_rows), ("train", train_rows)):
        errors += _check_split(name, rows)
    overlap, shared_reviews = _shared_between(eval_rows, train_rows)
    if overlap:
        errors.append(f"{len(overlap)} eval (text, context) pairs also in train")
    if shared_reviews:
        errors.append(f"{len(shared_reviews)} review lines shared between eval and train")

    per_task = {
        "eval": Counter(r["task"] for r in eval_rows),
        "train": Counter(r["task"] for r in train_rows),
    }
    if any(per_task["eval"][t] != EVAL_PER_TASK for t in TASKS):
        errors.append(f"eval: per-task counts {dict(per_task['eval'])}")
    if len(train_rows) < 320:
        errors.append(f"train: {len(train_rows)} rows < 320")

    _print_summary(products, {"eval": eval_rows, "train": train_rows}, per_task)
    print(f"eval/train (text, context) overlap: {len(overlap)}; shared review lines: {len(shared_reviews)}")
    return errors


def _load_jsonl(path: Path, errors: list[str]) -> list[dict]:
    """The rows of a JSONL file; a line that is not JSON is skipped and reported in errors."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            errors.append(f"{path.name}:{lineno}: invalid JSON ({exc})")
    return rows


def _check_products(products: list[dict]) -> list[str]:
    errors = []
    if len(products) < 40:
        errors.append(f"products: {len(products)} < 40")
    for p in products:
        if not 3 <= len(p["features"]) <= 5:
            errors.append(f"products: {p['product_id']} has {len(p['features'])} features")
        if not 4 <= len(p["reviews"]) <= 6:
            errors.append(f"products: {p['product_id']} has {len(p['reviews'])} reviews")
        for r in p["reviews"]:
            if not 1 <= r["rating"] <= 5:
                errors.append(f"products: {r['review_id']} rating {r['rating']}")
            n_sent = r["text"].count(". ") + 1
            if not 2 <= n_sent <= 4:
                errors.append(f"products: {r['review_id']} has {n_sent} sentences")
    return errors


def _check_split(name: str, rows: list[dict]) -> list[str]:
    """Duplicates within one split's rows, then each row's fields and label."""
    ids = Counter(r.get("external_id") for r in rows)
    errors = [f"{name}: duplicate external_id {i}" for i, c in ids.items() if c > 1]
    pairs = Counter((r.get("text"), r.get("context")) for r in rows)
    errors += [f"{name}: duplicate (text, context) {t[0][:40]!r}" for t, c in pairs.items() if c > 1]
    for lineno, r in enumerate(rows, 1):
        errors += _check_prompt_row(f"{name}.jsonl:{lineno}", r)
    return errors


def _check_prompt_row(where: str, r: dict) -> list[str]:
    missing = [k for k in REQUIRED if k not in r]
    if missing:
        return [f"{where}: missing {missing}"]
    errors = []
    if not all(isinstance(r[k], str) for k in REQUIRED):
        errors.append(f"{where}: non-string field")
    if not r["text"] or not r["reference"]:
        errors.append(f"{where}: empty text or reference")
    if len(r["context"]) > MAX_CONTEXT:
        errors.append(f"{where}: context {len(r['context'])} chars")
    task, label = r["task"], r["label"]
    if task in LABELS and label not in LABELS[task]:
        errors.append(f"{where}: bad label {label!r} for {task}")
    if task == "sentiment" and not r["reference"].lower().startswith(label + "."):
        errors.append(f"{where}: sentiment reference does not start with the label")
    if task == "recommendation" and not r["reference"].lower().startswith(label + "."):
        errors.append(f"{where}: recommendation reference does not start with the label")
    if task == "features":
        if not label or label != label.lower() or not 1 <= len(label.split()) <= 3:
            errors.append(f"{where}: bad features label {label!r}")
        if label.lower() not in r["context"].lower():
            errors.append(f"{where}: features label {label!r} not in context")
        if label.lower() not in r["reference"].lower():
            errors.append(f"{where}: features label {label!r} not in reference")
    if task == "relevance" and label != "":
        errors.append(f"{where}: relevance label must be empty")
    return errors


def _shared_between(eval_rows: list[dict], train_rows: list[dict]) -> tuple[set, set]:
    """(text, context) pairs, and review lines of the contexts, that occur in both splits."""
    eval_pairs = {(r["text"], r["context"]) for r in eval_rows}
    overlap = eval_pairs & {(r["text"], r["context"]) for r in train_rows}
    eval_ctx_reviews = {line for r in eval_rows for line in r["context"].splitlines()[1:]}
    train_ctx_reviews = {line for r in train_rows for line in r["context"].splitlines()[1:]}
    return overlap, eval_ctx_reviews & train_ctx_reviews


def _print_summary(products: list[dict], splits: dict[str, list[dict]], per_task: dict[str, Counter]) -> None:
    print(f"products: {len(products)} ({Counter(p['split'] for p in products)}), "
          f"reviews: {sum(len(p['reviews']) for p in products)}, "
          f"categories: {dict(Counter(p['category'] for p in products))}")
    ratings = Counter(r["rating"] for p in products for r in p["reviews"])
    print(f"review ratings: {dict(sorted(ratings.items()))}")
    for name, rows in splits.items():
        print(f"{name}: {len(rows)} rows, per task {dict(sorted(per_task[name].items()))}")
        for task in ("sentiment", "recommendation"):
            labels = Counter(r["label"] for r in rows if r["task"] == task)
            print(f"  {task} labels: {dict(sorted(labels.items()))}")
        feats = Counter(r["label"] for r in rows if r["task"] == "features")
        print(f"  features labels: {len(feats)} distinct, most common {feats.most_common(3)}")
        print(f"  context chars: max {max(len(r['context']) for r in rows)}, "
              f"mean {sum(len(r['context']) for r in rows) / len(rows):.0f}")


def main() -> int:
    rng = random.Random(SEED)
    products = build_corpus(rng)
    eval_products = [p for p in products if p["split"] == "eval"]
    train_products = [p for p in products if p["split"] == "train"]
    eval_rows = build_split(eval_products, EVAL_PER_TASK, None, random.Random(SEED + 1))
    train_rows = build_split(train_products, TRAIN_PER_TASK, "train", random.Random(SEED + 2))

    paths = (OUT_DIR / "products.jsonl", OUT_DIR / "eval.jsonl", OUT_DIR / "train.jsonl")
    write_jsonl(paths[0], [product_row(p) for p in products])
    write_jsonl(paths[1], eval_rows)
    write_jsonl(paths[2], train_rows)
    errors = validate(*paths)
    for e in errors:
        print(f"ERROR: {e}", file=sys.stderr)
    print("OK" if not errors else f"{len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
