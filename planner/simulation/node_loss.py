"""Every node of a replayed cluster lost in turn: which of its pods reschedule on the nodes
left (preempting lower-priority pods as the scheduler would), which models then run fewer
replicas than their `replicas.min`, and the N+1 headroom that would prevent it: one spare node
of the lost node's NodePool, whose price the report gives and whose effect it replays."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from planner import money
from planner.planfile import Plan
from planner.simulation.nodes import Node
from planner.simulation.replay import Simulation, run_queue
from planner.simulation.scheduler import Cluster


@dataclass(frozen=True)
class BelowMin:
    model: str
    running: int
    replicas_min: int


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
class Headroom:
    """A spare node for a NodePool whose loss of a node drops a model below replicas.min."""

    node_pool: str
    pool: str
    cost_per_hour: Decimal
    cost_per_month: Decimal
    within_ceiling: bool  # the pool's max_nodes leaves room for it
    covers: bool  # with it, every loss of the NodePool's nodes keeps every model at its min


@dataclass(frozen=True)
class NodeLossReport:
    losses: tuple[NodeLoss, ...]
    headroom: tuple[Headroom, ...]
    currency: str

    @property
    def cost_per_month(self) -> Decimal:
        return money.total([h.cost_per_month for h in self.headroom], self.currency)


def _running(cluster: Cluster) -> Counter[str]:
    return Counter(b.pod.model for b in cluster.bindings.values())


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
    before, running = _running(cluster), _running(after)
    below = tuple(BelowMin(m.name, running[m.name], m.replicas_min) for m in plan.models
                  if running[m.name] < min(m.replicas_min, before[m.name]))
    return NodeLoss(name, pool, tuple(sorted(p.name for p in lost)), moved, pending, below)


def _spare(node: Node) -> Node:
    """An empty node of the same NodePool, as Karpenter would launch it."""
    name = f"{node.node_pool}-spare"
    return dataclasses.replace(node, name=name,
                               labels={**node.labels, "kubernetes.io/hostname": name})


def node_loss_report(plan: Plan, simulation: Simulation) -> NodeLossReport:
    """Each node of the replayed cluster lost in turn, and the headroom that keeps every model
    at its replicas.min through any one loss."""
    cluster = simulation.cluster
    losses = tuple(lose(plan, cluster, name) for name in cluster.nodes)
    currency = plan.summary.currency
    hours = Decimal(str(plan.metadata.hours_per_month))
    planned = Counter(n.pool for n in cluster.nodes.values())
    pools = {p.name: p for p in plan.pools}
    headroom = []
    for node_pool in sorted({cluster.nodes[loss.node].node_pool for loss in losses
                             if not loss.holds}):
        sample = next(n for n in cluster.nodes.values() if n.node_pool == node_pool)
        with_spare = cluster.copy()
        with_spare.add_node(_spare(sample))
        covers = all(lose(plan, with_spare, n.name).holds for n in cluster.nodes.values()
                     if n.node_pool == node_pool)
        rate = money.decimal(sample.price_per_node_hour)
        pool = pools[sample.pool]
        headroom.append(Headroom(node_pool, sample.pool, rate,
                                 money.rounded(money.monthly(rate, hours), currency),
                                 planned[pool.name] + 1 <= pool.max_nodes, covers))
    return NodeLossReport(losses, tuple(headroom), currency)
