"""Assembling the plan from the engine's solution: pools, nodes, GPUs, models and reasons.

Costs come from `planner.assembly.cost`, so that every report reads the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

from planner import __version__, k8s_names, money
from planner.assembly import cost
from planner.demand.derive import Demand, Rejection
from planner.demand.lazy_cache import Cache, CachePlan, not_modelmesh, warm_share
from planner.demand.shapes import offered_twice, shape_of
from planner.ledger import month_total
from planner.planfile import (
    Autoscaling,
    BatchPlan,
    CacheSlot,
    GpuPlan,
    LazyCachePlan,
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
from planner.rules.batch import runs
from planner.rules.capacity import node_allocatable, replicas_per_gpu
from planner.rules.conflicts import kept_apart
from planner.rules.enforcement import enforcement
from planner.rules.spot import usable_shapes
from planner.schemas import ModelSpec, NodeShape, Pool
from profiles.schema import CPU_DEVICE
from solvers.problem import Placement, Solution

CPU_POOL_SHARING = "none"  # a CPU pool's `sharing` in the plan: it has no GPU to share


def _cache_reason(fleet: Fleet, cache: Cache, cost_per_hour: float,
                  warm_cost_per_hour: float, reserved: bool) -> str:
    currency = fleet.config.currency
    holds = (f"which holds {cache.slots} of its {len(cache.members)} models at once "
             f"({cache.expected_active:g} active on average at {cache.busiest_hour:02d}:00 UTC, "
             "the busiest hour)")
    share = (f"{cost_per_hour:.4f} {currency}/h against {warm_cost_per_hour:.4f} "
             f"{currency}/h warm")
    if reserved and cache.server == "modelmesh":
        runtime = k8s_names.slashes_as_dashes(cache.name)
        return (f"lazy: loaded on demand into {cache.name}, {holds}, held by KServe ModelMesh "
                f"(ServingRuntime {runtime}, Triton through ModelMesh's adapter), which loads "
                "it on its first request and evicts the least recently used; its share of the "
                f"cache costs {share}")
    if reserved and cache.server == "triton":
        return (f"lazy: loaded on demand into {cache.name}, {holds}, held by Triton servers "
                "with explicit model control, not KServe ModelMesh "
                f"({not_modelmesh(fleet, cache.members)}): whatever routes its requests must "
                "load it (POST /v2/repository/models/<model>/load) and unload the least "
                f"recently used; its share of the cache costs {share}")
    if reserved:
        return (f"lazy: planned into {cache.name}, {holds}, as capacity only: no manifest "
                f"here serves it ({cache.unserved}), a multi-model server deployed beside "
                f"them must; its share of the cache costs {share}")
    return (f"lazy: its replicas are its own, as the manifests start them; a cache "
            f"{cache.name} {holds} would charge it {cost_per_hour:.4f} {currency}/h against "
            f"its {warm_cost_per_hour:.4f} {currency}/h (not reserved: "
            f"{cache.unserved or 'policy lazy_cache.reserve: false'})")


def _model_reasons(fleet: Fleet, demand: Demand, rejections: list[Rejection],
                   options: list[Demand], caches: CachePlan) -> list[str]:
    model = fleet.models[demand.model]
    pool = fleet.pool(demand.pool)
    device = pool.gpu_type or CPU_DEVICE
    reasons = [f"admitted by {demand.rule}"]
    if pool.cpu_only:
        reasons.append(f"CPU-only: {model.serving.cpu_milli} CPU millicores and "
                       f"{model.serving.host_memory_mib} MiB per pod on {pool.instance_type} "
                       "nodes")
    if demand.method == "stated" and (model.name, device) in fleet.profiles:
        reasons.append(f"hand-stated resources (estimated), used instead of the reference "
                       f"profile on {device}")
    elif demand.method == "stated":
        reasons.append("hand-stated resources (estimated)")
    else:
        reasons.append(f"p99 {demand.p99_ms:g} ms at concurrency {demand.concurrency} on "
                       f"{device} ({demand.method} profile)")
    reasons.append(f"{demand.replicas} replicas for a peak of {model.traffic.peak_rps:g} rps at "
                   f"{fleet.policy.target_utilization:.0%} target utilisation")
    reasons += demand.notes
    policy, why = caches.loading(fleet, demand)
    if why is not None:
        reasons.append(why)
    if policy == "lazy" and demand.model in caches.uncached:
        reasons.append(f"lazy, without a cache: {caches.uncached[demand.model]}; its "
                       "replicas are its own, reserved as if warm")
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


def _node_shape(pool: Pool, shape: NodeShape) -> dict[str, str]:
    """What a node of a pool of several shapes records of its shape: the instance type, and
    the capacity type where the pool offers that instance type as both."""
    if not pool.several_shapes:
        return {}
    twice = shape.instance_type in offered_twice(pool)
    return {"instance_type": shape.instance_type,
            "capacity_type": shape.capacity_type if twice else ""}


def _gpu_plan(fleet: Fleet, pool: Pool, shape: NodeShape, node: int, index: int,
              placed: list[Placement], chosen: dict[str, Demand], caches: dict[str, Cache],
              layouts: dict, ledger: _Ledger) -> GpuPlan:
    """One GPU with its replicas and cache servers, each charged its fraction of the GPU's
    price."""
    assert pool.gpu_type is not None  # a GPU pool's GPU
    gpu_type = fleet.cluster.gpu_types[pool.gpu_type]
    servers = [p for p in placed if p.group in caches]
    pairs = [(p, chosen[p.group]) for p in placed if p.group not in caches]
    fractions = cost.gpu_fractions([cost.replica_share(gpu_type, d, p.slice) for p, d in pairs]
                                   + [cost.cache_share(gpu_type, caches[p.group])
                                      for p in servers])
    cache_slots = []
    for p, fraction in zip(servers, fractions[len(pairs):], strict=True):
        ledger.cost_per_hour[p.group] += fraction * cost.gpu_price_per_hour(shape)
        ledger.gpu_fraction[p.group] += fraction
        ledger.shares_with[p.group].update(q.group for q in placed if q.group != p.group)
        cache_slots.append(CacheSlot(cache=p.group, server=p.replica,
                                     memory_mib=caches[p.group].memory_mib,
                                     compute_milli=caches[p.group].compute_milli,
                                     gpu_fraction=round(fraction, 6)))
    slots = []
    for (p, d), fraction in zip(pairs, fractions[:len(pairs)], strict=True):
        ledger.cost_per_hour[p.group] += fraction * cost.gpu_price_per_hour(shape)
        ledger.gpu_fraction[p.group] += fraction
        ledger.shares_with[p.group].update(q.group for q in placed if q.group != p.group)
        slots.append(ReplicaSlot(model=p.group, replica=p.replica, memory_mib=d.memory_mib,
                                 compute_milli=1000 if d.whole_gpus else d.compute_milli,
                                 gpu_fraction=round(fraction, 6), slice=p.slice))
    layout = layouts.get((pool.name, node, index))
    return GpuPlan(index=index, whole=bool(pairs) and pairs[0][1].whole_gpus,
                   mig_layout=gpu_type.mig_layouts[layout] if layout is not None else None,
                   replicas=slots, caches=cache_slots)


def _cache_cost_per_hour(fleet: Fleet, cache: Cache, ledger: _Ledger, reserved: bool) -> float:
    """What a reserved cache's servers pay; for one not reserved, what they would pay on GPUs
    of their own."""
    if reserved:
        return ledger.cost_per_hour[cache.name]
    pool = fleet.pool(cache.pool)  # a time-sliced GPU pool: caches are only there
    return cache.servers * cost.cache_share(fleet.cluster.gpu_types[str(pool.gpu_type)], cache) \
        * _own_gpu_price(fleet, cache)


def _own_gpu_price(fleet: Fleet, cache: Cache) -> float:
    """A GPU's price on the cache pool's own node shape, for estimates before packing."""
    return cost.gpu_price_per_hour(fleet.pool(cache.pool).shapes()[0])


def _cache_plan(fleet: Fleet, cache: Cache, ledger: _Ledger, placed: bool,
                apart: dict[str, set[str]], chosen: set[str]) -> LazyCachePlan:
    gpu = fleet.cluster.gpu_types[str(fleet.pool(cache.pool).gpu_type)]
    warm = sum(warm_share(gpu, d) for d in cache.members) * _own_gpu_price(fleet, cache)
    members = [d.model for d in cache.members]
    top = max(members, key=lambda m: (fleet.policy.priorities[fleet.models[m].priority].value,
                                      m))
    return LazyCachePlan(
        name=cache.name, members=members, slots=cache.slots,
        expected_active=cache.expected_active, busiest_hour=cache.busiest_hour,
        servers=cache.servers, memory_mib=cache.memory_mib, compute_milli=cache.compute_milli,
        reserved=cache.reserved, placed=placed, server=cache.server, unserved=cache.unserved,
        image=fleet.policy.lazy_cache.triton_image if cache.server is not None else "",
        cpu_milli=cache.cpu_milli, host_memory_mib=cache.host_memory_mib,
        priority=fleet.models[top].priority,
        apart_on_node=sorted(set().union(*(apart[m] for m in members)) & chosen
                             - set(members)),
        cost_per_hour=round(_cache_cost_per_hour(fleet, cache, ledger, cache.reserved), 6),
        all_warm_cost_per_hour=round(warm, 6))


def _allocatable(fleet: Fleet, instance_type: str) -> dict[str, int | None]:
    """What one node of `instance_type` offers its pods, as the plan's node fields."""
    allocatable = node_allocatable(fleet.cluster, instance_type)
    return {"node_cpu_milli": allocatable[0] if allocatable else None,
            "node_memory_mib": allocatable[1] if allocatable else None}


