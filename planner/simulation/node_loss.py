"""Every node of a replayed cluster lost in turn: which of its pods reschedule on the nodes
left (preempting lower-priority pods as the scheduler would), which models then run fewer
replicas than their `replicas.min`, and the headroom that would prevent it: per pool, the
cheapest spare nodes (of the kinds its NodePools launch: NodePool and instance type) with
which every loss of one of the pool's nodes keeps every model at its min, found by replaying
the losses with each mix of up to `MAX_SPARES` nodes, cheapest mix first.

A member of a lazy cache whose servers the manifests run has no pods of its own: it is up
wherever one of its cache's server pods runs, so a lost node that holds a server takes the
members down with it unless the server reschedules, and the headroom must hold the server."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from planner import money
from planner.planfile import (
    BelowMinPlan,
    HeadroomPlan,
    NodeLossPlan,
    NodeLossSummary,
    Plan,
    SparePlan,
)
from planner.simulation.manifests import Manifests
from planner.simulation.nodes import Node
from planner.simulation.replay import Simulation, replay, run_queue
from planner.simulation.scheduler import Cluster
from reports.karpenter import INSTANCE_TYPE_LABEL
from reports.manifests import KSERVE_RAW, render_manifests

MAX_SPARES = 3  # spare nodes per pool that the cheapest mix is looked for among
MAX_MIXES = 40  # mixes replayed per pool at most, cheapest first
MAX_PLAN_NODES = 200  # `planner plan` replays node loss for plans of at most these nodes


@dataclass(frozen=True)
class BelowMin:
    model: str
    running: int
    replicas_min: int
    served_by: str = ""  # the cache server workload whose pods serve the model


@dataclass(frozen=True)
class NodeLoss:
    """One node lost: its pods, where they went, and who is left pending."""

    node: str
    pool: str
    lost: tuple[str, ...]
    rescheduled: tuple[tuple[str, str], ...]  # (pod, node)
    pending: tuple[str, ...]  # lost pods and preempted pods with no node
    below_min: tuple[BelowMin, ...]

    @property
    def holds(self) -> bool:
        return not self.below_min


@dataclass(frozen=True)
class Spare:
    """Spare nodes of one kind: `nodes` nodes of `node_pool`'s `instance_type`."""

    node_pool: str
    instance_type: str
    nodes: int
    price_per_node_hour: Decimal


@dataclass(frozen=True)
class Headroom:
    """The cheapest spare nodes for a pool where the loss of one of its nodes drops a model
    below replicas.min."""

    pool: str
    spares: tuple[Spare, ...]
    cost_per_hour: Decimal
    cost_per_month: Decimal
    within_ceiling: bool  # the pool's max_nodes leaves room for them
    covers: bool  # with them, every loss of the pool's nodes keeps every model at its min

    @property
    def nodes(self) -> int:
        return sum(s.nodes for s in self.spares)


@dataclass(frozen=True)
class NodeLossReport:
    losses: tuple[NodeLoss, ...]
    headroom: tuple[Headroom, ...]
    currency: str

    @property
    def cost_per_month(self) -> Decimal:
        return money.total([h.cost_per_month for h in self.headroom], self.currency)


def _running(plan: Plan, cluster: Cluster) -> Counter[str]:
    """The pods running per model; a served cache's member counts its cache's server pods."""
    running = Counter(b.pod.model for b in cluster.bindings.values())
    for model in plan.models:
        if (cache := plan.served_by(model)) is not None:
            running[model.name] = running[cache.workload]
    return running


def lose(plan: Plan, cluster: Cluster, name: str) -> NodeLoss:
    """Node `name` lost: its pods rescheduled on what is left. A model drops below its min
    when it runs fewer replicas than both its min and what it ran before the loss."""
    after = cluster.copy()
    pool = after.nodes[name].pool
    lost = after.remove_node(name)
    reasons = run_queue(after, lost, {})
    moved = tuple((p.name, after.bindings[p.name].node) for p in lost
                  if p.name in after.bindings)
    pending = tuple(sorted(p for p in reasons if p not in after.bindings))
    before, running = _running(plan, cluster), _running(plan, after)
    below = tuple(BelowMin(m.name, running[m.name], m.replicas_min,
                           cache.workload if (cache := plan.served_by(m)) else "")
                  for m in plan.models if running[m.name] < min(m.replicas_min, before[m.name]))
    return NodeLoss(name, pool, tuple(sorted(p.name for p in lost)), moved, pending, below)


def spares_text(headroom: Headroom) -> str:
    """The spare nodes as a person reads them: `2 x g6.xlarge (exclusive-l4)`."""
    return ", ".join(f"{s.nodes} x {s.instance_type or '?'} ({s.node_pool})"
                     for s in headroom.spares)


def _spare(node: Node, number: int) -> Node:
    """An empty node like `node` (its NodePool and instance type), as Karpenter would launch
    it."""
    name = f"{node.node_pool}-spare-{number}"
    return dataclasses.replace(node, name=name,
                               labels={**node.labels, "kubernetes.io/hostname": name})


