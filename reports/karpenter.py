"""Karpenter v1 objects that provision a pool's nodes: NodePools and NodeOverlays.

A pod's node selector may only name labels Karpenter knows before a node exists: the labels a
NodePool sets and the well-known ones. Extended resources (`nvidia.com/gpu.shared`,
`nvidia.com/mig-<profile>`) appear only once the device plugin runs, so a NodeOverlay
(karpenter.sh/v1alpha1, behind Karpenter's `NodeOverlay` feature gate) declares them for the
NodePool's instance type, with the counts the device-plugin and MIG-manager entries yield.

Limits are the pool's ceiling, `max_nodes` nodes and their GPUs, never the planned count, so
Karpenter can add a node for a rollout's surge pod and replace a node on drift or expiry.

A pool with several node shapes gets one NodePool that lists the instance types the plan buys
(Karpenter launches, among the types a NodePool allows, the cheapest that fits the pending
pods), with the sum of those shapes' ceilings as its limits, and one NodeOverlay per instance
type, since each declares the resources of one node.

A pool that lists zones gets a NodePool per zone its planned nodes run in (of each capacity
type or MIG layout), each pinned to its zone; see `_per_zone`.

Where the plan buys both spot and on-demand nodes of a pool, each capacity type has a
NodePool of its own (`POOL` on-demand, `POOL-spot`), so that each holds its own ceiling as its
limits: one NodePool allowing both would launch spot wherever a pod lets it (Karpenter
prefers spot when a NodePool allows it). The pods of a model the plan keeps on on-demand
nodes select on-demand (`reports.manifests.capacity_selector`: every model that may not be
interrupted does); the spot NodePool's higher `weight` sends the others to spot first, up to
its limits, as Karpenter's weighted NodePools do (karpenter.sh, Scheduling: Weighted
NodePools), and they may move to on-demand room when a spot node is taken back.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from planner.planfile import NodePlan, PoolPlan, ShapePlan
from planner.registry.kubernetes import (
    DEVICE_PLUGIN_CONFIG_LABEL,
    MIG_CONFIG_LABEL,
    zone_node_pool_name,
)
from reports.gpu_operator import (
    SPOT_NODE_POOL_SUFFIX,
    WHOLE_GPU,
    advertised,
    mig_node_layouts,
    splits_capacity,
)

NODEPOOL_LABEL = "karpenter.sh/nodepool"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
ZONE_LABEL = "topology.kubernetes.io/zone"


SPOT_NODE_POOL_WEIGHT = 10
"""The spot NodePool's weight where a pool has one per capacity type (the on-demand one has
none, 0): Karpenter tries the NodePool of the highest weight first."""


def _node_pool(pool: PoolPlan, name: str, labels: dict[str, str], max_nodes: int,
               managed_by: dict[str, str], shapes: list[ShapePlan] | None = None,
               weight: int | None = None, zones: list[str] | None = None) -> dict:
    shapes = shapes or pool.chosen_shapes
    types = list(dict.fromkeys(s.instance_type for s in shapes))
    max_gpus = max_nodes * pool.gpus_per_node if len(shapes) == 1 and types[0] == \
        pool.instance_type else min(sum(s.max_nodes * s.gpus_per_node for s in shapes),
                                    max_nodes * max(s.gpus_per_node for s in shapes))
    requirements = [{"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": types},
                    {"key": CAPACITY_TYPE_LABEL, "operator": "In",
                     "values": sorted({s.capacity_type for s in shapes})}]
    if zones:
        requirements.append({"key": ZONE_LABEL, "operator": "In", "values": list(zones)})
    return {
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": {"name": name, "labels": dict(managed_by)},
        "spec": {
            **({"weight": weight} if weight is not None else {}),
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeClassRef": dict(pool.node_class),
                    "requirements": requirements,
                    "taints": [{"key": t.key, "value": t.value, "effect": t.effect}
                               for t in pool.taints],
                    "expireAfter": "720h",
                },
            },
            "limits": {"nodes": str(max_nodes),
                       **({WHOLE_GPU: str(max_gpus)} if max_gpus else {})},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m",
                           "budgets": [{"nodes": "1"}]},
        },
    }


def _node_overlay(node_pool: str, capacity: dict[str, int],
                  managed_by: dict[str, str], instance_type: str | None = None,
                  node_pools: list[str] | None = None) -> dict:
    """The resources of `node_pool`'s nodes (of `instance_type`), or of the nodes of each of
    `node_pools` where the pool has one per capacity type."""
    requirements = [{"key": NODEPOOL_LABEL, "operator": "In",
                     "values": node_pools or [node_pool]}]
    if instance_type is not None:
        requirements.append({"key": INSTANCE_TYPE_LABEL, "operator": "In",
                             "values": [instance_type]})
    return {
        "apiVersion": "karpenter.sh/v1alpha1", "kind": "NodeOverlay",
        "metadata": {"name": node_pool if instance_type is None
                     else f"{node_pool}-{instance_type.replace('.', '-')}",
                     "labels": dict(managed_by)},
        "spec": {"requirements": requirements,
                 "capacity": {resource: str(count) for resource, count in capacity.items()}},
    }


def _layout_node_limits(pool: PoolPlan) -> dict[str, int]:
    """Each MIG layout's NodePool node limit: the pool's ceiling less the nodes the other
    layouts plan."""
    layouts = mig_node_layouts(pool)
    planned = sum(count for _, count in layouts.values())
    return {name: pool.max_nodes - (planned - count) for name, (_, count) in layouts.items()}


def _per_zone(pool: PoolPlan, name: str, limit: int,
              nodes: list[NodePlan]) -> list[tuple[str, list[str] | None, int]]:
    """(NodePool, zones it may launch in, node limit) for the NodePool `name` of node limit
    `limit` and planned `nodes`. A pool that lists zones gets one per zone the plan puts those
    nodes in, so each zone holds its planned nodes (Karpenter does not balance zones itself:
    it launches where the pods' zone spread lets them go), each limited to its planned nodes
    plus what `limit` leaves free of them; with no planned node, one over every listed zone.
    A pool without zones: the one NodePool, in any zone."""
    if not pool.zones:
        return [(name, None, limit)]
    planned = Counter(node.zone for node in nodes)
    if not planned:
        return [(name, list(pool.zones), limit)]
    free = limit - len(nodes)
    return [(zone_node_pool_name(name, zone), [zone], planned[zone] + free)
            for zone in pool.zones if planned[zone]]


@dataclass(frozen=True)
class NodePoolSpec:
    """One NodePool of a pool: its zones (None: any), node limit, the shapes it allows (None:
    the pool's chosen ones), weight, and in a MIG pool the MIG manager config it selects
    with that config's node layout."""

    name: str
    zones: list[str] | None
    limit: int
    shapes: list[ShapePlan] | None = None
    weight: int | None = None
    mig: tuple[str, list[dict]] | None = None


def _node_pools(pool: PoolPlan) -> list[NodePoolSpec]:
    """Every NodePool of the pool: per capacity type bought (outside MIG) or MIG layout, and
    per zone where the pool lists zones."""
    if pool.sharing != "mig":
        by_capacity = capacity_node_pools(pool)
        split = len(by_capacity) > 1
        return [NodePoolSpec(zone_name, zones, limit, shapes,
                             SPOT_NODE_POOL_WEIGHT if name != pool.name else None)
                for name, shapes in by_capacity.items()
                for zone_name, zones, limit in _per_zone(
                    pool, name, _node_limit(pool, shapes),
                    [n for n in pool.nodes if not split or
                     (pool.shape(n).capacity_type == "spot") == (name != pool.name)])]
    limits = _layout_node_limits(pool)
    return [NodePoolSpec(zone_name, zones, limit, mig=(name, layout))
            for (name, (layout, _)), nodes in zip(mig_node_layouts(pool).items(),
                                                   pool.nodes_by_mig_layout.values(), strict=True)
            for zone_name, zones, limit in _per_zone(pool, name, limits[name], nodes)]


def node_ceiling(pool: PoolPlan) -> int:
    """The most nodes the pool's NodePools together may hold: the sum of their node limits."""
    return sum(spec.limit for spec in _node_pools(pool))


def _node_limit(pool: PoolPlan, shapes: list[ShapePlan] | None = None) -> int:
    """The node limit of a pool's NodePool (of one allowing `shapes`): its ceiling, over every
    shape it allows."""
    if not pool.shapes:
        return pool.max_nodes
    return sum(s.max_nodes for s in shapes or pool.chosen_shapes)


def capacity_node_pools(pool: PoolPlan) -> dict[str, list[ShapePlan]]:
    """A pool's NodePools outside MIG, each with the shapes it allows: one, or where the plan
    buys both spot and on-demand nodes, one per capacity type."""
    shapes = pool.chosen_shapes
    if not splits_capacity(pool):
        return {pool.name: shapes}
    return {pool.name: [s for s in shapes if s.capacity_type != "spot"],
            pool.name + SPOT_NODE_POOL_SUFFIX: [s for s in shapes if s.capacity_type == "spot"]}


def _capacity_node_pools(pool: PoolPlan, labels: dict[str, str],
                         managed_by: dict[str, str]) -> list[dict]:
    return [_node_pool(pool, spec.name, labels, spec.limit, managed_by, spec.shapes,
                       spec.weight, spec.zones) for spec in _node_pools(pool)]


def pool_objects(pool: PoolPlan, selector: dict[str, str],
                 managed_by: dict[str, str], overlays: bool = True) -> list[dict]:
    """The pool's NodePools (one per MIG node layout or capacity type bought, and per zone
    where the pool lists zones) and the overlays of their resources.

    `selector` is the labels its pods select; every NodePool sets them. A MIG layout's
    NodePool may grow into whatever of the pool's ceiling the other layouts' planned nodes
    leave free. Without `overlays` (DRA: the device plugin is off, so no node advertises the
    extended resources) only the NodePools.
    """
    if pool.gpu_type is None:  # a CPU pool: no GPU, no device plugin, nothing to overlay
        return _capacity_node_pools(pool, dict(selector), managed_by)
    labels = {**selector, DEVICE_PLUGIN_CONFIG_LABEL: pool.name}
    if pool.sharing != "mig":
        documents = _capacity_node_pools(pool, labels, managed_by)
        if not overlays:
            return documents
        node_pools = [spec.name for spec in _node_pools(pool)]
        if not pool.shapes:
            capacity = advertised(pool)
            if capacity:
                documents.append(_node_overlay(pool.name, capacity, managed_by,
                                               node_pools=node_pools
                                               if node_pools != [pool.name] else None))
            return documents
        for shape in {s.instance_type: s for s in pool.chosen_shapes}.values():
            capacity = advertised(pool, gpus_per_node=shape.gpus_per_node)
            if capacity:
                documents.append(_node_overlay(pool.name, capacity, managed_by,
                                               shape.instance_type, node_pools))
        return documents
    documents = []
    for spec in _node_pools(pool):
        assert spec.mig is not None
        config, layout = spec.mig
        documents.append(_node_pool(pool, spec.name, {**labels, MIG_CONFIG_LABEL: config},
                                    spec.limit, managed_by, zones=spec.zones))
        if overlays:
            documents.append(_node_overlay(spec.name, advertised(pool, layout), managed_by))
    return documents
