"""The worker's decode loop: many prompts, one model, a KV cache that only holds rows still generating.

`decode()` replaces `model.generate()` for the worker's batches. Its phases, each a module here:

1. **Shared prefix computed once** (prefill.shared_prefixes). Every prompt of a job starts with the
   same chat-template header and system prompt. The longest prefix the batch's prompts share is run
   once, at batch size 1, and its keys/values are copied to every row; only each prompt's own suffix
   is prefilled. On CPU, where prefill is compute-bound, this is the largest saving.
2. **Prefill in length-sorted groups** (prefill.prefill). Suffixes are prefilled `prefill_rows` at a
   time, longest first, so a short prompt is not padded to the longest one of the whole batch. The
   groups' caches are then laid side by side (batch.Prefilled.concatenate), padded in the middle
   ([prefix][padding][suffix]) with the padding masked out, and positions counted without it.
3. **Decode steps** (steps.decode_steps over a batch.DecodeBatch). One token per row per step,
   through the transformers forward or, for llama models (`step_mode`, see static_step.py), a
   hand-written step over a preallocated KV cache, on CUDA as replays of one captured graph.
4. **Finishing rows.** A row that emitted an end-of-sequence token is removed from the KV cache and
   the batch at once (DecodeBatch.filter), and cache columns that no remaining row attends to are
   dropped too. generate() keeps computing finished rows until the last row of the batch stops. (The
   graph steps keep every row, their shapes being fixed, and cut each row at its end instead.)

Both roles can share a batch (row_lora.RowSwitchedLoRA, the "switch" adapter mode): pre-trained and
fine-tuned rows share the decode steps with the LoRA adapter switched per row, so a chunk's two roles
take as many steps as its longest answer instead of the sum of each role's longest.

Each row is charged an equal share of every forward pass it took part in (`Decoded.seconds`).
Decoding is greedy by default; `generation.configs.Sampling` turns on sampling (sampling.TokenPicker).

Besides torch it uses transformers' DynamicCache and peft's LoRA Linear layer: the cache's per-layer
`keys`/`values` tensors ([batch, kv_heads, positions, head_dim]) are edited in place, which is
transformers 5's layout (the version is pinned in pyproject.toml). docs/performance.md has what each
phase was measured to save.
"""

from .batch import DecodeBatch, Prefilled, cache_argument
from .loop import Decoded, decode
from .planning import plan_batches, prefill_rows_for, shared_prefix_length
from .row_lora import RowSwitchedLoRA
from .steps import STEP_MODES

__all__ = [
    "STEP_MODES",
    "DecodeBatch",
    "Decoded",
    "Prefilled",
    "RowSwitchedLoRA",
    "cache_argument",
    "decode",
    "plan_batches",
    "prefill_rows_for",
    "shared_prefix_length",
]