def _cpu_pool_plan(fleet: Fleet, pool: Pool,
                   by_gpu: dict[tuple[str, int, int], list[Placement]],
                   chosen: dict[str, Demand], ledger: _Ledger) -> PoolPlan:
    """A CPU pool's nodes and their pods (the engine's one device per node), each pod charged
    its share of its node's price (`cost.pod_share`)."""
    nodes, bought = [], []
    for node in sorted({node for (name, node, _) in by_gpu if name == pool.name}):
        shape = shape_of(pool, node)
        assert shape is not None  # the engine buys nodes of the pool's shapes only
        allocatable = node_allocatable(fleet.cluster, shape.instance_type)
        assert allocatable is not None  # loading requires every instance type described
        placed = by_gpu[(pool.name, node, 0)]
        shares = cost.gpu_fractions([cost.pod_share(allocatable, chosen[p.group])
                                     for p in placed])
        pods = []
        for p, share in zip(placed, shares, strict=True):
            ledger.cost_per_hour[p.group] += share * shape.price_per_node_hour
            ledger.shares_with[p.group].update(q.group for q in placed if q.group != p.group)
            pods.append(ReplicaSlot(model=p.group, replica=p.replica, memory_mib=0,
                                    compute_milli=0, gpu_fraction=0.0))
        nodes.append(NodePlan(name=f"{pool.name}-{node}", index=node, gpus=[], pods=pods,
                              **_node_shape(pool, shape)))
        bought.append(shape)
    pool_cost = cost.nodes_cost_per_hour(bought)
    paid = sum(ledger.cost_per_hour[m] for m in {r.model for n in nodes for r in n.pods})
    allocatable = node_allocatable(fleet.cluster, pool.instance_type)
    return PoolPlan(
        name=pool.name, gpu_type=None, gpu_product="", gpu_memory_mib=0,
        max_nodes=pool.max_nodes, node_class=fleet.cluster.node_class_of(pool).model_dump(),
        labels=pool.labels,
        taints=[Taint(key=t.key, value=t.value, effect=t.effect) for t in pool.taints],
        pool_class=pool.pool_class, sharing=CPU_POOL_SHARING, gpus_per_node=0,
        replicas_per_gpu=0, price_per_node_hour=pool.price_per_node_hour,
        instance_type=pool.instance_type,
        node_cpu_milli=allocatable[0] if allocatable else None,
        node_memory_mib=allocatable[1] if allocatable else None,
        cost_per_hour=round(pool_cost, 6),
        idle_cost_per_hour=round(cost.idle_cost_per_hour(pool_cost, paid), 6),
        memory_used_mib=0, memory_capacity_mib=0, compute_used_milli=0,
        compute_capacity_milli=0, capacity_type=pool.capacity_type,
        list_price_per_node_hour=pool.list_price_per_node_hour, zones=list(pool.zones),
        nodes=nodes)


