"""Assembling the plan from the engine's solution: pools, nodes, GPUs, models and reasons.

Costs come from `planner.assembly.cost`, so that every report reads the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

from planner import __version__, money
from planner.assembly import cost
from planner.demand.derive import Demand, Rejection
from planner.demand.shapes import shape_of
from planner.ledger import month_total
from planner.planfile import (
    Autoscaling,
    GpuPlan,
    Limits,
    LlmPlan,
    Metadata,
    ModelPlan,
    NodePlan,
    Plan,
    PoolPlan,
    PriorityClassPlan,
    ReplicaSlot,
    RuleEnforcement,
    Serving,
    ShapePlan,
    SolverReport,
    Summary,
    Taint,
    UnplacedModel,
)
from planner.registry.fleet import Fleet
from planner.rules.autoscaling import autoscaling
from planner.rules.capacity import node_allocatable, replicas_per_gpu
from planner.rules.conflicts import kept_apart
from planner.rules.enforcement import enforcement
from planner.rules.loading import auto_loading
from planner.rules.spot import usable_shapes
from planner.schemas import ModelSpec, NodeShape, Pool
from solvers.problem import Placement, Solution


def _loading(fleet: Fleet, demand: Demand) -> tuple[str, str | None]:
    """The model's loading (`auto` decided on its pool's GPU type) and why, for `auto`."""
    model = fleet.models[demand.model]
    if model.loading.policy != "auto":
        return model.loading.policy, None
    profile = fleet.profiles.get((model.name, fleet.pool(demand.pool).gpu_type))
    policy, why = auto_loading(model, None if profile is None else profile.load_time_s)
    return policy, f"loading auto: {policy}, {why}"


def _model_reasons(fleet: Fleet, demand: Demand, rejections: list[Rejection],
                   options: list[Demand]) -> list[str]:
    model = fleet.models[demand.model]
    pool = fleet.pool(demand.pool)
    reasons = [f"admitted by {demand.rule}"]
    if demand.method == "stated" and (model.name, pool.gpu_type) in fleet.profiles:
        reasons.append(f"hand-stated resources (estimated), used instead of the reference "
                       f"profile on {pool.gpu_type}")
    elif demand.method == "stated":
        reasons.append("hand-stated resources (estimated)")
    else:
        reasons.append(f"p99 {demand.p99_ms:g} ms at concurrency {demand.concurrency} on "
                       f"{pool.gpu_type} ({demand.method} profile)")
    reasons.append(f"{demand.replicas} replicas for a peak of {model.traffic.peak_rps:g} rps at "
                   f"{fleet.policy.target_utilization:.0%} target utilisation")
    reasons += demand.notes
    if (why := _loading(fleet, demand)[1]) is not None:
        reasons.append(why)
    if demand.whole_gpus:
        reasons.append(f"whole GPUs: {demand.gpus_per_replica} per replica"
                       + (" (gpu-sharing forbidden)" if model.labels.gpu_sharing == "forbidden"
                          else ""))
    others = [d.pool for d in options if d.pool != demand.pool]
    if others:
        reasons.append(f"cheaper overall than {', '.join(others)}")
    reasons += [f"not {r.pool}: {r.reason}" for r in rejections]
    return reasons


@dataclass
class _Ledger:
    """What the pools' assembly learns about each model: cost, GPU fraction, neighbours."""

    cost_per_hour: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    gpu_fraction: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    shares_with: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def _gpu_plan(fleet: Fleet, pool: Pool, shape: NodeShape, node: int, index: int,
              placed: list[Placement], chosen: dict[str, Demand], layouts: dict,
              ledger: _Ledger) -> GpuPlan:
    """One GPU with its replicas, each charged its fraction of the GPU's price."""
    gpu_type = fleet.cluster.gpu_types[pool.gpu_type]
    pairs = [(p, chosen[p.group]) for p in placed]
    fractions = cost.gpu_fractions([cost.replica_share(gpu_type, d, p.slice) for p, d in pairs])
    slots = []
    for (p, d), fraction in zip(pairs, fractions, strict=True):
        ledger.cost_per_hour[p.group] += fraction * cost.gpu_price_per_hour(shape)
        ledger.gpu_fraction[p.group] += fraction
        ledger.shares_with[p.group].update(q.group for q in placed if q.group != p.group)
        slots.append(ReplicaSlot(model=p.group, replica=p.replica, memory_mib=d.memory_mib,
                                 compute_milli=1000 if d.whole_gpus else d.compute_milli,
                                 gpu_fraction=round(fraction, 6), slice=p.slice))
    layout = layouts.get((pool.name, node, index))
    return GpuPlan(index=index, whole=pairs[0][1].whole_gpus,
                   mig_layout=gpu_type.mig_layouts[layout] if layout is not None else None,
                   replicas=slots)


