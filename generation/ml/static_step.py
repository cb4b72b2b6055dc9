"""A hand-written llama decode step over a preallocated (static) KV cache, optionally a CUDA graph.

`decoding.decode()` prefills with the transformers model, then takes one token per row per step. For
llama-architecture models (`supports`) those steps can run here instead of through the transformers
forward:

- **Static KV cache.** Every layer's keys/values live in one tensor as wide as the prefill plus
  `max_new_tokens`; a step writes its column in place (`index_copy_`). transformers' DynamicCache
  concatenates a new, one-column-wider copy of every layer's cache at every step.
- **No per-step mask building.** The attention mask is one boolean [rows, columns] tensor; a step sets
  its column. transformers builds a 4-D mask from the 2-D one at every forward.
- **CUDA graphs** (`GreedySteps(capture=True)`, CUDA only, greedy only). A one-token step of a 1B
  model at 128 rows is a few hundred small kernels whose launch may cost more than their work; a
  captured graph replays them in one launch. The step reads its token,
  positions and column from fixed tensors and writes the next token back into the token tensor, so
  one captured graph serves every step of a batch.

The layers' own modules are called (norms, projections, activation, rotary embedding), so LoRA layers
peft injected (and `decoding.RowSwitchedLoRA`'s per-row scaling) work unchanged. Only the attention
and the cache are written here: q/k/v projection, rotary embedding, write the new key/value, scaled dot
product attention over the cache with the mask, o projection, as transformers' LlamaAttention does.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

# CUDA graphs captured and captures that failed (and ran eagerly instead) in this process, so a
# benchmark can say whether its "graph" figures came from graphs
GRAPH_COUNTS = {"captured": 0, "failed": 0}

# rotary embedding types whose frequencies are fixed at load (dynamic/longrope ones change with length)
_STATIC_ROPE = {"default", "linear", "llama3"}


def supports(model: torch.nn.Module) -> bool:
    """True for a transformers LlamaForCausalLM (or one with peft LoRA layers injected) whose rotary
    embedding does not change with sequence length."""
    config = getattr(model, "config", None)
    inner = getattr(model, "model", None)
    if config is None or inner is None or getattr(config, "model_type", None) != "llama":
        return False
    rotary = getattr(inner, "rotary_emb", None)
    if rotary is None or getattr(rotary, "rope_type", "default") not in _STATIC_ROPE:
        return False
    layers = getattr(inner, "layers", None)
    if not layers or not hasattr(model, "lm_head"):
        return False
    attention = layers[0].self_attn
    return all(hasattr(attention, name) for name in ("q_proj", "k_proj", "v_proj", "o_proj", "head_dim"))


class StaticStep:
    """One decode step of `model` for `rows` rows over a static cache of `width` columns.

    `load(keys, values, attention)` copies the prefilled cache (per layer [rows, kv_heads, filled,
    head_dim]) and its 2-D mask into the first `filled` columns. `step(token, position, column)` runs
    one token per row at cache column `column` and returns the logits ([rows, vocab]).
    """

    def __init__(self, model: PreTrainedModel, rows: int, width: int, device: str) -> None:
        self.model = model
        self.inner = model.model
        self.layers = list(self.inner.layers[: model.config.num_hidden_layers])
        first = self.layers[0].self_attn
        self.head_dim = int(first.head_dim)
        self.scaling = float(getattr(first, "scaling", self.head_dim**-0.5))
        self.kv_heads = int(model.config.num_key_value_heads)
        self.heads = int(model.config.num_attention_heads)
        dtype = next(model.parameters()).dtype
        shape = (rows, self.kv_heads, width, self.head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in self.layers]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in self.layers]
        self.mask = torch.zeros((rows, width), dtype=torch.bool, device=device)
        self.width = width

    def load(
        self, keys: list[torch.Tensor], values: list[torch.Tensor], attention: torch.Tensor
    ) -> int:
        filled = attention.shape[1]
        if filled >= self.width:
            raise ValueError("the static cache has no room for new tokens")
        for layer in range(len(self.layers)):
            self.keys[layer][:, :, :filled].copy_(keys[layer])
            self.values[layer][:, :, :filled].copy_(values[layer])
        self.mask[:, :filled].copy_(attention.bool())
        return filled

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only `rows` (an index tensor) of the cache and mask (eager mode's finished-row drop)."""
        self.keys = [k.index_select(0, rows) for k in self.keys]
        self.values = [v.index_select(0, rows) for v in self.values]
        self.mask = self.mask.index_select(0, rows)

    def step(
        self, token: torch.Tensor, position: torch.Tensor, column: torch.Tensor, upto: int | None = None
    ) -> torch.Tensor:
        """Logits for `token` ([rows]) at `position` ([rows]), written to cache column `column` (a
        one-element long tensor). `upto`: attend to the first `upto` columns only (eager mode, where
        the columns after the current one are known to be empty); None attends to all (graph mode,
        where shapes must not change)."""
        self.mask.index_fill_(1, column, True)
        hidden = self.inner.embed_tokens(token[:, None])
        cos, sin = self.inner.rotary_emb(hidden, position[:, None])  # [rows, 1, head_dim]
        mask = self.mask if upto is None else self.mask[:, :upto]
        mask = mask[:, None, None, :]
        rows = token.shape[0]
        group = self.heads // self.kv_heads
        for layer, block in enumerate(self.layers):
            attention = block.self_attn
            residual = hidden
            x = block.input_layernorm(hidden)
            q = attention.q_proj(x).view(rows, self.heads, self.head_dim)
            k = attention.k_proj(x).view(rows, self.kv_heads, self.head_dim)
            v = attention.v_proj(x).view(rows, self.kv_heads, 1, self.head_dim)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            self.keys[layer].index_copy_(2, column, k[:, :, None])
            self.values[layer].index_copy_(2, column, v)
            keys, values = self.keys[layer], self.values[layer]
            if upto is not None:
                keys, values = keys[:, :, :upto], values[:, :, :upto]
            # one new token per row: the query heads that share a key/value head are that head's query
            # rows ([rows, kv_heads, group, head_dim]); the mask is the same for all of them. Faster
            # than SDPA's own grouped-query path (enable_gqa): docs/performance.md.
            out = F.scaled_dot_product_attention(
                q.view(rows, self.kv_heads, group, self.head_dim), keys, values, attn_mask=mask,
                scale=self.scaling,
            )
            hidden = residual + attention.o_proj(out.reshape(rows, 1, -1))
            residual = hidden
            hidden = residual + block.mlp(block.post_attention_layernorm(hidden))
        hidden = self.inner.norm(hidden)
        return self.model.lm_head(hidden[:, -1])


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class GreedySteps:
    """Greedy steps that read `token`, `position`, `column` and write the next token back into
    `token`, advancing `position` and `column`, so replaying N times takes N steps with no host work
    in between. With `capture` (CUDA) the step is captured once as a CUDA graph and each replay is one
    launch (the static cache's tensors are its memory); without it each replay runs the step eagerly
    (the same fixed-shape loop, on any device)."""

    def __init__(
        self,
        step: StaticStep,
        token: torch.Tensor,
        position: torch.Tensor,
        column: torch.Tensor,
        *,
        capture: bool,
    ) -> None:
        self.token, self.position, self.column = token, position, column
        self._step = step
        self.graph: torch.cuda.CUDAGraph | None = None
        if not capture:
            return
        # warm up on a side stream (cuBLAS/attention workspaces), then restore what the warm-up wrote
        saved = (token.clone(), position.clone(), column.clone(), step.mask.clone())
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    self._body()
                    self._restore(saved)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._body()
            self.graph = graph
            GRAPH_COUNTS["captured"] += 1
        except RuntimeError as exc:  # a model whose step cannot be captured still answers, eagerly
            torch.cuda.synchronize()
            logger.warning("CUDA graph capture failed, decoding this batch without it: %s", exc)
            GRAPH_COUNTS["failed"] += 1
            self.graph = None
        self._restore(saved)

    def _body(self) -> None:
        logits = self._step.step(self.token, self.position, self.column)
        self.token.copy_(logits.argmax(-1))
        self.position.add_(1)
        self.column.add_(1)

    def _restore(self, saved: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        token, position, column, mask = saved
        self.token.copy_(token)
        self.position.copy_(position)
        self.column.copy_(column)
        self._step.mask.copy_(mask)

    def replay(self) -> None:
        if self.graph is None:
            self._body()
        else:
            self.graph.replay()
