"""What one user waits for: latency of requests answered alone (batch of 1), and what serving costs.

The answers' own `latency_ms` is each answer's share of the compute of the batch it was made in: what
the job cost per answer, not what any client waited (a client whose request rode in a batch waited for
the whole batch). The worker therefore also answers a sample of prompts alone, per role, and records the
time to the first token and to the full answer (`ServingMeasurement`). This module turns those into
quantiles with distribution-free intervals, and prices 1,000 requests both ways.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
QUANTILES = (("p50", 0.50), ("p95", 0.95))
SERVING_METHOD = (
    "a sample of the job's prompts answered one at a time (batch of 1) by the worker's decode loop after "
    "the job's batches, with the job's settings: first_token = a call generating one token (prefill and "
    "the first token), total = a separate call generating the full answer; p50/p95 = sample quantiles "
    "(linear interpolation); ci95 = distribution-free interval between two order statistics (binomial), "
    "null when the sample is too small for one"
)
WHICH_IS_WHICH = (
    "latency.ROLE (p50_ms, p95_ms) is each answer's share of its batch's compute: what the job cost per "
    "answer, which no client waits. latency.serving is what one request waits when answered alone."
)
COST_METHOD = (
    "batched = mean compute share per answer (latency.ROLE's figures, all answers) x price / 3600 x 1000; "
    "alone = mean full-answer time of a request answered alone (latency.serving's sample) x price / 3600 "
    "x 1000, the device serving one request at a time. No interval: each is a mean of measured times "
    "(the spread is in the latency quantiles)"
)


def quantile_ci(values: np.ndarray, q: float, confidence: float = CONFIDENCE) -> list[float] | None:
    """A distribution-free interval for the q-quantile: [x(j), x(k)] (order statistics, 1-based) with
    P(j <= B < k) >= confidence for B ~ Binomial(n, q) — exact for independent draws from a continuous
    distribution, conservative with ties. The narrowest such pair (in ranks), the one whose two tails are
    closest on a tie, the lower of two mirror images; None when
    even [min, max] does not reach the confidence (e.g. a p95 from fewer than 59 values)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0:
        return None
    cdf = stats.binom.cdf(np.arange(-1, n + 1), n, q)  # cdf[i + 1] = P(B <= i)
    best: tuple[int, float, int, int] | None = None
    for j in range(1, n + 1):
        # coverage of [x(j), x(k)] = P(B <= k - 1) - P(B <= j - 1) = cdf[k] - cdf[j]
        reach = np.flatnonzero(cdf[j + 1 :] - cdf[j] >= confidence - 1e-12)
        if len(reach) == 0:
            continue
        k = j + 1 + int(reach[0])
        if k > n:
            continue
        tails = abs(cdf[j] - (1.0 - cdf[k]))
        candidate = (k - j, tails, j, k)
        if best is None or candidate[:2] < best[:2]:
            best = candidate
    if best is None:
        return None
    _, _, j, k = best
    return [float(x[j - 1]), float(x[k - 1])]


def _quantiles(prefix: str, values: np.ndarray, out: dict[str, Any]) -> None:
    for name, q in QUANTILES:
        out[f"{prefix}_{name}_ms"] = float(np.percentile(values, q * 100))
        ci = quantile_ci(values, q)
        out[f"{prefix}_{name}_ci95"] = ci
        if ci is None:
            out[f"{prefix}_{name}_ci95_reason"] = (
                f"{len(values)} measurements are too few for a {CONFIDENCE:.0%} interval on the "
                f"{name} (even the smallest and largest do not bracket it with that confidence)"
            )


def serving_latency(
    first_token_ms: np.ndarray, total_ms: np.ndarray, output_tokens: np.ndarray
) -> dict[str, Any]:
    """One role's measurements (parallel arrays, one entry per request answered alone)."""
    n = len(total_ms)
    out: dict[str, Any] = {"n": n}
    if n == 0:
        for prefix in ("first_token", "total"):
            for name, _ in QUANTILES:
                out[f"{prefix}_{name}_ms"] = out[f"{prefix}_{name}_ci95"] = None
        out["tokens_per_s"] = None
        return out
    _quantiles("first_token", first_token_ms, out)
    _quantiles("total", total_ms, out)
    seconds = float(total_ms.sum()) / 1000.0
    out["tokens_per_s"] = float(output_tokens.sum()) / seconds if seconds > 0 else None
    out["mean_output_tokens"] = float(output_tokens.mean())
    return out


def cost_per_1000(batched_latency_ms: np.ndarray, alone_total_ms: np.ndarray, price: float) -> dict[str, Any]:
    """What 1,000 requests cost served in the job's batches and served one at a time, at `price` per
    device hour. ``batched_latency_ms`` may hold NaN (unknown)."""
    batched = batched_latency_ms[~np.isnan(batched_latency_ms)]
    out: dict[str, Any] = {
        "batched_usd": None,
        "batched_n": len(batched),
        "alone_usd": None,
        "alone_n": len(alone_total_ms),
        "alone_to_batched": None,
        "gpu_hour_price_usd": price,
        "method": COST_METHOD,
    }
    per_1000 = price / 3600.0 * 1000.0
    if len(batched):
        out["batched_usd"] = float(batched.mean()) / 1000.0 * per_1000
    else:
        out["batched_usd_reason"] = "no answer has a recorded latency"
    if len(alone_total_ms):
        out["alone_usd"] = float(alone_total_ms.mean()) / 1000.0 * per_1000
    else:
        out["alone_usd_reason"] = "no request was measured answered alone"
    if out["batched_usd"] and out["alone_usd"] is not None:
        out["alone_to_batched"] = out["alone_usd"] / out["batched_usd"]
    return out