def _pool_plan(fleet: Fleet, pool: Pool, by_gpu: dict[tuple[str, int, int], list[Placement]],
               chosen: dict[str, Demand], layouts: dict, ledger: _Ledger) -> PoolPlan:
    """A pool's nodes and GPUs as the solution uses them, with its cost and utilisation."""
    gpu_type = fleet.cluster.gpu_types[pool.gpu_type]
    node_ids = sorted({node for (name, node, _) in by_gpu if name == pool.name})
    nodes, bought = [], []
    for node in node_ids:
        shape = shape_of(pool, node)
        assert shape is not None  # the engine buys nodes of the pool's shapes only
        gpus = [_gpu_plan(fleet, pool, shape, node, index, by_gpu[(pool.name, node, index)],
                          chosen, layouts, ledger)
                for index in range(shape.gpus_per_node) if (pool.name, node, index) in by_gpu]
        nodes.append(NodePlan(name=f"{pool.name}-{node}", index=node, gpus=gpus,
                              instance_type=shape.instance_type if pool.other_shapes else ""))
        bought.append(shape)
    slots = [r for n in nodes for g in n.gpus for r in g.replicas]
    pool_cost = cost.nodes_cost_per_hour(bought)
    paid = sum(ledger.cost_per_hour[m] for m in {r.model for r in slots})
    gpu_count = sum(shape.gpus_per_node for shape in bought)
    shapes = [ShapePlan(instance_type=s.instance_type, gpus_per_node=s.gpus_per_node,
                        price_per_node_hour=s.price_per_node_hour, max_nodes=s.max_nodes or 0,
                        nodes=sum(1 for b in bought if b.instance_type == s.instance_type),
                        capacity_type=s.capacity_type,
                        list_price_per_node_hour=s.list_price_per_node_hour)
              for s in pool.shapes()] if pool.other_shapes else []
    allocatable = node_allocatable(fleet.cluster, pool.instance_type)
    discounted = any(s.list_price_per_node_hour is not None for s in bought)
    list_cost = sum(s.list_price_per_node_hour or s.price_per_node_hour for s in bought)
    return PoolPlan(
        name=pool.name, gpu_type=pool.gpu_type, gpu_product=gpu_type.product,
        gpu_memory_mib=gpu_type.memory_mib, max_nodes=pool.max_nodes,
        node_class=fleet.cluster.node_class_of(pool).model_dump(), labels=pool.labels,
        taints=[Taint(key=t.key, value=t.value, effect=t.effect) for t in pool.taints],
        pool_class=pool.pool_class, sharing=pool.sharing, gpus_per_node=pool.gpus_per_node,
        replicas_per_gpu=replicas_per_gpu(pool, fleet.policy),
        price_per_node_hour=pool.price_per_node_hour, instance_type=pool.instance_type,
        node_cpu_milli=allocatable[0] if allocatable else None,
        node_memory_mib=allocatable[1] if allocatable else None,
        cost_per_hour=round(pool_cost, 6),
        idle_cost_per_hour=round(cost.idle_cost_per_hour(pool_cost, paid), 6),
        memory_used_mib=sum(r.memory_mib for r in slots),
        memory_capacity_mib=gpu_count * gpu_type.memory_mib,
        compute_used_milli=sum(r.compute_milli for r in slots),
        compute_capacity_milli=gpu_count * 1000, capacity_type=pool.capacity_type,
        list_price_per_node_hour=pool.list_price_per_node_hour,
        list_cost_per_hour=round(list_cost, 6) if discounted else None, shapes=shapes,
        nodes=nodes)


def _model_plan(fleet: Fleet, demand: Demand, rejections: list[Rejection],
                options: list[Demand], ledger: _Ledger, apart_on_node: list[str]) -> ModelPlan:
    spec = fleet.models[demand.model]
    name = demand.model
    return ModelPlan(
        name=name, team=spec.team, labels=spec.labels.as_dict(),
        serving=Serving(**spec.serving.model_dump()),
        limits=_limits(spec, demand), loading=_loading(fleet, demand)[0],
        priority=spec.priority, serving_profile=spec.serving_profile, pool=demand.pool,
        replicas=demand.replicas, replicas_min=spec.replicas.min,
        gpus_per_replica=demand.gpus_per_replica,
        whole_gpus=demand.whole_gpus, memory_mib=demand.memory_mib,
        compute_milli=1000 if demand.whole_gpus else demand.compute_milli,
        concurrency=demand.concurrency, throughput_rps=demand.throughput_rps,
        p99_ms=demand.p99_ms, slo_p99_ms=spec.slo.p99_ms, mig_slice=demand.mig_slice,
        max_replicas_per_node=demand.max_per_node,
        zone_max_skew=fleet.policy.spread.zone_max_skew if demand.replicas > 1 else None,
        estimated=demand.estimated,
        profile_method=demand.method, gpu_fraction=round(ledger.gpu_fraction[name], 6),
        cost_per_hour=round(ledger.cost_per_hour[name], 6),
        shares_with=sorted(ledger.shares_with[name]), apart_on_node=apart_on_node,
        llm=None if demand.llm is None else LlmPlan(**asdict(demand.llm)),
        autoscaling=None if (scaling := autoscaling(spec, demand.replicas)) is None
        else Autoscaling(**asdict(scaling)),
        reasons=_model_reasons(fleet, demand, rejections, options))