def _pool_plan(fleet: Fleet, pool: Pool, by_gpu: dict[tuple[str, int, int], list[Placement]],
               chosen: dict[str, Demand], caches: dict[str, Cache], placed_caches: set[str],
               layouts: dict, ledger: _Ledger) -> PoolPlan:
    """A pool's nodes and GPUs as the solution uses them, with its cost and utilisation."""
    if pool.gpu_type is None:
        return _cpu_pool_plan(fleet, pool, by_gpu, chosen, ledger)
    gpu_type = fleet.cluster.gpu_types[pool.gpu_type]
    node_ids = sorted({node for (name, node, _) in by_gpu if name == pool.name})
    nodes, bought = [], []
    for node in node_ids:
        shape = shape_of(pool, node)
        assert shape is not None  # the engine buys nodes of the pool's shapes only
        gpus = [_gpu_plan(fleet, pool, shape, node, index, by_gpu[(pool.name, node, index)],
                          chosen, caches, layouts, ledger)
                for index in range(shape.gpus_per_node) if (pool.name, node, index) in by_gpu]
        nodes.append(NodePlan(name=f"{pool.name}-{node}", index=node, gpus=gpus,
                              **_node_shape(pool, shape)))
        bought.append(shape)
    slots = [r for n in nodes for g in n.gpus for r in g.replicas]
    servers = [c for n in nodes for g in n.gpus for c in g.caches]
    pool_cost = cost.nodes_cost_per_hour(bought)
    paid = sum(ledger.cost_per_hour[m] for m in {r.model for r in slots} | {
        c.cache for c in servers})
    gpu_count = sum(shape.gpus_per_node for shape in bought)
    shapes = [ShapePlan(instance_type=s.instance_type, gpus_per_node=s.gpus_per_node,
                        price_per_node_hour=s.price_per_node_hour, max_nodes=s.max_nodes or 0,
                        nodes=sum(1 for b in bought if (b.instance_type, b.capacity_type)
                                  == (s.instance_type, s.capacity_type)),
                        capacity_type=s.capacity_type,
                        list_price_per_node_hour=s.list_price_per_node_hour,
                        **_allocatable(fleet, s.instance_type))
              for s in pool.shapes()] if pool.several_shapes else []
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
        memory_used_mib=sum(r.memory_mib for r in slots) + sum(c.memory_mib for c in servers),
        memory_capacity_mib=gpu_count * gpu_type.memory_mib,
        compute_used_milli=sum(r.compute_milli for r in slots)
        + sum(c.compute_milli for c in servers),
        compute_capacity_milli=gpu_count * 1000, capacity_type=pool.capacity_type,
        list_price_per_node_hour=pool.list_price_per_node_hour,
        list_cost_per_hour=round(list_cost, 6) if discounted else None, shapes=shapes,
        zones=list(pool.zones), nodes=nodes,
        caches=[_cache_plan(fleet, c, ledger, c.name in placed_caches,
                            kept_apart(fleet.policy, fleet.models, "node"), set(chosen))
                for c in caches.values() if c.pool == pool.name])