def _kinds(cluster: Cluster, pool: str) -> list[Node]:
    """One node of each kind the pool's NodePools launch: by NodePool and instance type."""
    kinds: dict[tuple[str, str], Node] = {}
    for node in cluster.nodes.values():
        if node.pool == pool:
            kinds.setdefault((node.node_pool, node.labels.get(INSTANCE_TYPE_LABEL, "")), node)
    return [kinds[key] for key in sorted(kinds)]


def _mixes(kinds: list[Node]) -> list[tuple[int, ...]]:
    """Multisets of kinds (as kind indexes), 1 to MAX_SPARES nodes: cheapest first, then the
    fewest nodes."""
    found = [mix for count in range(1, MAX_SPARES + 1)
             for mix in itertools.combinations_with_replacement(range(len(kinds)), count)]
    return sorted(found, key=lambda mix: (sum(money.decimal(kinds[i].price_per_node_hour)
                                              for i in mix), len(mix), mix))


def covers(plan: Plan, cluster: Cluster, pool: str, spares: list[Node]) -> bool:
    """Whether with `spares` added, every loss of one of `pool`'s nodes keeps every model at
    its min."""
    with_spares = cluster.copy()
    for spare in spares:
        with_spares.add_node(spare)
    return all(lose(plan, with_spares, n.name).holds for n in cluster.nodes.values()
               if n.pool == pool)


def cheapest_headroom(plan: Plan, cluster: Cluster, pool: str) -> Headroom:
    """The cheapest mix of spare nodes that covers every loss of one of `pool`'s nodes; when
    none of the first MAX_MIXES does, the cheapest mix, marked as not covering."""
    kinds = _kinds(cluster, pool)
    mixes = _mixes(kinds)
    chosen, covered = mixes[0], False
    for mix in mixes[:MAX_MIXES]:
        if covers(plan, cluster, pool, [_spare(kinds[i], n) for n, i in enumerate(mix)]):
            chosen, covered = mix, True
            break
    counts = Counter(chosen)
    spares = tuple(Spare(kinds[i].node_pool, kinds[i].labels.get(INSTANCE_TYPE_LABEL, ""),
                         count, money.decimal(kinds[i].price_per_node_hour))
                   for i, count in sorted(counts.items()))
    rate = sum((s.price_per_node_hour * s.nodes for s in spares), Decimal(0))
    hours = Decimal(str(plan.metadata.hours_per_month))
    currency = plan.summary.currency
    planned = sum(1 for n in cluster.nodes.values() if n.pool == pool)
    ceiling = next(p.max_nodes for p in plan.pools if p.name == pool)
    return Headroom(pool, spares, rate, money.rounded(money.monthly(rate, hours), currency),
                    planned + len(chosen) <= ceiling, covered)


def node_loss_report(plan: Plan, simulation: Simulation) -> NodeLossReport:
    """Each node of the replayed cluster lost in turn, and the cheapest headroom that keeps
    every model at its replicas.min through any one loss."""
    cluster = simulation.cluster
    losses = tuple(lose(plan, cluster, name) for name in cluster.nodes)
    pools = sorted({loss.pool for loss in losses if not loss.holds})
    headroom = tuple(cheapest_headroom(plan, cluster, pool) for pool in pools)
    return NodeLossReport(losses, headroom, plan.summary.currency)


def summary_of(report: NodeLossReport, nodes: int) -> NodeLossSummary:
    """The report as the plan file keeps it: the losses that drop a model below its min."""
    return NodeLossSummary(
        nodes=nodes, limit=MAX_PLAN_NODES,
        losses=[NodeLossPlan(node=x.node, pool=x.pool, below_min=[
            BelowMinPlan(model=b.model, running=b.running, replicas_min=b.replicas_min,
                         served_by=b.served_by)
            for b in x.below_min]) for x in report.losses if x.below_min],
        headroom=[HeadroomPlan(pool=h.pool, spares=[
            SparePlan(node_pool=s.node_pool, instance_type=s.instance_type, nodes=s.nodes,
                      price_per_node_hour=float(s.price_per_node_hour)) for s in h.spares],
            cost_per_hour=float(h.cost_per_hour), cost_per_month=h.cost_per_month,
            within_ceiling=h.within_ceiling, covers=h.covers) for h in report.headroom],
        cost_per_month=report.cost_per_month)


def with_node_loss(plan: Plan, target: str = "deployment", kserve_mode: str = KSERVE_RAW
                   ) -> Plan:
    """`plan` with its node-loss summary: its manifests (as `target` renders them) replayed
    and each node lost in turn; above MAX_PLAN_NODES nodes, only the count (each loss
    replays the cluster: `planner simulate` does it on demand)."""
    nodes = sum(len(p.nodes) for p in plan.pools)
    if nodes > MAX_PLAN_NODES:
        return plan.model_copy(update={"node_loss": NodeLossSummary(nodes=0,
                                                                    limit=MAX_PLAN_NODES)})
    manifests = Manifests.of(render_manifests(plan, target=target, kserve_mode=kserve_mode))
    report = node_loss_report(plan, replay(plan, manifests))
    return plan.model_copy(update={"node_loss": summary_of(report, nodes)})
