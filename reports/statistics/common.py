"""What every statistics module shares: the two roles, the verdict code for "no verdict", and the
JSON-safe float."""

from __future__ import annotations

import math

import numpy as np

ROLES = ("pretrained", "finetuned")
NO_VERDICT = -1
# the smallest sample a correlation is computed from
MIN_FOR_CORRELATION = 3


def finite(value: float | np.floating | None) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
