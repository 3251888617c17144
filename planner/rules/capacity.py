"""Capacity under the policy: how much of a GPU (or a MIG slice) a plan may fill.

Memory is filled up to `1 - memory_headroom` of the device, compute up to `target_utilization`
of its time, and a shared GPU holds at most `max_models_per_gpu` replicas (one when exclusive);
under MPS each replica is held to an equal share of the GPU's memory.
A node's pods share its allocatable CPU and host memory: the instance type's less the reserve.
"""

from __future__ import annotations

import math

from planner.schemas import Cluster, Policy, Pool

MAX_PODS_PER_NODE = 110  # the kubelet's default maxPods: a CPU pool's node holds no more pods


def usable_memory_mib(memory_mib: int, policy: Policy) -> int:
    """The memory a plan may fill on a device of `memory_mib`, after the headroom."""
    return math.floor(memory_mib * (1 - policy.memory_headroom))


def usable_compute_milli(fraction_of_gpu: float, policy: Policy) -> int:
    """Thousandths of one GPU's time a plan may fill on `fraction_of_gpu` of a GPU."""
    return math.floor(1000 * fraction_of_gpu * policy.target_utilization)


def replicas_per_gpu(pool: Pool, policy: Policy) -> int:
    """At most this many replicas share one GPU of the pool."""
    if pool.sharing == "exclusive":
        return 1
    return pool.max_models_per_gpu or policy.max_models_per_gpu


def client_memory_mib(memory_mib: int, pool: Pool, policy: Policy) -> int:
    """The most memory one replica may use on a GPU of `memory_mib` in `pool`.

    Under MPS the device plugin runs one MPS control daemon per GPU and pins each of its
    `replicas` clients to an equal share of the GPU's memory (and of its SMs), so a replica is
    held to its share of the usable memory: the shares add up to what the headroom leaves.
    Otherwise a replica may use all the usable memory of its GPU.
    """
    usable = usable_memory_mib(memory_mib, policy)
    if pool.sharing == "mps":
        return usable // replicas_per_gpu(pool, policy)
    return usable


def gpu_capacity(memory_mib: int, pool: Pool, policy: Policy) -> tuple[int, int, int]:
    """What one GPU of the pool may hold: memory MiB, compute milli, replicas."""
    return (usable_memory_mib(memory_mib, policy), usable_compute_milli(1.0, policy),
            replicas_per_gpu(pool, policy))


def node_allocatable(cluster: Cluster, instance_type: str) -> tuple[int, int] | None:
    """CPU millicores and host memory MiB that the pods of one node of `instance_type` may
    request: its capacity less the system reserve; None when it is not described (a pool
    without an instance type)."""
    instance = cluster.instance_types.get(instance_type)
    if instance is None:
        return None
    return (instance.cpu_milli - instance.reserved.cpu_milli,
            instance.memory_mib - instance.reserved.memory_mib)
