"""Every system in one batch: LoRA adapters switched per row, each row with one adapter or none."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from peft import PeftModel
from peft.tuners.lora.layer import Linear as LoraLinear


class RowSwitchedLoRA:
    """peft LoRA adapters switched per row of a batch: each row runs with one of them, or with none.

    peft's vanilla LoRA layer adds `lora_B(lora_A(x)) * scaling` to the base layer's output, for every
    active adapter. Giving each adapter's scaling in every layer a per-row form (the adapter's scale for
    its own rows, an exact 0 for every other row, see `_RowScale`) makes one forward pass answer every
    system: a base row gets exactly the base output plus zeros, a row of adapter k the base output plus
    adapter k's branch plus zeros. With one adapter that is the two-system case (pre-trained and
    fine-tuned rows in one batch); with several (a job of more than two systems) every adapter's branch
    is computed for every row, which costs K small LoRA products per layer instead of one. peft's own
    mixed batches (`adapter_names=`) split every LoRA layer's input by adapter instead, which was no
    faster for one adapter (docs/performance.md).
    Only plain LoRA on Linear layers qualifies (`supports`); anything else runs in role-homogeneous
    batches. All `names` must be the active adapters (`activate`), adapters not disabled."""

    def __init__(self, peft_model: PeftModel, names: str | Sequence[str]) -> None:
        self.names: tuple[str, ...] = (names,) if isinstance(names, str) else tuple(names)
        self.name = self.names[0]
        self.layers: dict[str, list[LoraLinear]] = {
            name: [m for m in peft_model.modules() if _is_plain_lora_linear(m, name)] for name in self.names
        }
        self._scales: dict[tuple[float, tuple[int, ...], str, int], _RowScale] = {}

    @classmethod
    def supports(cls, peft_model: PeftModel, names: str | Sequence[str]) -> bool:
        for name in (names,) if isinstance(names, str) else names:
            lora_layers = [m for m in peft_model.modules() if name in (getattr(m, "lora_A", None) or {})]
            if not lora_layers or not all(_is_plain_lora_linear(m, name) for m in lora_layers):
                return False
        return True

    def activate(self, peft_model: PeftModel) -> None:
        """Make every adapter of this switch active on the model (peft sums the active adapters)."""
        if len(self.names) == 1:
            peft_model.set_adapter(self.name)
        else:
            peft_model.base_model.set_adapter(list(self.names), inference_mode=True)

    @contextmanager
    def rows(self, adapter_rows: Sequence[int]) -> Iterator[None]:
        """Within the block, row r of a forward pass runs with adapter `names[adapter_rows[r] - 1]`, or
        with none when adapter_rows[r] is 0 (a bool is read as 0 or 1: the first adapter)."""
        flags = tuple(int(f) for f in adapter_rows)
        touched: list[tuple[LoraLinear, str, object]] = []
        for number, name in enumerate(self.names, start=1):
            for layer in self.layers[name]:
                scale = layer.scaling[name]
                device = layer.lora_B[name].weight.device
                key = (float(scale), flags, str(device), number)
                row_scale = self._scales.get(key)
                if row_scale is None:
                    other_rows = [row for row, f in enumerate(flags) if f != number]
                    index = torch.tensor(other_rows, dtype=torch.long, device=device) if other_rows else None
                    row_scale = _RowScale(index, float(scale))
                    if len(self._scales) > 256 * len(self.names):
                        self._scales.clear()
                    self._scales[key] = row_scale
                touched.append((layer, name, scale))
                layer.scaling[name] = row_scale
        try:
            yield
        finally:
            for layer, name, scale in touched:
                layer.scaling[name] = scale


class _RowScale:
    """What peft's `lora_B(lora_A(x)) * scaling` multiplies by under RowSwitchedLoRA: the adapter's
    scale, then the pre-trained rows (`base_rows`, an index along dim 0) filled with an exact 0, so a
    NaN or inf in the LoRA branch (fp16 overflow, say) cannot reach them as a multiplication by 0 would
    (NaN * 0 is NaN). torch's `Tensor.__mul__` returns NotImplemented for this type, so Python calls
    __rmul__. An index fill is cheaper than a boolean-mask `torch.where` (docs/performance.md)."""

    __slots__ = ("base_rows", "scale")

    def __init__(self, base_rows: torch.Tensor | None, scale: float) -> None:
        self.base_rows, self.scale = base_rows, scale

    def __rmul__(self, lora_output: torch.Tensor) -> torch.Tensor:
        scaled = lora_output * self.scale
        return scaled if self.base_rows is None else scaled.index_fill_(0, self.base_rows, 0.0)


def _is_plain_lora_linear(module: torch.nn.Module, name: str) -> bool:
    return (
        isinstance(module, LoraLinear)
        and name in module.lora_A
        and name not in getattr(module, "lora_variant", {})
        and not getattr(module, "merged", False)
        and isinstance(module.scaling.get(name), (int, float))
    )
