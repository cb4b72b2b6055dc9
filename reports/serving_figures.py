"""The job's serving measurements (requests answered alone on the worker) as report figures:
`latency.serving` and `cost.per_1000_requests`."""

from __future__ import annotations

from typing import Any

import numpy as np

from annotations.models import Campaign
from generation.models import ServingMeasurement
from reports.statistics.common import ROLES
from reports.statistics.serving import SERVING_METHOD, WHICH_IS_WHICH, cost_per_1000, serving_latency


def _no_measurement_reason(campaign: Campaign) -> str:
    if campaign.job.imported:
        return "the answers were imported: no worker served them, so nothing was measured answered alone"
    return (
        "no request was measured answered alone: the job ran before serving measurements existed, or "
        "its first chunk did not finish on a worker"
    )


def serving_figures(campaign: Campaign, batched_latency_ms: np.ndarray, price: float) -> tuple[dict, dict]:
    """(latency.serving, cost.per_1000_requests) for the campaign's job. ``batched_latency_ms``: every
    answer's batch-share latency (NaN where unknown), the figure the serving one is set beside."""
    rows = list(
        ServingMeasurement.objects.filter(job_id=campaign.job_id)
        .order_by("id")
        .values_list("role", "first_token_ms", "total_ms", "output_tokens", "device")
    )
    serving: dict[str, Any] = {}
    for role in ROLES:
        mine = [r for r in rows if r[0] == role]
        serving[role] = serving_latency(
            np.array([r[1] for r in mine], dtype=np.float64),
            np.array([r[2] for r in mine], dtype=np.float64),
            np.array([r[3] for r in mine], dtype=np.float64),
        )
        if not mine:
            serving[role]["reason"] = (
                _no_measurement_reason(campaign)
                if not rows
                else (
                    "no request of this role was measured (its adapter could not be loaded, so the pre-trained "
                    "model answered for it)"
                )
            )
    serving["devices"] = sorted({r[4] for r in rows if r[4]})
    serving["method"] = SERVING_METHOD
    serving["which_is_which"] = WHICH_IS_WHICH
    if not rows:
        serving["reason"] = _no_measurement_reason(campaign)
    alone = np.array([r[2] for r in rows], dtype=np.float64)
    return serving, cost_per_1000(batched_latency_ms, alone, price)
