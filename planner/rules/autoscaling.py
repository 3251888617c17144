"""Autoscaling between the expected mean traffic and the peak.

The plan sizes replicas for the peak (`traffic.peak_rps`); at the expected mean
(`traffic.mean_rps`) the same load per replica needs ceil(replicas x mean / peak) of them, never
fewer than `replicas.min`. A HorizontalPodAutoscaler keeps each pod at that load per replica,
measured as the request rate its serving engine reports, so it runs the mean's replicas at the
mean and the planned ones at the peak. A model without a serving engine publishes no request
rate the planner knows, and is not autoscaled; nor is a batch run (a CronJob or Job runs its
planned replicas and ends).

With `autoscaler: keda` a KEDA ScaledObject does the same on a Prometheus trigger: the serving
engine's request rate as the model's PodMonitor scrapes it, at the same target per replica.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.schemas import ModelSpec

# The per-pod request rate, as the cluster's metrics adapter serves it from the series the
# model's PodMonitor scrapes (docs/observability.md: the adapter rule per engine).
REQUESTS_PER_SECOND = "requests_per_second"
# The engines whose request rate `reports.metrics` can query (a KEDA trigger's query); the
# tests hold the two lists equal.
RATE_ENGINES = ("kserve", "triton", "vllm")


@dataclass(frozen=True)
class ReplicaRange:
    min_replicas: int
    max_replicas: int
    metric: str
    target_per_replica: float  # requests per second per replica
    by: str = "hpa"  # or "keda"


def autoscaling(model: ModelSpec, replicas: int) -> ReplicaRange | None:
    """The model's replica range, or None when the mean needs as many replicas as the peak,
    no mean is given, or its engine is unknown."""
    mean = model.traffic.mean_rps
    if mean is None or model.serving.engine is None or model.batch is not None:
        return None
    peak = model.traffic.peak_rps
    least = min(replicas, max(model.replicas.min, math.ceil(replicas * mean / peak - 1e-9)))
    if least >= replicas:
        return None
    return ReplicaRange(min_replicas=least, max_replicas=replicas, metric=REQUESTS_PER_SECOND,
                        target_per_replica=round(peak / replicas, 3), by=model.autoscaler)


def autoscaler_problems(model: ModelSpec) -> list[tuple[tuple[str, ...], str]]:
    """A KEDA trigger needs a request rate Prometheus holds: an engine whose metrics the
    planner knows."""
    if model.autoscaler != "keda" or model.serving.engine in RATE_ENGINES:
        return []
    return [(("autoscaler",), f"KEDA scales on the request rate the serving engine exposes, "
             f"and serving.engine is '{model.serving.engine}'; set one whose metrics the "
             f"planner knows ({', '.join(RATE_ENGINES)}) or use `autoscaler: hpa`")]
