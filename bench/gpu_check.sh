#!/usr/bin/env bash
# The generation-engine figures the GPU issue asks for, in one device run: random TinyLlama-1.1B
# architecture, bf16, 128 prompts x 128 new tokens, engine vs naive.
#
#   bash bench/gpu_check.sh                      # on the GPU machine, from the repository root
#   PROMPTS=4 TOKENS=3 NAIVE=1 ROWS=4 bash bench/gpu_check.sh   # a quick smoke run (any machine)
#
# Writes each run's log (stdout) and JSON line to $OUT (or bench/results/); a run that fails is named
# at the end and the others still run:
#   1. step-modes: bench/step_modes.py, one batch of 128 rows (half with the LoRA switched on per row)
#      in each decode step mode (transformers, static, graph): tok/s, ms per step, rows equal to
#      static's, and `cuda_graphs` (captured / failed: a failed capture runs eagerly and logs why)
#   2. engine-merged-graph-b128: the headline. Merged adapter (the CUDA default), decode steps replayed
#      as CUDA graphs, batch 128, naive timed on the first $NAIVE prompts (one row at a time is slow:
#      8 prompts x 2 roles x 128 tokens is 2,048 tokens); 3 engine rounds interleaved with the naive
#      shares (--rounds)
#   3. engine-switch-graph-b128: the adapter switched per row on one base, graph steps
#   4. engine-merged-static-b128: merged, the static step without graphs (the current default)
# docs/performance.md says how long the runs take. The benchmarks need torch, transformers and peft
# only (generation.ml imports no Django), which the GPU machine has.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PROMPTS=${PROMPTS:-128}
TOKENS=${TOKENS:-128}
NAIVE=${NAIVE:-8}
ROWS=${ROWS:-128}
DEST=${OUT:-bench/results}
mkdir -p "$DEST"

"$PY" -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', \
transformers.__version__, 'peft', peft.__version__, 'cuda', torch.cuda.is_available())"

failed=()
run() {  # name, then the script and its arguments; a failed run is noted and the next one still runs
    local name=$1
    shift
    echo "== $name"
    # -P: the bench/ folder must not shadow the `generation` package
    if "$PY" -P "$@" | tee "$DEST/$name.log"; then  # pipefail: the status is python's
        tail -n 1 "$DEST/$name.log" > "$DEST/$name.json"
    else
        echo "== $name FAILED (exit $?): see $DEST/$name.log"
        failed+=("$name")
    fi
}
engine=(bench/generation.py --random-tinyllama --prompts "$PROMPTS" --max-new-tokens "$TOKENS")

run step-modes bench/step_modes.py --rows "$ROWS" --tokens "$TOKENS"
run engine-merged-graph-b128 "${engine[@]}" --adapter-mode merged --decode-step graph --batch-size 128 \
    --rounds 3 --naive-prompts "$NAIVE"
run engine-switch-graph-b128 "${engine[@]}" --adapter-mode switch --decode-step graph --batch-size 128 \
    --naive-prompts 0
run engine-merged-static-b128 "${engine[@]}" --adapter-mode merged --decode-step static --batch-size 128 \
    --naive-prompts 0
echo "figures in $DEST"
if ((${#failed[@]})); then
    echo "failed: ${failed[*]}"
    exit 1
fi
