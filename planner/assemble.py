"""Assembling the plan from the engine's solution: pools, nodes, GPUs, models, costs, reasons.

Cost attribution lives here so that every report reads the same numbers: a whole GPU costs its
share of the node price; a shared GPU is split by the larger of each replica's memory and
compute share (scaled down when they add up past one GPU); a MIG slice costs its compute share
of the GPU; what no replica pays for is the pool's idle cost.
"""

from __future__ import annotations

from collections import defaultdict

from planner import __version__
from planner.demand import Demand, Rejection
from planner.fleet import Fleet
from planner.packing import COST_UNITS_PER_CURRENCY
from planner.plan import (
    GpuPlan,
    Limits,
    Metadata,
    ModelPlan,
    NodePlan,
    Plan,
    PoolPlan,
    PriorityClassPlan,
    ReplicaSlot,
    Serving,
    SolverReport,
    Summary,
    Taint,
    UnplacedModel,
)
from solvers.problem import Placement, Solution

MIG_SLICES = 7


def _replica_fractions(fleet: Fleet, pool, replicas: list[tuple[Placement, Demand]]
                       ) -> list[float]:
    """Each replica's share of one GPU, for splitting that GPU's cost."""
    gpu = fleet.cluster.gpu_types[pool.gpu_type]
    shares = []
    for placement, demand in replicas:
        if demand.whole_gpus:
            shares.append(1.0)
        elif placement.slice is not None:
            shares.append(gpu.mig_profiles[placement.slice].compute_slices / MIG_SLICES)
        else:
            shares.append(max(demand.memory_mib / gpu.memory_mib, demand.compute_milli / 1000))
    total = sum(shares)
    return [s / total for s in shares] if total > 1 else shares


def _model_reasons(fleet: Fleet, demand: Demand, rejections: list[Rejection],
                   options: list[Demand]) -> list[str]:
    model = fleet.models[demand.model]
    pool = fleet.pool(demand.pool)
    reasons = [f"admitted by {demand.rule}"]
    if demand.method == "stated":
        reasons.append("hand-stated resources (estimated)")
    else:
        reasons.append(f"p99 {demand.p99_ms:g} ms at concurrency {demand.concurrency} on "
                       f"{pool.gpu_type} ({demand.method} profile)")
    reasons.append(f"{demand.replicas} replicas for a peak of {model.traffic.peak_rps:g} rps at "
                   f"{fleet.policy.target_utilization:.0%} target utilisation")
    if demand.whole_gpus:
        reasons.append(f"whole GPUs: {demand.gpus_per_replica} per replica"
                       + (" (gpu-sharing forbidden)" if model.labels.gpu_sharing == "forbidden"
                          else ""))
    others = [d.pool for d in options if d.pool != demand.pool]
    if others:
        reasons.append(f"cheaper overall than {', '.join(others)}")
    reasons += [f"not {r.pool}: {r.reason}" for r in rejections]
    return reasons