def _model_plan(fleet: Fleet, demand: Demand, rejections: list[Rejection],
                options: list[Demand], ledger: _Ledger, apart_on_node: list[str],
                caches: CachePlan) -> ModelPlan:
    spec = fleet.models[demand.model]
    name = demand.model
    reasons = _model_reasons(fleet, demand, rejections, options, caches)
    cache = next((c for c in caches.caches if demand in c.members), None)
    cost_per_hour, gpu_fraction = ledger.cost_per_hour[name], ledger.gpu_fraction[name]
    shares_with = ledger.shares_with[name]
    if cache is not None:
        gpu = fleet.cluster.gpu_types[str(fleet.pool(cache.pool).gpu_type)]
        weight = warm_share(gpu, demand) / sum(warm_share(gpu, d)
                                                    for d in cache.members)
        share = _cache_cost_per_hour(fleet, cache, ledger, cache.reserved) * weight
        if cache.reserved:
            cost_per_hour = share
            gpu_fraction = ledger.gpu_fraction[cache.name] * weight
            # the server's neighbours; the other members are in the server itself
            shares_with = ledger.shares_with[cache.name]
        reasons.insert(len(reasons) - len(rejections), _cache_reason(
            fleet, cache, share,
            warm_share(gpu, demand) * _own_gpu_price(fleet, cache),
            cache.reserved))
    return ModelPlan(
        name=name, team=spec.team, labels=spec.labels.as_dict(),
        serving=Serving(**spec.serving.model_dump()),
        limits=_limits(spec, demand), loading=caches.loading(fleet, demand)[0],
        cache=cache.name if cache is not None and cache.reserved else None,
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
        profile_method=demand.method, gpu_fraction=round(gpu_fraction, 6),
        cost_per_hour=round(cost_per_hour, 6),
        shares_with=sorted(shares_with), apart_on_node=apart_on_node,
        llm=None if demand.llm is None else LlmPlan(**asdict(demand.llm)),
        autoscaling=None if (scaling := autoscaling(spec, demand.replicas)) is None
        else Autoscaling(**asdict(scaling), prometheus_url=fleet.config.prometheus_url
                         if scaling.by == "keda" else None),
        batch=_batch(spec, fleet.config.hours_per_month),
        reasons=reasons)


