"""What each placement rule costs: the plan re-solved with one rule relaxed at a time.

A rule binds when the plan would be cheaper without it. Each relaxation is a changed copy of
the loaded Fleet (policy rules: spread, conflicts, admission, replicas per GPU, memory headroom,
target utilisation; a pool's node shapes: the pool may also buy the other shapes of its GPU
type that the cluster's pools list) or of the engine's problem (the spread of one model),
solved with the
plan's own solver settings; the saving is the plan's cost less the relaxed plan's, over the
same hours. The work is bounded by a count of re-solves (`MAX_RELAXATIONS`), each within the
settings' limit, counted work with `--deterministic` (the same prices on any machine). The
registry is never touched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from planner.demand.derive import derive
from planner.demand.lazy_cache import CachePlan, plan_caches
from planner.demand.to_engine import COST_UNITS_PER_CURRENCY, build_problem
from planner.pipeline import SolverSettings
from planner.planfile import Plan, RulePrice
from planner.registry.fleet import Fleet
from planner.schemas import MAX_MODELS_PER_GPU, NodeShape, Pool
from solvers.problem import Problem

MAX_RELAXATIONS = 16  # re-solves per pricing, however many rules and models


@dataclass(frozen=True)
class Relaxation:
    """One rule relaxed: on the Fleet (policy rules) or on the engine's problem."""

    rule: str  # what a person calls it: "spread (max_node_share 0.5)"
    relaxed: str  # what is changed: "no spread"
    fleet: Callable[[Fleet], Fleet] | None = None
    problem: Callable[[Problem], Problem] | None = None


@dataclass(frozen=True)
class RuleCost:
    """A relaxation's outcome, in engine cost units per hour and unplaced models."""

    rule: str
    relaxed: str
    cost: int
    unplaced: int  # models of the registry the relaxed plan leaves out
    status: str


def _policy(fleet: Fleet, **changes) -> Fleet:
    return dataclasses.replace(fleet, policy=fleet.policy.model_copy(update=changes))


def policy_relaxations(fleet: Fleet) -> list[Relaxation]:
    """Every policy rule that could bind, each with the change that lifts it."""
    policy = fleet.policy
    result = []
    if policy.spread.max_node_share < 1:
        result.append(Relaxation(
            f"spread (max_node_share {policy.spread.max_node_share:g})", "no spread",
            fleet=lambda f: _policy(f, spread=f.policy.spread.model_copy(
                update={"max_node_share": 1.0}))))
    for conflict in policy.conflicts:
        result.append(Relaxation(f"conflict {conflict.name}", "rule removed",
                                 fleet=_without_conflict(conflict.name)))
    shared = [p.name for p in fleet.cluster.pools if p.pool_class != "low-priority"]
    for admission in policy.admission:
        extra = [p for p in shared if p not in admission.pools]
        if extra:
            result.append(Relaxation(f"admission {admission.name}",
                                     f"also admits to {', '.join(extra)}",
                                     fleet=_admitting_more(admission.name, extra)))
    if policy.max_models_per_gpu < MAX_MODELS_PER_GPU or any(
            p.max_models_per_gpu for p in fleet.cluster.pools):
        result.append(Relaxation(
            f"max models per GPU ({policy.max_models_per_gpu}, pools' own included)",
            f"{MAX_MODELS_PER_GPU} everywhere", fleet=_any_models_per_gpu))
    if policy.memory_headroom > 0:
        result.append(Relaxation(f"memory headroom ({policy.memory_headroom:.0%})", "none",
                                 fleet=lambda f: _policy(f, memory_headroom=0.0)))
    if policy.target_utilization < 1:
        result.append(Relaxation(
            f"target utilisation ({policy.target_utilization:.0%})", "100%",
            fleet=lambda f: _policy(f, target_utilization=1.0)))
    return result + shape_relaxations(fleet)


def shape_catalog(fleet: Fleet, pool: Pool) -> list[NodeShape]:
    """The node shapes of `pool`'s GPU type that other pools of the cluster list and `pool`
    does not: the instance types the cluster is known to buy with that GPU, each at the
    price its pool states (with its spot offer, if any)."""
    if pool.gpu_type is None or pool.sharing == "mig":  # a MIG pool keeps one layout per node
        return []
    own = {s.instance_type for s in pool.shapes()}
    found: dict[str, NodeShape] = {}
    for other in fleet.cluster.pools:
        if other.name == pool.name or other.gpu_type != pool.gpu_type:
            continue
        for shape in other.declared_shapes():
            if shape.instance_type not in own and shape.instance_type not in found:
                found[shape.instance_type] = shape.model_copy(update={"max_nodes": None})
    return list(found.values())


def shape_relaxations(fleet: Fleet) -> list[Relaxation]:
    """Per pool whose GPU type other pools buy in other instance types, the pool restricted to
    its listed shapes lifted: it may also buy those (up to its own `max_nodes` each)."""
    result = []
    for pool in fleet.cluster.pools:
        catalog = shape_catalog(fleet, pool)
        if catalog:
            types = ", ".join(f"{s.gpus_per_node}-GPU {s.instance_type}" for s in catalog)
            result.append(Relaxation(f"node shapes of {pool.name}",
                                     f"may also buy {types} nodes",
                                     fleet=_with_shapes(pool.name, catalog)))
    return result


