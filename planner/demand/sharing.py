"""The share of a GPU a replica needs at the load it gets, and its latency when it shares.

A profile's points are closed-loop measurements: at concurrency c the server always has c
requests in flight and delivers X(c) requests per second with a p99 of P(c). Between measured
levels X and P are interpolated linearly in c; below the first level they are the first's.

- Load: a replica of a model with `peak_rps` over `replicas` gets r = peak_rps / replicas.
- Batch at that load: a batching server does not wait to fill a batch, so it runs the smallest
  concurrency c_r that sustains r within the target utilisation U: the smallest c with
  r <= U * X(c) / k (k below), and the first measured level when even that one suffices.
- Share of the GPU's time: s = r / X(c_r). At low load this is r / X(1), far more than
  r / X(c_op) at the operating concurrency, which assumed full batches that the load never
  forms.
- Latency when sharing, at the operating concurrency c_op (the most requests the server is told
  to hold, and the concurrency packed for memory):
  time-slicing: the GPU's time is shared by the processes on it, which together use at most U
  of it; the others' part, at most U - s, stretches the replica's latency as a processor-sharing
  queue would: P(c_op) / (1 - (U - s)).
  MPS: each of the k = max replicas per GPU clients gets an equal 1/k of the SMs, so its
  throughput is X / k and its latency k * P (compute-bound, the worst case).
  exclusive and MIG: no stretch (a MIG slice is measured as its own device).
- Open loop: when the profile holds an open-loop rate search done at an SLO at least as strict
  as the model's, its rate (which includes queueing under Poisson arrivals) caps what one
  replica may take; a search at a looser SLO is ignored, with a note.

Assumptions: throughput and latency are linear between measured levels; co-located replicas
load the GPU as independent processes (no cross-process batching); time slices are short
against the SLO (context-switch cost is not modelled); points marked unstable are never used.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

from profiles.schema import Point, Profile


@dataclass(frozen=True)
class Sharing:
    """How a pool shares its GPUs, as far as a replica's speed goes."""

    mode: str  # exclusive, time-slicing, mps or mig
    utilization: float  # the policy's target utilisation U
    clients: int  # MPS: the replicas one GPU holds, each with an equal part of the SMs


@dataclass(frozen=True)
class Load:
    """A replica at its share of the peak: batch, throughput and share there, latency."""

    rate_rps: float
    concurrency: float  # the batch its load forms, c_r
    throughput_rps: float  # X(c_r)
    share: float  # of one GPU's time
    p99_ms: float  # at the operating concurrency, stretched by sharing


def interpolate(points: list[Point], concurrency: float, field: str) -> float:
    """`field` of the curve at `concurrency`, linear between measured levels."""
    levels = [p.concurrency for p in points]
    i = bisect_left(levels, concurrency)
    if i == 0:
        return getattr(points[0], field)
    if i == len(points):
        return getattr(points[-1], field)
    lo, hi = points[i - 1], points[i]
    t = (concurrency - lo.concurrency) / (hi.concurrency - lo.concurrency)
    return getattr(lo, field) + t * (getattr(hi, field) - getattr(lo, field))


def load_concurrency(points: list[Point], need_rps: float) -> float | None:
    """The smallest concurrency whose interpolated throughput reaches `need_rps`."""
    if need_rps <= points[0].throughput_rps:
        return points[0].concurrency
    for lo, hi in zip(points, points[1:], strict=False):
        if lo.throughput_rps < need_rps <= hi.throughput_rps:
            t = (need_rps - lo.throughput_rps) / (hi.throughput_rps - lo.throughput_rps)
            return lo.concurrency + t * (hi.concurrency - lo.concurrency)
    return None


def stretch(sharing: Sharing, share: float) -> float:
    """How much sharing the GPU multiplies a replica's latency by."""
    if sharing.mode == "time-slicing":
        return 1 / (1 - max(0.0, sharing.utilization - share))
    if sharing.mode == "mps":
        return float(sharing.clients)
    return 1.0


def open_loop_rate(profile: Profile, slo_p99_ms: float) -> float | None:
    """The open-loop rate one replica sustains within the SLO, when the profile's search was
    done at an SLO at least as strict as `slo_p99_ms`."""
    search = profile.rate_search
    if search is None or search.slo_p99_ms > slo_p99_ms:
        return None
    return search.rate_rps


def replica_load(curve: list[Point], peak_rps: float, replicas: int, sharing: Sharing) -> Load:
    """The load, batch, share and latency of one of `replicas` replicas operating at the last
    point of `curve` (the operating point; the curve holds the usable points up to it)."""
    rate = peak_rps / replicas
    k = sharing.clients if sharing.mode == "mps" else 1
    need = rate * k / sharing.utilization
    concurrency = load_concurrency(curve, need)
    if concurrency is None:  # more than the operating point delivers: saturated there
        concurrency = curve[-1].concurrency
    throughput = interpolate(curve, concurrency, "throughput_rps")
    share = rate / throughput
    return Load(rate_rps=rate, concurrency=concurrency, throughput_rps=throughput, share=share,
                p99_ms=curve[-1].p99_ms * stretch(sharing, share))


def replicas_for(peak_rps: float, rate_cap_rps: float, utilization: float, least: int) -> int:
    """Replicas that keep each one's load within `utilization` of what it can take."""
    return max(least, math.ceil(peak_rps / (rate_cap_rps * utilization)))