def _batch(spec: ModelSpec, hours_per_month: float) -> BatchPlan | None:
    """A batch model's runs: its schedule, how long a run lasts, how many a month has."""
    found = runs(spec, hours_per_month)
    if found is None or spec.batch is None:
        return None
    return BatchPlan(schedule=spec.batch.schedule, time_zone=spec.batch.time_zone,
                     requests_per_run=spec.batch.requests_per_run,
                     run_hours=round(found.run_hours, 6),
                     runs_per_month=round(found.runs_per_month, 6))


def _limits(spec: ModelSpec, demand: Demand) -> Limits:
    """The server's limits: its concurrency is the operating point packed for memory and
    checked against the SLO, never more than the model file allows."""
    limits = spec.limits.model_dump()
    if demand.concurrency is not None:
        limits["max_concurrency"] = demand.concurrency
    return Limits(**limits)


def _unplaced(fleet: Fleet, placed: set[str], rejections: dict[str, list[Rejection]],
              solution: Solution, caches: CachePlan) -> list[UnplacedModel]:
    result = []
    cache_of = {d.model: c.name for c in caches.caches for d in c.members}
    for name in sorted(set(fleet.models) - placed):
        spec = fleet.models[name]
        reasons = [f"{r.pool}: {r.reason}" for r in rejections[name]]
        if name in solution.unplaced:
            reasons.append(solution.unplaced[name])
        if cache_of.get(name) in solution.unplaced:
            reasons.append(f"its lazy cache {cache_of[name]} stayed out: "
                           f"{solution.unplaced[cache_of[name]]}")
        result.append(UnplacedModel(name=name, team=spec.team, priority=spec.priority,
                                    reasons=reasons))
    return result


def assemble(fleet: Fleet, demands: dict[str, list[Demand]],
             rejections: dict[str, list[Rejection]], solution: Solution,
             caches: CachePlan | None = None, *,
             solver_name: str, seed: int, workers: int, time_limit_s: float,
             explanation: list[str], deterministic: bool = False) -> Plan:
    """The plan of `solution`: every pool, node, GPU and replica, every model and its cost."""
    hours = fleet.config.hours_per_month
    caches = caches or CachePlan(demands=demands, caches=(), uncached={})
    by_cache = {c.name: c for c in caches.caches}
    placed_caches = {p.group for p in solution.placements if p.group in by_cache}
    chosen = {p.group: next(d for d in demands[p.group] if d.pool == p.pool)
              for p in solution.placements if p.group not in by_cache}
    chosen |= {d.model: d for name in placed_caches for d in by_cache[name].members}
    by_gpu: dict[tuple[str, int, int], list[Placement]] = defaultdict(list)
    for p in solution.placements:
        for g in p.gpus:
            by_gpu[(p.pool, p.node, g)].append(p)
    ledger = _Ledger()
    pools = [_pool_plan(fleet, pool, by_gpu, chosen, by_cache, placed_caches,
                        solution.mig_layouts, ledger)
             for pool in fleet.cluster.pools]
    apart = kept_apart(fleet.policy, fleet.models, "node")
    models = [_model_plan(fleet, demand, rejections[name], demands[name], ledger,
                          sorted(apart[name] & set(chosen)), caches)
              for name, demand in sorted(chosen.items())]
    unplaced = _unplaced(fleet, set(chosen), rejections, solution, caches)
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
                        gpus=sum(len(n.gpus) for p in pools for n in p.nodes),
                        nodes=sum(len(p.nodes) for p in pools),
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
