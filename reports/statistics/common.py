"""What every statistics module shares: the two roles, the verdict code for "no verdict", the
small-sample flag, and the JSON-safe float."""

from __future__ import annotations

import math

import numpy as np

ROLES = ("pretrained", "finetuned")
NO_VERDICT = -1
# the smallest sample a correlation is computed from
MIN_FOR_CORRELATION = 3
# what raters scored: the rating page's score, "Score 1 = poor … 5 = excellent"
# (templates/annotations/_answer.html), asked under each task's question
SCORE_SCALE = "the raters' 1–5 quality score (1 = poor … 5 = excellent)"
# a figure over fewer prompts than this is flagged as a small sample wherever it is shown
SMALL_SAMPLE = 30


def small_sample(n: int) -> dict[str, object]:
    """The flag every per-prompt figure carries: ``small_sample`` and, when set, why."""
    if n >= SMALL_SAMPLE:
        return {"small_sample": False}
    return {"small_sample": True, "small_sample_reason": f"small sample: {n} < {SMALL_SAMPLE} prompts"}


def finite(value: float | np.floating | None) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
