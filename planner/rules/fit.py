"""Fit: whether one replica can ever run on a node of a pool, whatever else is placed there.

A replica fits a pool when its memory per GPU fits one GPU of the pool after the headroom (in a
MIG pool: the largest slice), its GPUs fit one node, and its pod's CPU and host memory requests
fit the node's allocatable. A CPU-only model fits only CPU pools (pools without a GPU), by
its pod's requests alone, and the host memory it needs must fit its pod's memory request.
Demand derivation rejects a pool that fails this; loading rejects a model that fits no pool
admitting it, since no plan could ever place it. The smallest memory a replica could use is
the least any profile point measured.
"""

from __future__ import annotations

import math

from planner.rules.capacity import (
    client_memory_mib,
    node_allocatable,
    replicas_per_gpu,
    usable_memory_mib,
)
from planner.schemas import Cluster, ModelSpec, Policy, Pool
from profiles.schema import Profile


def memory_limit_mib(cluster: Cluster, pool: Pool, policy: Policy) -> int:
    """The most memory one GPU of a replica may use in `pool`: the GPU's (or, in a MIG pool,
    its largest slice's) memory after the headroom; an MPS client's share of it."""
    assert pool.gpu_type is not None  # a CPU pool has no GPU memory
    gpu = cluster.gpu_types[pool.gpu_type]
    if pool.sharing == "mig" and gpu.mig_profiles:
        return max(usable_memory_mib(p.memory_mib, policy) for p in gpu.mig_profiles.values())
    return client_memory_mib(gpu.memory_mib, pool, policy)


def memory_per_gpu_mib(memory_mib: float, gpus_per_replica: int) -> int:
    """A replica's memory on each of its GPUs: the total spread evenly over them (a CPU-only
    replica's, in host memory, whole)."""
    return math.ceil(memory_mib / max(gpus_per_replica, 1))


def kind_misfit(model: ModelSpec, pool: Pool) -> str | None:
    """Why a CPU-only model cannot use a GPU pool, or a GPU model a CPU pool; None when the
    model and the pool agree."""
    if model.cpu_only and not pool.cpu_only:
        return (f"runs without a GPU (gpus_per_replica: 0), and {pool.name} is a GPU pool "
                f"({pool.gpu_type}); CPU-only models go to CPU pools (no gpu_type)")
    if pool.cpu_only and not model.cpu_only:
        return (f"needs {model.gpus_per_replica} GPU(s) per replica, and {pool.name} is a CPU "
                "pool (no gpu_type)")
    return None


def host_memory_misfit(model: ModelSpec, memory_mib: float) -> str | None:
    """Why a CPU-only replica needing `memory_mib` of host memory overflows its pod's request,
    or None."""
    if memory_mib <= model.serving.host_memory_mib:
        return None
    return (f"{math.ceil(memory_mib)} MiB of host memory, more than the pod's "
            f"serving.host_memory_mib of {model.serving.host_memory_mib}")


def least_memory_mib(model: ModelSpec, profile: Profile | None) -> float | None:
    """The least memory a replica could need on the profile's GPU type (or as stated); host
    memory for a CPU profile."""
    if model.resources is not None:
        return model.resources.memory_mib
    if profile is None:
        return None
    return min(p.peak_memory_mib for p in profile.points)


def misfit(memory_mib: float, gpus_per_replica: int, cluster: Cluster, pool: Pool,
           policy: Policy) -> str | None:
    """Why a replica of `memory_mib` on `gpus_per_replica` GPUs can never run in `pool`, or
    None when it fits an empty node. A GPU pool only: `kind_misfit` compares CPU and GPU."""
    assert pool.gpu_type is not None
    largest = max(shape.gpus_per_node for shape in pool.shapes())
    if gpus_per_replica > largest:
        return (f"{gpus_per_replica} GPUs per replica, a node of {pool.name} has "
                f"{largest}" + (" at most" if pool.other_shapes else ""))
    per_gpu = memory_per_gpu_mib(memory_mib, gpus_per_replica)
    limit = memory_limit_mib(cluster, pool, policy)
    if per_gpu > limit and pool.sharing == "mps":
        clients = replicas_per_gpu(pool, policy)
        usable = usable_memory_mib(cluster.gpu_types[pool.gpu_type].memory_mib, policy)
        most = usable // per_gpu
        fix = (f"; at most {most} clients per GPU (the pool's max_models_per_gpu) would "
               "hold it") if most >= 2 else ""
        return (f"{per_gpu} MiB per GPU, an MPS client of {pool.name} ({pool.gpu_type}) "
                f"holds {limit} MiB: 1/{clients} of the GPU after the "
                f"{policy.memory_headroom:.0%} headroom{fix}")
    if per_gpu > limit:
        what = "its largest MIG slice" if pool.sharing == "mig" else "a GPU"
        return (f"{per_gpu} MiB per GPU, {what} of {pool.name} ({pool.gpu_type}) holds "
                f"{limit} MiB after the {policy.memory_headroom:.0%} headroom")
    return None


def node_misfit(model: ModelSpec, cluster: Cluster, pool: Pool) -> str | None:
    """Why a replica's pod can never fit a node of `pool` by CPU or host memory, or None when
    it fits a node of at least one of the pool's shapes."""
    reasons = []
    for shape in pool.shapes():
        allocatable = node_allocatable(cluster, shape.instance_type)
        if allocatable is None:
            return None
        cpu_milli, memory_mib = allocatable
        wanted = [(model.serving.cpu_milli, cpu_milli, "CPU millicores"),
                  (model.serving.host_memory_mib, memory_mib, "MiB of host memory")]
        over = [f"{need} {unit}, a {shape.instance_type} node of {pool.name} allows {cap}"
                for need, cap, unit in wanted if need > cap]
        if not over:
            return None
        reasons += over
    return "; ".join(reasons)
