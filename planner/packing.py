"""Turning a fleet's demands and policy into the engine's integer packing problem."""

from __future__ import annotations

import math

from planner.demand import Demand
from planner.fleet import Fleet
from planner.schemas import Pool
from solvers.problem import Conflict, Group, Option, Problem, SliceType
from solvers.problem import Pool as EnginePool

DIMENSIONS = ("memory_mib", "compute_milli", "replicas")
COST_UNITS_PER_CURRENCY = 10_000  # node prices as integers in 1/10,000 of the currency


def gpu_capacity(fleet: Fleet, pool: Pool) -> tuple[int, int, int]:
    """What one GPU of the pool may hold under the policy: memory, compute, replicas."""
    policy = fleet.policy
    memory = fleet.cluster.gpu_types[pool.gpu_type].memory_mib
    slots = 1 if pool.sharing == "exclusive" else (pool.max_models_per_gpu
                                                   or policy.max_models_per_gpu)
    return (math.floor(memory * (1 - policy.memory_headroom)),
            math.floor(1000 * policy.target_utilization), slots)


def _engine_pool(fleet: Fleet, pool: Pool) -> EnginePool:
    gpu = fleet.cluster.gpu_types[pool.gpu_type]
    headroom, utilization = fleet.policy.memory_headroom, fleet.policy.target_utilization
    slices, layouts = (), ()
    if pool.sharing == "mig":
        names = list(gpu.mig_profiles)
        slices = tuple(SliceType(name, (math.floor(p.memory_mib * (1 - headroom)),
                                        math.floor(1000 * p.compute_slices / 7 * utilization),
                                        1))
                       for name, p in gpu.mig_profiles.items())
        layouts = tuple(tuple(layout.count(name) for name in names) for layout in gpu.mig_layouts)
    return EnginePool(name=pool.name, capacity=gpu_capacity(fleet, pool),
                      gpus_per_node=pool.gpus_per_node,
                      node_cost=round(pool.price_per_node_hour * COST_UNITS_PER_CURRENCY),
                      max_nodes=pool.max_nodes, mode="mig" if pool.sharing == "mig" else "shared",
                      slice_types=slices, mig_layouts=layouts)


def _classes(fleet: Fleet) -> tuple[dict[str, set[str]], list[Conflict]]:
    """Conflict classes per model and the conflicts between them, from the policy's rules."""
    classes: dict[str, set[str]] = {name: set() for name in fleet.models}
    conflicts: list[Conflict] = []
    for rule in fleet.policy.conflicts:
        if rule.between is not None:
            a, b = f"{rule.name}:a", f"{rule.name}:b"
            for model in fleet.models.values():
                if rule.between[0].matches(model):
                    classes[model.name].add(a)
                if rule.between[1].matches(model):
                    classes[model.name].add(b)
            conflicts.append(Conflict(rule.name, a, b, rule.scope))
            continue
        isolated = {m.team for m in fleet.models.values() if rule.separate_teams.matches(m)}
        for model in fleet.models.values():
            classes[model.name].add(f"{rule.name}:team:{model.team}")
            if rule.separate_teams.matches(model):
                classes[model.name].add(f"{rule.name}:isolated:{model.team}")
        for team in sorted(isolated):
            for other in fleet.teams:
                if other != team:
                    conflicts.append(Conflict(rule.name, f"{rule.name}:isolated:{team}",
                                              f"{rule.name}:team:{other}", rule.scope))
    return classes, conflicts


def build_problem(fleet: Fleet, demands: dict[str, list[Demand]]) -> Problem:
    """One group per model with an option per usable pool; every group may stay unplaced."""
    classes, conflicts = _classes(fleet)
    groups = []
    for name, options in demands.items():
        if not options:
            continue
        model = fleet.models[name]
        engine_options = tuple(
            Option(pool=d.pool, size=(d.memory_mib, d.compute_milli, 1), count=d.replicas,
                   whole_gpus=d.gpus_per_replica if d.whole_gpus else 0,
                   max_per_node=d.max_per_node, slice=d.mig_slice) for d in options)
        groups.append(Group(name=name, options=engine_options,
                            priority=fleet.policy.priorities[model.priority].value,
                            optional=True, classes=frozenset(classes[name])))
    pools = tuple(_engine_pool(fleet, pool) for pool in fleet.cluster.pools)
    return Problem(DIMENSIONS, pools, tuple(groups), tuple(conflicts))
