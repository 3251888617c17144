"""Every cost figure of a plan, computed here and nowhere else.

A node costs its price per hour; a GPU costs its share of the node. A whole GPU is paid by the
replica on it; a shared GPU is split by the larger of each replica's memory and compute share
(scaled down when they add up past one GPU); a MIG slice costs its compute share of the GPU;
what no replica pays for is the pool's idle cost.

The baseline, what the placed models would cost without sharing: each placed model's replicas
on GPUs of their own in the cheapest pool that admits the model and could hold one replica
(its GPUs, memory, CPU and host memory fit the pool's node), priced per GPU-hour of that pool's
node (node price / GPUs per node x GPUs per replica x replicas). Unplaced models are left out,
as the plan does not pay for them. GPUs are priced, not whole nodes: a plan that must buy a
whole node for a few replicas can cost more than its baseline.
"""

from __future__ import annotations

from collections.abc import Iterable

from planner.demand.derive import Demand
from planner.demand.to_engine import COST_UNITS_PER_CURRENCY
from planner.rules.mig import slice_fraction
from planner.schemas import GpuType, NodeShape, Pool


def gpu_price_per_hour(shape: NodeShape) -> float:
    """One GPU's share of its node's price."""
    return shape.price_per_node_hour / shape.gpus_per_node


def nodes_cost_per_hour(nodes: Iterable[NodeShape]) -> float:
    """The price of the nodes bought, each of its shape."""
    return sum(shape.price_per_node_hour for shape in nodes)


def replica_share(gpu: GpuType, demand: Demand, mig_slice: str | None) -> float:
    """The share of one GPU a replica would pay for if it had the GPU to itself."""
    if demand.whole_gpus:
        return 1.0
    if mig_slice is not None:
        return slice_fraction(gpu.mig_profiles[mig_slice])
    return max(demand.memory_mib / gpu.memory_mib, demand.compute_milli / 1000)


def gpu_fractions(shares: list[float]) -> list[float]:
    """Each replica's fraction of one GPU's cost; scaled down when the shares exceed the GPU."""
    total = sum(shares)
    return [s / total for s in shares] if total > 1 else shares


def idle_cost_per_hour(pool_cost: float, paid_by_replicas: float) -> float:
    """What the pool costs beyond what its replicas pay for."""
    return max(pool_cost - paid_by_replicas, 0.0)


def baseline_cost_per_hour(pools: dict[str, Pool], demands: Iterable[list[Demand]]) -> float:
    """Every replica on GPUs of its own, each model in its cheapest admitting pool.

    `demands` holds, per model, its demand in each pool that admits it and could hold one
    replica; pass the placed models' only, as the baseline compares like with like.
    """
    return sum(min(d.replicas * d.gpus_per_replica * gpu_price_per_hour(pools[d.pool].shapes()[0])
                   for d in options) for options in demands if options)


def from_engine_units(amount: int) -> float:
    """The engine's integer cost (1/10,000 of the currency) back in currency."""
    return amount / COST_UNITS_PER_CURRENCY
