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
rm -f "$EVALSITE_VAR_DIR/evalsite.sqlite3"  # a fresh throwaway database each time
$PY manage.py migrate -v 0
$PY manage.py import_prompts demo/data/train.jsonl --dataset demo-train
$PY manage.py finetune --dataset demo-train --base smollm2-demo --output demo/adapter \
    --epochs 2 --patience 1 --lr 5e-4 --batch-size 8 --max-length 384 --seed 0 --threads 1 "$@"
