"""Each planned node of a pool that lists zones put in one of them, so that every model's
replicas hold the policy's zone spread (`spread.zone_max_skew`) as the scheduler checks it.

The scheduler's PodTopologySpread filter (whenUnsatisfiable: DoNotSchedule, no minDomains,
nodeAffinityPolicy Honor, nodeTaintsPolicy Ignore: the defaults the manifests keep) admits a
pod in zone z when `count(z) + 1 - min over domains <= maxSkew`, counting the pods its
labelSelector matches, where the domains are the zones of the nodes that match the pod's node
selector and required node affinity, taints aside (Kubernetes, "Pod Topology Spread
Constraints"; kube-scheduler `podtopologyspread`). Those nodes are the pool's (of one capacity
type where the model's pods select one). Pods arrive one by one, but a final count whose
largest and smallest zone differ by at most maxSkew can always be reached: a pod of the
zone furthest behind is admitted. So the plan needs, for each model, its replicas per zone to
differ by at most maxSkew over every zone that holds one of its eligible nodes.

Which node goes where is a small CP-SAT model per pool (booleans node x zone), bounded by
deterministic time so that it gives the same answer on any machine. The pool's nodes go
evenly over its zones (their counts differ by one at most: one zone's loss takes a share of
the pool), and among those answers it prefers each model's replicas spread thin (the fewest
in its fullest zone). When none holds every spread, the nodes go round-robin and
`ZonePlacement.broken` names the models whose spread then fails (`planner.pipeline` packs
them again, one replica per node).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from planner.planfile import ModelPlan, NodePlan, Plan, PoolPlan

ZONE_WORK = 2.0  # CP-SAT deterministic seconds per pool


@dataclass(frozen=True)
class ZonePlacement:
    """The zone of each planned node by (pool, node index), and the models whose zone
    spread the placement does not hold."""

    zones: dict[tuple[str, int], str]
    broken: tuple[str, ...] = ()


def eligible_nodes(pool: PoolPlan, model: ModelPlan) -> list[NodePlan]:
    """The nodes of `pool` a pod of `model` may select: all of them, or those of the capacity
    type its pods select (`PoolPlan.capacity_type_of`)."""
    wanted = pool.capacity_type_of(model.name)
    return [n for n in pool.nodes if wanted is None or pool.shape(n).capacity_type == wanted]


@dataclass(frozen=True)
class Spread:
    """A model under a zone spread in one pool: its replicas per node index, the indexes of
    the nodes its pods may select, and its skew."""

    model: ModelPlan
    on_node: Counter[int]
    eligible: list[int]
    max_skew: int


def _spread(pool: PoolPlan, plan: Plan) -> list[Spread]:
    """The pool's models under a zone spread."""
    found = []
    for model in plan.models:
        if model.pool != pool.name or model.zone_max_skew is None:
            continue
        on_node: Counter[int] = Counter()
        for node in pool.nodes:
            on_node[node.index] = sum(1 for name, _ in node.replicas() if name == model.name)
        found.append(Spread(model, on_node, [n.index for n in eligible_nodes(pool, model)],
                            model.zone_max_skew))
    return found


def skew_broken(counts: dict[str, int], domains: set[str], max_skew: int) -> bool:
    """Whether replicas per zone `counts` break `max_skew` over the eligible `domains`."""
    values = [counts.get(zone, 0) for zone in domains]
    return bool(values) and max(values) - min(values) > max_skew


def _round_robin(pool: PoolPlan) -> dict[int, str]:
    return {node.index: pool.zones[i % len(pool.zones)] for i, node in enumerate(pool.nodes)}


def _solve(pool: PoolPlan, spread: list[Spread], seed: int) -> dict[int, str] | None:
    from ortools.sat.python import cp_model

    from solvers.sat import new_deterministic_solver

    cp = cp_model.CpModel()
    zones = range(len(pool.zones))
    indexes = [n.index for n in pool.nodes]
    at = {(n, z): cp.new_bool_var(f"at[{n},{z}]") for n in indexes for z in zones}
    for n in indexes:
        cp.add_exactly_one(at[n, z] for z in zones)
    cp.add(at[indexes[0], 0] == 1)  # the zones are interchangeable: the first node in the first
    tops = []
    for one in spread:
        name = one.model.name
        count = {z: sum(one.on_node[n] * at[n, z] for n in indexes if one.on_node[n])
                 for z in zones}
        domain = {z: cp.new_bool_var(f"domain[{name},{z}]") for z in zones}
        for z in zones:
            for n in one.eligible:
                cp.add_implication(at[n, z], domain[z])
            cp.add(sum(at[n, z] for n in one.eligible) >= 1).only_enforce_if(domain[z])
        for z in zones:
            for other in zones:
                if z != other:
                    cp.add(count[z] <= count[other] + one.max_skew).only_enforce_if(
                        domain[other])
        top = cp.new_int_var(0, one.model.replicas, f"top[{name}]")
        for z in zones:
            cp.add(top >= count[z])
        tops.append(top)
    fewest = len(indexes) // len(pool.zones)
    for z in zones:  # the nodes even over the zones: what listing them asks
        cp.add_linear_constraint(sum(at[n, z] for n in indexes), fewest,
                                 fewest + (1 if len(indexes) % len(pool.zones) else 0))
    cp.minimize(sum(tops))
    solver = new_deterministic_solver(ZONE_WORK, seed)
    if solver.solve(cp) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return {n: pool.zones[z] for n in indexes for z in zones if solver.value(at[n, z])}


def place_zones(plan: Plan, seed: int = 0) -> ZonePlacement:
    """A zone for every planned node of every pool that lists zones."""
    zones: dict[tuple[str, int], str] = {}
    broken: list[str] = []
    for pool in plan.pools:
        if not pool.zones or not pool.nodes:
            continue
        spread = _spread(pool, plan)
        chosen = _solve(pool, spread, seed) if spread else None
        if chosen is None:
            chosen = _round_robin(pool)
        for one in spread:
            counts: Counter[str] = Counter()
            for index, replicas in one.on_node.items():
                counts[chosen[index]] += replicas
            if skew_broken(counts, {chosen[n] for n in one.eligible}, one.max_skew):
                broken.append(one.model.name)
        zones.update({(pool.name, index): zone for index, zone in chosen.items()})
    return ZonePlacement(zones, tuple(sorted(broken)))


def with_zones(plan: Plan, placement: ZonePlacement, spaced: set[str] | frozenset = frozenset()
               ) -> Plan:
    """`plan` with each node's zone, and reasons on the models packed one replica per node
    for their zone spread (`spaced`) and on those whose spread still fails."""
    pools = [pool.model_copy(update={"nodes": [
        node.model_copy(update={"zone": placement.zones.get((pool.name, node.index), "")})
        for node in pool.nodes]}) for pool in plan.pools]

    def reasons(m: ModelPlan) -> list[str]:
        found = list(m.reasons)
        if m.name in spaced:
            found.append("zone spread: packed one replica per node, so that its replicas "
                         f"can spread over the zones of {m.pool}")
        if m.name in placement.broken:
            found.append(f"zone spread: no zone for each node of {m.pool} keeps this model's "
                         f"replicas per zone within {m.zone_max_skew} of each other; the "
                         "scheduler will move some off their planned nodes")
        return found

    models = [m.model_copy(update={"reasons": reasons(m)}) for m in plan.models]
    return plan.model_copy(update={"pools": pools, "models": models})
