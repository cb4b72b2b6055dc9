#!/usr/bin/env bash
# Rebuilds demo/adapter: the LoRA adapter on SmolLM2-135M-Instruct ("smollm2-demo") trained on
# demo/data/train.jsonl, on the CPU. Uses a throwaway SQLite database so the demo database is untouched.
# Two epochs fit the 15-minute CPU budget here; --threads 1 because oversubscribed threads on a shared
# 2-core machine ran 4x slower. demo/adapter/training.json records the measured run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export DEBUG=1 EVALSITE_VAR_DIR=${EVALSITE_VAR_DIR:-/tmp/ft-var}
# reuse the converted demo model if the site already has one
export EVALSITE_MODEL_DIR=${EVALSITE_MODEL_DIR:-$PWD/var/models}
mkdir -p "$EVALSITE_VAR_DIR"
$PY manage.py migrate -v 0
$PY manage.py shell -c '
import json
from django.db import transaction
from generation.models import Dataset, Prompt
FIELDS = ("external_id", "task", "text", "context", "reference", "label")
rows = [json.loads(line) for line in open("demo/data/train.jsonl") if line.strip()]
with transaction.atomic():
    Dataset.objects.filter(name="demo-train").delete()
    dataset = Dataset.objects.create(name="demo-train", description="demo/data/train.jsonl")
    Prompt.objects.bulk_create(Prompt(dataset=dataset, **{f: row.get(f) or "" for f in FIELDS}) for row in rows)
print(f"loaded {len(rows)} training prompts")
'
$PY manage.py finetune --dataset demo-train --base smollm2-demo --output demo/adapter \
    --epochs 2 --patience 1 --lr 5e-4 --batch-size 8 --max-length 384 --seed 0 --threads 1 "$@"
