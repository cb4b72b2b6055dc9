"""decode()'s last phases: the steps after the prefill, one token per row each, and finishing rows.

Three ways to take a step (`STEP_MODES`): through the transformers forward with a growing
DynamicCache, through static_step's hand-written llama step over a preallocated cache, or as replays
of a CUDA graph of that step (greedy only, sampling runs "static"; on a CPU the same fixed-shape loop
runs without a graph)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import DynamicCache, PreTrainedModel

from generation.ml import static_step

from .batch import DecodeBatch, DecodeRun

STEP_MODES = ("transformers", "static", "graph")

# how many graph replays run between checks that every row has stopped
GRAPH_CHECK_EVERY = 8


class DynamicSteps:
    """Steps through the model's own forward; its DynamicCache grows a column per step."""

    def __init__(
        self, model: PreTrainedModel, cache: DynamicCache, attention: torch.Tensor, cache_argument: str
    ) -> None:
        self.model, self.cache, self.attention = model, cache, attention
        self.cache_argument = cache_argument

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only `rows` (an index tensor), and drop the cache columns none of them attends to."""
        self.attention = self.attention[rows]
        columns = self.attention.any(0)
        column_index = None if bool(columns.all()) else columns.nonzero().squeeze(1)
        for layer in self.cache.layers:
            layer.keys, layer.values = layer.keys[rows], layer.values[rows]
            if column_index is not None:
                layer.keys = layer.keys.index_select(2, column_index)
                layer.values = layer.values.index_select(2, column_index)
        if column_index is not None:
            self.attention = self.attention[:, column_index]

    def step(self, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        new_column = self.attention.new_ones((self.attention.shape[0], 1))
        self.attention = torch.cat([self.attention, new_column], 1)
        out = self.model(
            input_ids=token[:, None], attention_mask=self.attention, position_ids=position[:, None],
            use_cache=True, **{self.cache_argument: self.cache},
        )
        return out.logits[:, -1]


class StaticSteps:
    """Steps through static_step's hand-written step, eagerly: column by column after the `filled`
    prefill columns, attending only to the columns written so far."""

    def __init__(self, step: static_step.StaticStep, filled: int, device: str) -> None:
        self.static_step, self.next_column, self.device = step, filled, device

    def keep(self, rows: torch.Tensor) -> None:
        self.static_step.keep(rows)

    def step(self, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        column = torch.tensor([self.next_column], dtype=torch.long, device=self.device)
        self.next_column += 1
        return self.static_step.step(token, position, column, upto=self.next_column)


def decode_steps(
    run: DecodeRun,
    batch: DecodeBatch,
    outputs: list[list[int]],
    *,
    max_new_tokens: int,
    eos: torch.Tensor,
    pick: Callable[[torch.Tensor], torch.Tensor],
) -> None:
    """Record each row's token, drop the rows that just finished (from the cache too), and step the
    rest, until every row has stopped or made `max_new_tokens` tokens. A step's time is charged to
    the rows that took it."""
    for index in range(max_new_tokens):
        batch.record(outputs)
        run.clock.charge(batch.rows)
        if index == max_new_tokens - 1:
            break
        if not batch.filter(eos):
            break
        batch.position = batch.position + 1
        with run.adapter_rows.active(batch.rows):
            logits = batch.steps.step(batch.token, batch.position)
        batch.token = pick(logits)


def graph_steps(
    run: DecodeRun,
    step: static_step.StaticStep,
    filled: int,
    rows: list[int],
    token: torch.Tensor,
    position: torch.Tensor,
    outputs: list[list[int]],
    *,
    max_new_tokens: int,
    eos: torch.Tensor,
) -> None:
    """decode()'s steps as replays of one CUDA graph of `step` (a loaded static_step.StaticStep whose
    first `filled` columns hold the prefill; greedy only; on a CPU, the same loop without a graph), from
    each row's first token and its predecessor's position. Rows are not dropped (the graph's shapes
    are fixed): a finished row keeps being computed, its tokens after end-of-sequence are discarded,
    and every row is charged an equal share of the steps' time. Every `GRAPH_CHECK_EVERY` steps the
    host checks whether all rows have stopped."""
    token = token.clone()
    next_position = (position + 1).clone()
    column = torch.tensor([filled], dtype=torch.long, device=run.device)
    history = [token.clone()]
    with run.adapter_rows.active(rows):
        graph = static_step.GreedySteps(
            step, token, next_position, column, capture=run.device.startswith("cuda")
        )
        stopped = torch.isin(token, eos)
        for index in range(1, max_new_tokens):
            graph.replay()
            history.append(token.clone())
            stopped |= torch.isin(token, eos)
            if index % GRAPH_CHECK_EVERY == 0 and bool(stopped.all()):
                break
    run.clock.charge(rows)
    tokens = torch.stack(history, 1).tolist()
    stops = set(eos.tolist())
    for row, i in enumerate(rows):
        produced = tokens[row]
        stop = next((k for k, t in enumerate(produced) if t in stops), None)
        outputs[i].extend(produced if stop is None else produced[: stop + 1])
