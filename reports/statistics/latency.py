"""Latency and cost of the answers, from the latencies and token counts the workers recorded."""

from __future__ import annotations

from typing import Any

import numpy as np

from reports.statistics.common import ROLES


def latency(latency_ms: np.ndarray, output_tokens: np.ndarray) -> dict[str, Any]:
    """``latency_ms`` and ``output_tokens`` are float arrays with NaN where unknown."""
    known = ~np.isnan(latency_ms)
    n = int(known.sum())
    out: dict[str, Any] = {"p50_ms": None, "p95_ms": None, "tokens_per_s": None, "n": n}
    if n == 0:
        out["reason"] = "no answer has a recorded latency"
        return out
    out["p50_ms"] = float(np.percentile(latency_ms[known], 50))
    out["p95_ms"] = float(np.percentile(latency_ms[known], 95))
    both = known & ~np.isnan(output_tokens)
    seconds = float(latency_ms[both].sum()) / 1000.0
    if seconds > 0:
        out["tokens_per_s"] = float(output_tokens[both].sum()) / seconds
    else:
        out["tokens_per_s_reason"] = "no answer has both a latency and an output token count"
    return out


def cost(latency_ms: np.ndarray, gpu_hour_price_usd: float) -> dict[str, Any]:
    """GPU (or CPU) seconds spent answering, and the price per answer at ``gpu_hour_price_usd``."""
    known = ~np.isnan(latency_ms)
    n = int(known.sum())
    out: dict[str, Any] = {
        "gpu_seconds": None,
        "per_request_usd": None,
        "gpu_hour_price_usd": gpu_hour_price_usd,
        "n": n,
        "method": (
            "gpu_seconds = sum of answer latencies; per request = gpu_seconds per answer × price / 3600"
        ),
    }
    if n == 0:
        out["gpu_seconds_reason"] = out["per_request_usd_reason"] = "no answer has a recorded latency"
        return out
    gpu_seconds = float(latency_ms[known].sum()) / 1000.0
    out["gpu_seconds"] = gpu_seconds
    out["per_request_usd"] = gpu_seconds / n * gpu_hour_price_usd / 3600.0
    return out


def latency_histogram(latency_by_role: dict[str, np.ndarray], n_bins: int = 10) -> dict[str, Any]:
    """Answer latencies per role counted over shared, evenly spaced edges (for the page's chart).

    ``latency_by_role``: role -> float array of latencies in ms, NaN where unknown.
    """
    known = {role: values[~np.isnan(values)] for role, values in latency_by_role.items()}
    both = np.concatenate([known[r] for r in ROLES])
    if len(both) == 0:
        reason = "no answer has a recorded latency"
        return {"edges_ms": [], "pretrained": [], "finetuned": [], "reason": reason}
    lo, hi = float(both.min()), float(both.max())
    if hi == lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, n_bins + 1)
    out: dict[str, Any] = {"edges_ms": [float(e) for e in edges]}
    for role in ROLES:
        out[role] = [int(c) for c in np.histogram(known[role], bins=edges)[0]]
    return out
