"""From profile to demand: operating point, replicas and per-replica resources per pool.

For a model on a pool whose GPU type it was profiled on, the operating point is the highest
measured concurrency whose p99 meets the SLO within `max_concurrency`; replicas cover the peak
at the policy's target utilisation; each replica needs the process's peak memory at that point
and the fraction of a GPU's time that its share of the peak takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.registry.fleet import Fleet
from planner.rules.fit import (
    least_memory_mib,
    memory_limit_mib,
    memory_per_gpu_mib,
    misfit,
    node_misfit,
)
from planner.rules.mig import smallest_slice
from planner.rules.spread import max_per_node
from planner.schemas import MAX_REPLICAS, ModelSpec, Pool


@dataclass(frozen=True)
class Demand:
    """What one model needs in one pool."""

    model: str
    pool: str
    rule: str
    replicas: int
    gpus_per_replica: int
    whole_gpus: bool
    memory_mib: int  # per GPU of a replica
    compute_milli: int  # thousandths of one GPU's time, per replica
    cpu_milli: int  # the pod's CPU request, drawn from its node
    host_memory_mib: int  # the pod's memory request, drawn from its node
    mig_slice: str | None  # in a MIG pool: the slice type every replica uses
    max_per_node: int | None  # the spread rule
    concurrency: int | None
    throughput_rps: float
    p99_ms: float | None
    estimated: bool
    method: str  # measured, reference or stated


@dataclass(frozen=True)
class Rejection:
    """Why a model cannot use a pool that admits it."""

    model: str
    pool: str
    reason: str


def operating_point(model: ModelSpec, profile, memory_limit_mib: float | None = None):
    """The highest measured concurrency that meets the SLO and the concurrency limit and
    whose memory per GPU stays within `memory_limit_mib` (when given)."""
    usable = [p for p in profile.points
              if p.p99_ms <= model.slo.p99_ms and p.concurrency <= model.limits.max_concurrency
              and (memory_limit_mib is None or memory_per_gpu_mib(
                  p.peak_memory_mib, model.gpus_per_replica) <= memory_limit_mib)]
    return max(usable, key=lambda p: p.concurrency) if usable else None


def pool_demand(fleet: Fleet, model: ModelSpec, pool: Pool, rule: str) -> Demand | Rejection:
    policy = fleet.policy
    whole = not model.shares_gpu or pool.sharing == "exclusive"
    if whole and pool.sharing != "exclusive":
        return Rejection(model.name, pool.name,
                         f"needs whole GPUs, and the pool shares them ({pool.sharing})")
    profile = fleet.profiles.get((model.name, pool.gpu_type))
    least = least_memory_mib(model, profile)
    if least is None:
        return Rejection(model.name, pool.name, f"no profile on {pool.gpu_type}")
    too_large = misfit(least, model.gpus_per_replica, fleet.cluster, pool, policy) \
        or node_misfit(model, fleet.cluster, pool)
    if too_large is not None:
        return Rejection(model.name, pool.name, f"one replica never fits: {too_large}")
    if model.resources is not None:
        memory, throughput = model.resources.memory_mib, model.resources.throughput_rps
        concurrency = p99 = None
        method = "stated"
    else:
        assert profile is not None  # least_memory_mib found a profile
        limit_mib = memory_limit_mib(fleet.cluster, pool, policy)
        point = operating_point(model, profile, limit_mib)
        unbounded = operating_point(model, profile)
        if point is None and unbounded is not None:
            return Rejection(model.name, pool.name,
                             f"every concurrency that meets the SLO on {pool.gpu_type} needs "
                             f"more than the {limit_mib} MiB per GPU the pool allows")
        if point is None:
            lowest = profile.points[0]
            return Rejection(model.name, pool.name,
                             f"p99 {lowest.p99_ms:g} ms at concurrency {lowest.concurrency} on "
                             f"{pool.gpu_type} misses the SLO of {model.slo.p99_ms:g} ms")
        memory, throughput = point.peak_memory_mib, point.throughput_rps
        concurrency, p99, method = point.concurrency, point.p99_ms, profile.method
    needed = model.traffic.peak_rps / (throughput * policy.target_utilization)
    if needed > MAX_REPLICAS:
        return Rejection(model.name, pool.name,
                         f"needs more than {MAX_REPLICAS:,} replicas on {pool.gpu_type} for the "
                         f"peak of {model.traffic.peak_rps:g} rps at {throughput:g} rps each; "
                         "check the traffic and the profile's units")
    replicas = max(model.replicas.min, math.ceil(needed))
    if model.replicas.max is not None and replicas > model.replicas.max:
        return Rejection(model.name, pool.name,
                         f"needs {replicas} replicas on {pool.gpu_type} for the peak of "
                         f"{model.traffic.peak_rps:g} rps, replicas.max is {model.replicas.max}")
    share = model.traffic.peak_rps / (replicas * throughput)
    memory_mib = memory_per_gpu_mib(memory, model.gpus_per_replica)
    compute_milli = math.ceil(round(1000 * share, 6))  # rounding first drops float noise
    mig_slice = None
    if pool.sharing == "mig":
        mig_slice = smallest_slice(fleet.cluster.gpu_types[pool.gpu_type], policy, memory_mib,
                                   compute_milli)
        if mig_slice is None:
            return Rejection(model.name, pool.name, f"no MIG profile of {pool.gpu_type} holds "
                             f"a replica ({memory_mib} MiB, {compute_milli} milli-GPU)")
    return Demand(model=model.name, pool=pool.name, rule=rule, replicas=replicas,
                  gpus_per_replica=model.gpus_per_replica, whole_gpus=whole,
                  memory_mib=memory_mib, compute_milli=compute_milli,
                  cpu_milli=model.serving.cpu_milli,
                  host_memory_mib=model.serving.host_memory_mib, mig_slice=mig_slice,
                  max_per_node=max_per_node(policy, replicas), concurrency=concurrency,
                  throughput_rps=throughput, p99_ms=p99, estimated=method != "measured",
                  method=method)


def derive(fleet: Fleet) -> tuple[dict[str, list[Demand]], dict[str, list[Rejection]]]:
    """Every model's demand in each pool that admits it, and why the other pools cannot."""
    demands: dict[str, list[Demand]] = {}
    rejections: dict[str, list[Rejection]] = {}
    for model in fleet.models.values():
        demands[model.name], rejections[model.name] = [], []
        for pool, rule in fleet.admitting_pools(model):
            found = pool_demand(fleet, model, pool, rule)
            if isinstance(found, Demand):
                demands[model.name].append(found)
            else:
                rejections[model.name].append(found)
    return demands, rejections
