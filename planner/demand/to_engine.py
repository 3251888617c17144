"""Turning a fleet's demands and policy into the engine's integer packing problem."""

from __future__ import annotations

from planner.demand.derive import Demand
from planner.demand.lazy_cache import Cache
from planner.demand.shapes import engine_shapes
from planner.registry.fleet import Fleet
from planner.rules.capacity import MAX_PODS_PER_NODE, gpu_capacity, node_allocatable
from planner.rules.conflicts import conflict_classes
from planner.rules.mig import slice_capacity
from planner.rules.spot import may_use
from planner.schemas import Pool
from solvers.problem import Conflict, Group, Option, Problem, SliceType
from solvers.problem import Pool as EnginePool

DIMENSIONS = ("memory_mib", "compute_milli", "replicas")
NODE_DIMENSIONS = ("cpu_milli", "host_memory_mib")
COST_UNITS_PER_CURRENCY = 10_000  # node prices as integers in 1/10,000 of the currency


def _engine_pools(fleet: Fleet, pool: Pool) -> list[EnginePool]:
    """The pool in the engine: one engine pool per node shape (see `planner.demand.shapes`)."""
    if pool.gpu_type is None:
        # A CPU pool's node is one device that holds its pods, up to the kubelet's maxPods,
        # and nothing in the GPU dimensions; its CPU and host memory bound them.
        return [EnginePool(name=entry.engine_pool, capacity=(0, 0, MAX_PODS_PER_NODE),
                           gpus_per_node=1,
                           node_cost=round(entry.shape.price_per_node_hour
                                           * COST_UNITS_PER_CURRENCY),
                           max_nodes=entry.shape.max_nodes or pool.max_nodes,
                           node_capacity=node_allocatable(fleet.cluster,
                                                          entry.shape.instance_type) or (),
                           family=pool.name if pool.several_shapes else "")
                for entry in engine_shapes(pool)]
    gpu = fleet.cluster.gpu_types[pool.gpu_type]
    policy = fleet.policy
    slices: tuple[SliceType, ...] = ()
    layouts: tuple[tuple[int, ...], ...] = ()
    if pool.sharing == "mig":
        names = list(gpu.mig_profiles)
        slices = tuple(SliceType(name, slice_capacity(profile, policy))
                       for name, profile in gpu.mig_profiles.items())
        layouts = tuple(tuple(layout.count(name) for name in names) for layout in gpu.mig_layouts)
    result = []
    for entry in engine_shapes(pool):
        shape = entry.shape
        assert shape.max_nodes is not None  # Pool.shapes fills it in
        result.append(EnginePool(
            name=entry.engine_pool, capacity=gpu_capacity(gpu.memory_mib, pool, policy),
            gpus_per_node=shape.gpus_per_node,
            node_cost=round(shape.price_per_node_hour * COST_UNITS_PER_CURRENCY),
            max_nodes=shape.max_nodes, mode="mig" if pool.sharing == "mig" else "shared",
            slice_types=slices, mig_layouts=layouts,
            node_capacity=node_allocatable(fleet.cluster, shape.instance_type) or (),
            family=pool.name if pool.several_shapes else ""))
    return result


def _cache_group(fleet: Fleet, cache: Cache) -> Group:
    """A cache's servers: replicas like a model's, on the shapes of its one pool that every
    member may use."""
    options = tuple(
        Option(pool=entry.engine_pool, size=(cache.memory_mib, cache.compute_milli, 1),
               count=cache.servers, node_size=(cache.cpu_milli, cache.host_memory_mib))
        for entry in engine_shapes(fleet.pool(cache.pool))
        if all(may_use(entry.shape, fleet.models[d.model], fleet.policy)
               for d in cache.members))
    return Group(name=cache.name, options=options, priority=cache.priority, optional=True,
                 classes=cache.classes)


def build_problem(fleet: Fleet, demands: dict[str, list[Demand]],
                  caches: tuple[Cache, ...] = ()) -> Problem:
    """One group per model with an option per usable pool, and one per lazy cache; every
    group may stay unplaced."""
    classes, class_conflicts = conflict_classes(fleet.policy, fleet.models)
    conflicts = [Conflict(c.rule, c.a, c.b, c.scope) for c in class_conflicts]
    groups = []
    for name, options in demands.items():
        if not options:
            continue
        model = fleet.models[name]
        engine_options = tuple(
            Option(pool=entry.engine_pool, size=(d.memory_mib, d.compute_milli, 1),
                   count=d.replicas, whole_gpus=d.gpus_per_replica if d.whole_gpus else 0,
                   max_per_node=d.max_per_node, slice=d.mig_slice,
                   node_size=(d.cpu_milli, d.host_memory_mib))
            for d in options for entry in engine_shapes(fleet.pool(d.pool))
            if may_use(entry.shape, model, fleet.policy))
        groups.append(Group(name=name, options=engine_options,
                            priority=fleet.policy.priorities[model.priority].value,
                            optional=True, classes=frozenset(classes[name])))
    groups += [_cache_group(fleet, cache) for cache in caches]
    pools = tuple(p for pool in fleet.cluster.pools for p in _engine_pools(fleet, pool))
    return Problem(DIMENSIONS, pools, tuple(groups), tuple(conflicts),
                   node_dimensions=NODE_DIMENSIONS)