def _limits(spec: ModelSpec, demand: Demand) -> Limits:
    """The server's limits: its concurrency is the operating point packed for memory and
    checked against the SLO, never more than the model file allows."""
    limits = spec.limits.model_dump()
    if demand.concurrency is not None:
        limits["max_concurrency"] = demand.concurrency
    return Limits(**limits)


def _unplaced(fleet: Fleet, placed: set[str], rejections: dict[str, list[Rejection]],
              solution: Solution) -> list[UnplacedModel]:
    result = []
    for name in sorted(set(fleet.models) - placed):
        spec = fleet.models[name]
        reasons = [f"{r.pool}: {r.reason}" for r in rejections[name]]
        if name in solution.unplaced:
            reasons.append(solution.unplaced[name])
        result.append(UnplacedModel(name=name, team=spec.team, priority=spec.priority,
                                    reasons=reasons))
    return result


def assemble(fleet: Fleet, demands: dict[str, list[Demand]],
             rejections: dict[str, list[Rejection]], solution: Solution, *,
             solver_name: str, seed: int, workers: int, time_limit_s: float,
             explanation: list[str], deterministic: bool = False) -> Plan:
    """The plan of `solution`: every pool, node, GPU and replica, every model and its cost."""
    hours = fleet.config.hours_per_month
    chosen = {p.group: next(d for d in demands[p.group] if d.pool == p.pool)
              for p in solution.placements}
    by_gpu: dict[tuple[str, int, int], list[Placement]] = defaultdict(list)
    for p in solution.placements:
        for g in p.gpus:
            by_gpu[(p.pool, p.node, g)].append(p)
    ledger = _Ledger()
    pools = [_pool_plan(fleet, pool, by_gpu, chosen, solution.mig_layouts, ledger)
             for pool in fleet.cluster.pools]
    apart = kept_apart(fleet.policy, fleet.models, "node")
    models = [_model_plan(fleet, demand, rejections[name], demands[name], ledger,
                          sorted(apart[name] & set(chosen)))
              for name, demand in sorted(chosen.items())]
    unplaced = _unplaced(fleet, set(chosen), rejections, solution)
    cost_per_hour = sum(p.cost_per_hour for p in pools)
    currency = fleet.config.currency
    cost_per_month = month_total(models, pools, hours, currency)
    baseline_per_hour = round(cost.baseline_cost_per_hour(
        fleet.cluster, [demands[name] for name in chosen],
        lambda d: usable_shapes(fleet.pool(d.pool), fleet.models[d.model], fleet.policy)), 6)
    baseline = money.rounded(money.monthly(baseline_per_hour, hours), currency)
    return Plan(
        metadata=Metadata(registry=str(fleet.root), planner_version=__version__,
                          hours_per_month=hours,
                          kubernetes_version=fleet.config.kubernetes_version,
                          namespace_prefix=fleet.config.namespace_prefix,
                          label_domain=fleet.config.label_domain,
                          gpu_operator_namespace=fleet.config.gpu_operator_namespace,
                          billing=fleet.config.billing,
                          sharing_backend=fleet.cluster.sharing_backend),
        summary=Summary(models=len(models), replicas=len(solution.placements),
                        gpus=len(by_gpu), nodes=sum(len(p.nodes) for p in pools),
                        cost_per_hour=round(cost_per_hour, 4),
                        cost_per_month=cost_per_month, currency=currency,
                        baseline_cost_per_hour=baseline_per_hour,
                        baseline_cost_per_month=baseline,
                        savings_per_month=baseline - cost_per_month,
                        unplaced=len(unplaced)),
        priority_classes={name: PriorityClassPlan(**pc.model_dump())
                          for name, pc in fleet.policy.priorities.items()},
        solver=SolverReport(name=solver_name, status=solution.status,
                            objective=round(cost.from_engine_units(solution.cost), 4),
                            lower_bound=round(cost.from_engine_units(solution.lower_bound), 4),
                            gap=round(solution.gap, 6), seconds=round(solution.seconds, 3),
                            seed=seed, workers=workers, time_limit_s=time_limit_s,
                            moved_replicas=solution.moved, deterministic=deterministic),
        pools=pools, models=models, unplaced=unplaced, explanation=explanation,
        enforcement=[RuleEnforcement(rule=e.rule, enforced=e.enforced, pools=list(e.pools),
                                     how=e.how)
                     for e in enforcement(fleet.policy, [fleet.pool(p.name) for p in pools
                                                         if p.nodes],
                                          fleet.cluster.sharing_backend)])
