"""Both roles in one batch: a LoRA adapter switched on for some rows and off for the others."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from peft import PeftModel
from peft.tuners.lora.layer import Linear as LoraLinear


class RowSwitchedLoRA:
    """One peft LoRA adapter switched on for some rows of a batch and off for the others.

    peft's vanilla LoRA layer adds `lora_B(lora_A(x)) * scaling` to the base layer's output. Giving
    every layer a per-row scaling (its scale for adapter rows, 0 for base rows, see `_RowScale`) makes
    one forward pass answer both roles: base rows get exactly the base output plus zero. peft's own
    mixed batches (`adapter_names=`) split every LoRA layer's input by adapter instead, which was no
    faster (docs/performance.md).
    Only plain LoRA on Linear layers qualifies (`supports`); anything else runs in role-homogeneous
    batches. The peft model must have `name` as its active adapter, adapters not disabled."""

    def __init__(self, peft_model: PeftModel, name: str) -> None:
        self.name = name
        self.layers: list[LoraLinear] = [m for m in peft_model.modules() if _is_plain_lora_linear(m, name)]
        self._scales: dict[tuple[float, tuple[bool, ...], str], _RowScale] = {}

    @classmethod
    def supports(cls, peft_model: PeftModel, name: str) -> bool:
        lora_layers = [m for m in peft_model.modules() if name in (getattr(m, "lora_A", None) or {})]
        return bool(lora_layers) and all(_is_plain_lora_linear(m, name) for m in lora_layers)

    @contextmanager
    def rows(self, adapter_rows: Sequence[bool]) -> Iterator[None]:
        """Within the block, row r of a forward pass runs with the adapter when adapter_rows[r]."""
        originals = [layer.scaling[self.name] for layer in self.layers]
        flags = tuple(adapter_rows)
        for layer, scale in zip(self.layers, originals, strict=True):
            device = layer.lora_B[self.name].weight.device
            key = (float(scale), flags, str(device))
            row_scale = self._scales.get(key)
            if row_scale is None:
                base_rows = [row for row, on in enumerate(flags) if not on]
                index = torch.tensor(base_rows, dtype=torch.long, device=device) if base_rows else None
                row_scale = _RowScale(index, float(scale))
                if len(self._scales) > 256:
                    self._scales.clear()
                self._scales[key] = row_scale
            layer.scaling[self.name] = row_scale
        try:
            yield
        finally:
            for layer, scale in zip(self.layers, originals, strict=True):
                layer.scaling[self.name] = scale


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
