"""`planner plan` without the CLI: derive demands, pack, explain what stayed out, assemble."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from planner.assembly.assemble import assemble
from planner.assembly.zones import place_zones, with_zones
from planner.demand.derive import derive
from planner.demand.lazy_cache import plan_caches
from planner.demand.shapes import shape_of, to_engine_pools, to_plan_pools
from planner.demand.to_engine import build_problem
from planner.planfile import Plan
from planner.registry.fleet import Fleet
from solvers.problem import Placement, Problem, Solution

if TYPE_CHECKING:
    from solvers.engine import Progress


@dataclass(frozen=True)
class SolverSettings:
    method: str = "cpsat"
    time_limit_s: float = 10.0
    seed: int = 0
    workers: int = 2
    # Counted work instead of seconds: the same plan on any machine (see solvers/clock.py).
    deterministic: bool = False


def base_solution(plan: Plan, fleet: Fleet) -> Solution:
    """The placements of an earlier plan, as the engine's base for `fewest moves`.

    Only GPUs that exist in today's cluster count (the pool is there, the node and GPU indexes
    within its limits): the cluster may have shrunk since, and a plan file is input that must
    not index past a pool.
    """
    pools = {pool.name: pool for pool in fleet.cluster.pools}

    def exists(pool_name: str, node: int, gpu: int) -> bool:
        pool = pools.get(pool_name)
        shape = shape_of(pool, node) if pool is not None and node >= 0 else None
        return shape is not None and 0 <= gpu < shape.gpus_per_node

    placements = tuple(
        Placement(slot.model, slot.replica, pool.name, node.index,
                  (gpu.index,), slot.slice)
        for pool in plan.pools for node in pool.nodes for gpu in node.gpus
        if exists(pool.name, node.index, gpu.index) for slot in gpu.replicas)
    # A CPU pool's pods sit on the engine's one device of their node.
    placements += tuple(
        Placement(slot.model, slot.replica, pool.name, node.index, (0,))
        for pool in plan.pools for node in pool.nodes
        if pools.get(pool.name) is not None and pools[pool.name].cpu_only
        and 0 <= node.index < pools[pool.name].max_nodes for slot in node.pods)
    merged: dict[tuple[str, int], Placement] = {}
    for p in placements:  # a multi-GPU replica is listed once per GPU
        key = (p.group, p.replica)
        merged[key] = replace(merged[key], gpus=merged[key].gpus + p.gpus) if key in merged \
            else p
    layouts = {}
    for pool in plan.pools:
        gpu_type = fleet.cluster.gpu_types.get(pool.gpu_type or "")
        for node in pool.nodes:
            for gpu in node.gpus:
                if gpu.mig_layout and gpu_type and gpu.mig_layout in gpu_type.mig_layouts \
                        and exists(pool.name, node.index, gpu.index):
                    layouts[(pool.name, node.index, gpu.index)] = gpu_type.mig_layouts.index(
                        gpu.mig_layout)
    engine_placements, engine_layouts = to_engine_pools(fleet.cluster.pools,
                                                        tuple(merged.values()), layouts)
    return Solution("greedy", 0, 0, engine_placements, mig_layouts=engine_layouts)


def _explain_unplaced(problem: Problem, solution: Solution, settings: SolverSettings
                      ) -> list[str]:
    """Why capacity ran out: the rules that clash when every model must be placed."""
    from solvers.explain import explain

    stuck = [g for g in problem.groups if g.name in solution.unplaced]
    if not stuck:
        return []
    mandatory = replace(problem, groups=tuple(replace(g, optional=False)
                                              for g in problem.groups))
    return explain(mandatory, seed=settings.seed, focus=[g.name for g in stuck])


ZONE_REPACKS = 3  # packings at most after the first, each with more models one per node


def _one_per_node(problem: Problem, models: set[str]) -> Problem:
    """`problem` with the replicas of `models` at most one per node."""
    return replace(problem, groups=tuple(
        replace(g, options=tuple(replace(o, max_per_node=1) for o in g.options))
        if g.name in models else g for g in problem.groups))


def make_plan(fleet: Fleet, settings: SolverSettings, *, base: Plan | None = None,
              progress: Progress | None = None) -> Plan:
    """Derive, pack, explain, assemble, and put the nodes of pools with zones in zones. Where
    no zoning holds a model's zone spread, the packing is done again with that model's
    replicas one per node (its count per zone is then its nodes per zone), a few times."""
    demands, rejections = derive(fleet)
    caches = plan_caches(fleet, demands)
    problem = build_problem(fleet, caches.demands, caches.reserved)
    spaced: set[str] = set()
    for _ in range(ZONE_REPACKS + 1):
        plan = _pack(fleet, settings, _one_per_node(problem, spaced), demands, rejections,
                     caches, base, progress)
        placement = place_zones(plan, settings.seed)
        if not set(placement.broken) - spaced:
            break
        spaced |= set(placement.broken)
    return with_zones(plan, placement, spaced)


def _pack(fleet: Fleet, settings: SolverSettings, problem: Problem, demands, rejections,
          caches, base: Plan | None, progress: Progress | None) -> Plan:
    from solvers.engine import solve

    solution = solve(problem, method=settings.method, time_limit_s=settings.time_limit_s,
                     seed=settings.seed, workers=settings.workers,
                     base=base_solution(base, fleet) if base else None, progress=progress,
                     deterministic=settings.deterministic)
    explanation = _explain_unplaced(problem, solution, settings) if settings.method == "cpsat" \
        else []
    return assemble(fleet, demands, rejections, to_plan_pools(fleet.cluster.pools, solution),
                    caches, solver_name=settings.method,
                    seed=settings.seed, workers=settings.workers,
                    time_limit_s=settings.time_limit_s, explanation=explanation,
                    deterministic=settings.deterministic)