def assemble(fleet: Fleet, demands: dict[str, list[Demand]],
             rejections: dict[str, list[Rejection]], solution: Solution, *,
             solver_name: str, seed: int, workers: int, time_limit_s: float,
             explanation: list[str]) -> Plan:
    hours = fleet.config.hours_per_month
    chosen: dict[str, Demand] = {}
    for p in solution.placements:
        chosen[p.group] = next(d for d in demands[p.group] if d.pool == p.pool)

    by_gpu: dict[tuple[str, int, int], list[Placement]] = defaultdict(list)
    for p in solution.placements:
        for g in p.gpus:
            by_gpu[(p.pool, p.node, g)].append(p)
    model_cost: dict[str, float] = defaultdict(float)
    model_fraction: dict[str, float] = defaultdict(float)
    shares_with: dict[str, set[str]] = defaultdict(set)
    pools = []
    for pool in fleet.cluster.pools:
        gpu_type = fleet.cluster.gpu_types[pool.gpu_type]
        gpu_price = pool.price_per_node_hour / pool.gpus_per_node
        node_ids = sorted({node for (name, node, _) in by_gpu if name == pool.name})
        nodes, used_memory, used_compute = [], 0, 0
        for node in node_ids:
            gpus = []
            for index in range(pool.gpus_per_node):
                placed = by_gpu.get((pool.name, node, index), [])
                if not placed:
                    continue
                pairs = [(p, chosen[p.group]) for p in placed]
                fractions = _replica_fractions(fleet, pool, pairs)
                slots = []
                for (p, d), fraction in zip(pairs, fractions, strict=True):
                    model_cost[p.group] += fraction * gpu_price
                    model_fraction[p.group] += fraction
                    used_memory += d.memory_mib
                    used_compute += 1000 if d.whole_gpus else d.compute_milli
                    slots.append(ReplicaSlot(model=p.group, replica=p.replica,
                                             memory_mib=d.memory_mib,
                                             compute_milli=1000 if d.whole_gpus
                                             else d.compute_milli,
                                             gpu_fraction=round(fraction, 6), slice=p.slice))
                    shares_with[p.group].update(q.group for q in placed if q.group != p.group)
                layout = solution.mig_layouts.get((pool.name, node, index))
                gpus.append(GpuPlan(index=index, whole=pairs[0][1].whole_gpus,
                                    mig_layout=gpu_type.mig_layouts[layout]
                                    if layout is not None else None,
                                    replicas=slots))
            nodes.append(NodePlan(name=f"{pool.name}-{node}", index=node, gpus=gpus))
        cost = len(nodes) * pool.price_per_node_hour
        paid = sum(model_cost[m] for m in {r.model for n in nodes for g in n.gpus
                                            for r in g.replicas})
        gpu_count = len(nodes) * pool.gpus_per_node
        pools.append(PoolPlan(
            name=pool.name, gpu_type=pool.gpu_type, gpu_product=gpu_type.product,
            gpu_memory_mib=gpu_type.memory_mib, max_nodes=pool.max_nodes,
            node_class=pool.node_class.model_dump(),
            labels=pool.labels,
            taints=[Taint(key=t.key, value=t.value, effect=t.effect) for t in pool.taints],
            pool_class=pool.pool_class, sharing=pool.sharing, gpus_per_node=pool.gpus_per_node,
            price_per_node_hour=pool.price_per_node_hour, instance_type=pool.instance_type,
            cost_per_hour=round(cost, 6), idle_cost_per_hour=round(max(cost - paid, 0.0), 6),
            memory_used_mib=used_memory, memory_capacity_mib=gpu_count * gpu_type.memory_mib,
            compute_used_milli=used_compute, compute_capacity_milli=gpu_count * 1000,
            nodes=nodes))

    models = []
    for name, demand in sorted(chosen.items()):
        spec = fleet.models[name]
        models.append(ModelPlan(
            name=name, team=spec.team, labels=spec.labels.as_dict(),
            serving=Serving(**spec.serving.model_dump()),
            limits=Limits(**spec.limits.model_dump()), loading=spec.loading.policy,
            priority=spec.priority,
            serving_profile=spec.serving_profile, pool=demand.pool, replicas=demand.replicas,
            gpus_per_replica=demand.gpus_per_replica, whole_gpus=demand.whole_gpus,
            memory_mib=demand.memory_mib,
            compute_milli=1000 if demand.whole_gpus else demand.compute_milli,
            concurrency=demand.concurrency, throughput_rps=demand.throughput_rps,
            p99_ms=demand.p99_ms, mig_slice=demand.mig_slice,
            max_replicas_per_node=demand.max_per_node, estimated=demand.estimated,
            profile_method=demand.method,
            gpu_fraction=round(model_fraction[name], 6),
            cost_per_hour=round(model_cost[name], 6), shares_with=sorted(shares_with[name]),
            reasons=_model_reasons(fleet, demand, rejections[name], demands[name])))

    unplaced = []
    for name in sorted(set(fleet.models) - set(chosen)):
        spec = fleet.models[name]
        reasons = [f"{r.pool}: {r.reason}" for r in rejections[name]]
        if name in solution.unplaced:
            reasons.append(solution.unplaced[name])
        unplaced.append(UnplacedModel(name=name, team=spec.team, priority=spec.priority,
                                      reasons=reasons))

    cost_per_hour = sum(p.cost_per_hour for p in pools)
    baseline = sum(min(d.replicas * d.gpus_per_replica * fleet.pool(d.pool).price_per_node_hour
                       / fleet.pool(d.pool).gpus_per_node for d in options)
                   for options in demands.values() if options) * hours
    scale = COST_UNITS_PER_CURRENCY
    return Plan(
        metadata=Metadata(registry=str(fleet.root), planner_version=__version__,
                          hours_per_month=hours,
                          kubernetes_version=fleet.config.kubernetes_version,
                          namespace_prefix=fleet.config.namespace_prefix),
        summary=Summary(models=len(models), replicas=len(solution.placements),
                        gpus=len(by_gpu), nodes=sum(len(p.nodes) for p in pools),
                        cost_per_hour=round(cost_per_hour, 4),
                        cost_per_month=round(cost_per_hour * hours, 2),
                        currency=fleet.config.currency,
                        baseline_cost_per_month=round(baseline, 2),
                        savings_per_month=round(baseline - cost_per_hour * hours, 2),
                        unplaced=len(unplaced)),
        priority_classes={name: PriorityClassPlan(**pc.model_dump())
                          for name, pc in fleet.policy.priorities.items()},
        solver=SolverReport(name=solver_name, status=solution.status,
                            objective=round(solution.cost / scale, 4),
                            lower_bound=round(solution.lower_bound / scale, 4),
                            gap=round(solution.gap, 6), seconds=round(solution.seconds, 3),
                            seed=seed, workers=workers, time_limit_s=time_limit_s,
                            moved_replicas=solution.moved),
        pools=pools, models=models, unplaced=unplaced, explanation=explanation)