def _with_shapes(name: str, shapes: list[NodeShape]) -> Callable[[Fleet], Fleet]:
    """Pool `name` with `shapes` added to its other shapes."""
    def add(fleet: Fleet) -> Fleet:
        pools = [p.model_copy(update={"other_shapes": [*p.other_shapes, *shapes]})
                 if p.name == name else p for p in fleet.cluster.pools]
        return dataclasses.replace(fleet, cluster=fleet.cluster.model_copy(
            update={"pools": pools}))
    return add


def _without_conflict(name: str) -> Callable[[Fleet], Fleet]:
    return lambda f: _policy(f, conflicts=[c for c in f.policy.conflicts if c.name != name])


def _admitting_more(name: str, pools: list[str]) -> Callable[[Fleet], Fleet]:
    """Admission rule `name` admitting its models to `pools` as well."""
    return lambda f: _policy(f, admission=[
        a.model_copy(update={"pools": [*a.pools, *pools]}) if a.name == name else a
        for a in f.policy.admission])


def _any_models_per_gpu(fleet: Fleet) -> Fleet:
    pools = [p.model_copy(update={"max_models_per_gpu": None}) for p in fleet.cluster.pools]
    relaxed = dataclasses.replace(fleet, cluster=fleet.cluster.model_copy(
        update={"pools": pools}))
    return _policy(relaxed, max_models_per_gpu=MAX_MODELS_PER_GPU)


def spread_relaxation(model: str) -> Relaxation:
    """The spread rule lifted for one model only."""
    def lift(problem: Problem) -> Problem:
        groups = tuple(dataclasses.replace(g, options=tuple(
            dataclasses.replace(o, max_per_node=None) for o in g.options))
            if g.name == model else g for g in problem.groups)
        return dataclasses.replace(problem, groups=groups)
    return Relaxation(f"spread of {model}", "not spread", problem=lift)


def _problem(fleet: Fleet) -> tuple[Problem, CachePlan]:
    """The engine problem `make_plan` solves: the models, and the reserved lazy caches in
    place of their members."""
    caches = plan_caches(fleet, derive(fleet)[0])
    return build_problem(fleet, caches.demands, caches.reserved), caches


def _solve(fleet: Fleet, settings: SolverSettings,
           change: Callable[[Problem], Problem] | None = None):
    from solvers.engine import solve

    problem, caches = _problem(fleet)
    if change is not None:
        problem = change(problem)
    return solve(problem, method=settings.method, time_limit_s=settings.time_limit_s,
                 seed=settings.seed, workers=settings.workers,
                 deterministic=settings.deterministic), caches


def price_rules(fleet: Fleet, settings: SolverSettings, base_cost: int,
                relaxations: list[Relaxation] | None = None,
                max_relaxations: int = MAX_RELAXATIONS) -> list[RuleCost]:
    """Each relaxation of the plan that costs `base_cost` (engine units per hour): by default
    the policy's, then, while the spread rule binds, the spread of each spread model; at most
    `max_relaxations` re-solves."""
    chosen = policy_relaxations(fleet) if relaxations is None else relaxations
    results = [_price(fleet, settings, r) for r in chosen[:max_relaxations]]
    spread = next((r for r in results if r.rule.startswith("spread (")), None)
    if relaxations is None and spread is not None and spread.cost < base_cost:
        problem, _ = _problem(fleet)
        spread_models = [g.name for g in problem.groups
                         if any(o.max_per_node is not None for o in g.options)]
        for model in spread_models[:max(0, max_relaxations - len(results))]:
            results.append(_price(fleet, settings, spread_relaxation(model)))
    return results


def _price(fleet: Fleet, settings: SolverSettings, relaxation: Relaxation) -> RuleCost:
    relaxed = relaxation.fleet(fleet) if relaxation.fleet else fleet
    solution, caches = _solve(relaxed, settings, relaxation.problem)
    groups = {p.group for p in solution.placements}
    placed = (groups & set(relaxed.models)) | {
        d.model for c in caches.reserved if c.name in groups for d in c.members}
    return RuleCost(relaxation.rule, relaxation.relaxed, solution.cost,
                    len(relaxed.models) - len(placed), solution.status)


def with_rule_prices(plan: Plan, fleet: Fleet, settings: SolverSettings) -> Plan:
    """`plan` with what each rule costs: those that place more models first, then the
    largest saving."""
    base_cost = round(plan.summary.cost_per_hour * COST_UNITS_PER_CURRENCY)
    prices = [RulePrice(rule=r.rule, relaxed=r.relaxed,
                        saves_per_hour=round((base_cost - r.cost) / COST_UNITS_PER_CURRENCY, 6),
                        placed_more=plan.summary.unplaced - r.unplaced, status=r.status)
              for r in price_rules(fleet, settings, base_cost)]
    prices.sort(key=RulePrice.rank)
    return plan.model_copy(update={"rule_prices": prices})
