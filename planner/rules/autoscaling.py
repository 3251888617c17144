"""Autoscaling between the expected mean traffic and the peak.

The plan sizes replicas for the peak (`traffic.peak_rps`); at the expected mean
(`traffic.mean_rps`) the same load per replica needs ceil(replicas x mean / peak) of them, never
fewer than `replicas.min`. A HorizontalPodAutoscaler keeps each pod at that load per replica,
measured as the request rate its serving engine reports, so it runs the mean's replicas at the
mean and the planned ones at the peak. A model without a serving engine publishes no request
rate the planner knows, and is not autoscaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.schemas import ModelSpec

# The per-pod request rate, as the cluster's metrics adapter serves it from the series the
# model's PodMonitor scrapes (docs/observability.md: the adapter rule per engine).
REQUESTS_PER_SECOND = "requests_per_second"


@dataclass(frozen=True)
class ReplicaRange:
    min_replicas: int
    max_replicas: int
    metric: str
    target_per_replica: float  # requests per second per replica


def autoscaling(model: ModelSpec, replicas: int) -> ReplicaRange | None:
    """The model's replica range, or None when the mean needs as many replicas as the peak,
    no mean is given, or its engine is unknown."""
    mean = model.traffic.mean_rps
    if mean is None or model.serving.engine is None:
        return None
    peak = model.traffic.peak_rps
    least = min(replicas, max(model.replicas.min, math.ceil(replicas * mean / peak - 1e-9)))
    if least >= replicas:
        return None
    return ReplicaRange(min_replicas=least, max_replicas=replicas, metric=REQUESTS_PER_SECOND,
                        target_per_replica=round(peak / replicas, 3))
