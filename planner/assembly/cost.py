"""Every cost figure of a plan, computed here and nowhere else.

A node costs its price per hour; a GPU costs its share of the node. A whole GPU is paid by the
replica on it; a shared GPU is split by the larger of each replica's memory and compute share
(scaled down when they add up past one GPU); a MIG slice costs its compute share of the GPU;
what no replica pays for is the pool's idle cost. A lazy cache's server pays like a replica,
and its members split that by what each would pay warm.

The baseline, what the placed models would cost without sharing a GPU, bought as the plan buys:
in whole nodes. Each placed model takes the node shape (of a pool that admits it) where one of
its replicas costs least on GPUs of its own: a node holds as many of the model's replicas as
its GPUs (one replica's GPUs each), CPU and host memory allow. The models on one shape share its
nodes, which number the larger of their replicas over what a node holds of each (added up) and
the nodes each model's spread rule needs. Unplaced models are left out, as the plan does not
pay for them.

A CPU pool's node is split among its pods by the larger of each pod's CPU and host memory
share of the node's allocatable (scaled down when they add up past the node); the baseline
counts a CPU-only model's nodes like any other model's (its replicas per node by CPU and host
memory alone).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from fractions import Fraction

from planner.demand.derive import Demand
from planner.demand.lazy_cache import Cache, server_share
from planner.demand.to_engine import COST_UNITS_PER_CURRENCY
from planner.rules.capacity import MAX_PODS_PER_NODE, node_allocatable
from planner.rules.mig import slice_fraction
from planner.schemas import Cluster, GpuType, NodeShape


def gpu_price_per_hour(shape: NodeShape) -> float:
    """One GPU's share of its node's price."""
    return shape.price_per_node_hour / shape.gpus_per_node


def nodes_cost_per_hour(nodes: Iterable[NodeShape]) -> float:
    """The price of the nodes bought, each of its shape."""
    return sum(shape.price_per_node_hour for shape in nodes)


def pod_share(allocatable: tuple[int, int], demand: Demand) -> float:
    """The share of a CPU pool's node one pod pays for: the larger of its CPU and its host
    memory request over the node's allocatable."""
    cpu_milli, memory_mib = allocatable
    return max(demand.cpu_milli / cpu_milli, demand.host_memory_mib / memory_mib)


def replica_share(gpu: GpuType, demand: Demand, mig_slice: str | None) -> float:
    """The share of one GPU a replica would pay for if it had the GPU to itself."""
    if demand.whole_gpus:
        return 1.0
    if mig_slice is not None:
        return slice_fraction(gpu.mig_profiles[mig_slice])
    return max(demand.memory_mib / gpu.memory_mib, demand.compute_milli / 1000)


def cache_share(gpu: GpuType, cache: Cache) -> float:
    """The share of one GPU a lazy cache's server pays for, by the same rule as a replica."""
    return server_share(gpu, cache)


def gpu_fractions(shares: list[float]) -> list[float]:
    """Each replica's fraction of one GPU's cost; scaled down when the shares exceed the GPU."""
    total = sum(shares)
    return [s / total for s in shares] if total > 1 else shares


def idle_cost_per_hour(pool_cost: float, paid_by_replicas: float) -> float:
    """What the pool costs beyond what its replicas pay for."""
    return max(pool_cost - paid_by_replicas, 0.0)


def replicas_per_node(cluster: Cluster, shape: NodeShape, demand: Demand) -> int:
    """How many replicas of one model a node of `shape` holds when they share no GPU: its
    GPUs, CPU and host memory allow; 0 when not even one fits."""
    per_node = shape.gpus_per_node // demand.gpus_per_replica if demand.gpus_per_replica \
        else MAX_PODS_PER_NODE  # a CPU-only pod: its CPU and host memory alone bound it
    allocatable = node_allocatable(cluster, shape.instance_type)
    if allocatable is not None:
        for need, room in zip((demand.cpu_milli, demand.host_memory_mib), allocatable,
                              strict=True):
            if need:
                per_node = min(per_node, room // need)
    return per_node


def baseline_cost_per_hour(cluster: Cluster, demands: Iterable[list[Demand]],
                           shapes_of: Callable[[Demand], list[NodeShape]] | None = None
                           ) -> float:
    """The placed models on GPUs of their own, in whole nodes of each one's cheapest shape.

    `demands` holds, per model, its demand in each pool that admits it and could hold one
    replica; pass the placed models' only, as the baseline compares like with like.
    `shapes_of` gives the node shapes a demand's model may use (default: all of its pool's).
    """
    pools = {pool.name: pool for pool in cluster.pools}
    if shapes_of is None:
        def shapes_of(demand: Demand) -> list[NodeShape]:
            return pools[demand.pool].shapes()
    # Per (pool, instance type, capacity type): the shape, the node share its models fill,
    # the nodes spread needs.
    shapes: dict[tuple[str, str, str], tuple[NodeShape, Fraction, int]] = {}
    for options in demands:
        choices = [(shape.price_per_node_hour / per_node, d, shape, per_node)
                   for d in options for shape in shapes_of(d)
                   if (per_node := replicas_per_node(cluster, shape, d)) > 0]
        if not choices:
            continue
        _, demand, shape, per_node = min(choices, key=lambda c: c[0])
        key = (demand.pool, shape.instance_type, shape.capacity_type)
        _, filled, spread = shapes.get(key, (shape, Fraction(0), 0))
        needed = math.ceil(demand.replicas / demand.max_per_node) \
            if demand.max_per_node else 1
        shapes[key] = (shape, filled + Fraction(demand.replicas, per_node),
                       max(spread, needed))
    return sum(_nodes_price(shape, max(math.ceil(filled), spread))
               for shape, filled, spread in shapes.values())


def _nodes_price(shape: NodeShape, nodes: int) -> float:
    """`nodes` nodes of `shape`: those beyond its `max_nodes` (a spot offer's cap, a
    commitment's) at its list price, as on-demand nodes of the instance type."""
    within = min(nodes, shape.max_nodes or nodes)
    return within * shape.price_per_node_hour + (nodes - within) * (
        shape.list_price_per_node_hour or shape.price_per_node_hour)


def from_engine_units(amount: int) -> float:
    """The engine's integer cost (1/10,000 of the currency) back in currency."""
    return amount / COST_UNITS_PER_CURRENCY
