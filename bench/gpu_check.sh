#!/usr/bin/env bash
# The generation-engine figures the GPU issue asks for, in one device run: random TinyLlama-1.1B
# architecture, bf16, 128 prompts x 128 new tokens, engine vs naive.
#
#   bash bench/gpu_check.sh                      # on the GPU machine, from the repository root
#   PROMPTS=4 TOKENS=3 NAIVE=1 bash bench/gpu_check.sh   # a quick smoke run (any machine)
#
# Runs bench/generation.py three times and writes each JSON line to $OUT (or bench/results/):
#   1. merged adapter (the CUDA default), batch 128, naive timed on the first $NAIVE prompts
#      (one row at a time is slow: 16 prompts x 2 roles x 128 tokens is 4,096 tokens, about 2 minutes
#      at the 35.7 tok/s the naive loop measured on an H200 before)
#   2. switch mode (adapter switched on/off on one base), batch 128, no naive
#   3. merged, batch 64, no naive
# The GPU machine has torch/transformers/peft but not Django (the engine reads Django settings for its
# model cache folder). Carry wheels for it: on this side, before the device call,
#   pip download -d .whl --only-binary=:all: --python-version 3.12 \
#       django==5.2.19 dj-database-url==3.1.2 asgiref sqlparse
# and pass carry=[".whl"]; the script installs them when Django is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PROMPTS=${PROMPTS:-128}
TOKENS=${TOKENS:-128}
NAIVE=${NAIVE:-16}
DEST=${OUT:-bench/results}
mkdir -p "$DEST"

if ! "$PY" -c "import django, dj_database_url" 2>/dev/null; then
    "$PY" -m pip install --quiet --no-index --find-links .whl django dj-database-url
fi
"$PY" -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', \
transformers.__version__, 'peft', peft.__version__, 'cuda', torch.cuda.is_available())"

run() {  # name, then bench/generation.py arguments
    local name=$1
    shift
    echo "== $name"
    # -P: the bench/ folder must not shadow the `generation` package
    "$PY" -P bench/generation.py --random-tinyllama --prompts "$PROMPTS" --max-new-tokens "$TOKENS" "$@" \
        | tee "$DEST/$name.log"
    tail -n 1 "$DEST/$name.log" > "$DEST/$name.json"
}

run engine-merged-b128 --adapter-mode merged --batch-size 128 --naive-prompts "$NAIVE"
run engine-switch-b128 --adapter-mode switch --batch-size 128 --naive-prompts 0
run engine-merged-b64 --adapter-mode merged --batch-size 64 --naive-prompts 0
echo "figures in $DEST"
