"""A cluster's nodes and bound pods, and the scheduler's two steps for a pod: the filters on a
node (and the device allocation there), and, where no node passes, preemption.

The scheduler's scores are not modelled: a pod that is not bound to a node it names goes to
the first node, in the plan's order, that passes every filter.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass

from planner.simulation import filters
from planner.simulation.devices import Allocation, Devices, NodeState
from planner.simulation.nodes import Node
from planner.simulation.pods import PODS, Pod


@dataclass(frozen=True)
class Binding:
    pod: Pod
    node: str
    allocation: Allocation

    @property
    def devices(self) -> tuple[int, ...]:
        """The pod's devices, as indexes into its node's devices."""
        return tuple(use.device for use in self.allocation.uses)


class Cluster:
    """Nodes and the pods bound to them."""

    def __init__(self, nodes: list[Node], allocator: Devices):
        self.nodes: dict[str, Node] = {n.name: n for n in nodes}
        self.allocator = allocator
        self.bindings: dict[str, Binding] = {}

    def copy(self) -> Cluster:
        other = copy.copy(self)
        other.nodes = dict(self.nodes)
        other.bindings = dict(self.bindings)
        return other

    def on(self, node: str) -> list[Binding]:
        return [b for b in self.bindings.values() if b.node == node]

    def remove_node(self, name: str) -> list[Pod]:
        """The node is gone; its pods are returned, unbound."""
        lost = [b.pod for b in self.on(name)]
        for pod in lost:
            del self.bindings[pod.name]
        del self.nodes[name]
        return lost

    def add_node(self, node: Node) -> None:
        self.nodes[node.name] = node

    def _placed(self) -> filters.Placed:
        return [(self.nodes[b.node].labels, b.pod) for b in self.bindings.values()]

    def _free(self, node: Node) -> dict[str, int]:
        free = dict(node.allocatable)
        for binding in self.on(node.name):
            for resource, amount in binding.pod.requests.items():
                free[resource] = free.get(resource, 0) - amount
            free[PODS] = free.get(PODS, 0) - 1
        return free

    def _state(self, node: str) -> NodeState:
        claims = {key: (b.node, allocation) for b in self.bindings.values()
                  for key, allocation in b.allocation.claims}
        claimed = frozenset(i for where, allocation in claims.values() if where == node
                            for _, devices in allocation for i in devices)
        used = Counter(u.device for b in self.on(node) for u in b.allocation.uses
                       if not u.pinned)
        return NodeState(used, claimed, claims)

    def refusal(self, pod: Pod, name: str) -> str | None:
        """Why the scheduler would not bind `pod` to node `name`, or None: the filters in the
        scheduler's order, then the device allocation."""
        node = self.nodes[name]
        placed = self._placed()
        reason = (filters.node_affinity_refusal(pod, node.labels)
                  or filters.taint_refusal(pod, list(node.taints))
                  or filters.resource_refusal(pod.requests, self._free(node))
                  or filters.spread_refusal(pod, node.labels,
                                            [n.labels for n in self.nodes.values()], placed)
                  or filters.anti_affinity_refusal(pod, node.labels, placed))
        if reason is None:
            allocation = self.allocator.allocate(node, self._state(name), pod)
            if isinstance(allocation, str):
                reason = allocation
        return reason

    def bind(self, pod: Pod, name: str) -> Binding:
        allocation = self.allocator.allocate(self.nodes[name], self._state(name), pod)
        assert not isinstance(allocation, str), f"{pod.name} bound to {name}: {allocation}"
        binding = Binding(pod, name, allocation)
        self.bindings[pod.name] = binding
        return binding

    def evict(self, pod: Pod) -> None:
        del self.bindings[pod.name]

    def schedule(self, pod: Pod) -> tuple[Binding | None, list[Pod], str]:
        """Bind `pod` to the first node that passes the filters; else preempt: the bound pods
        it evicts, and why no node took it when none did."""
        reasons: Counter[str] = Counter()
        for name in self.nodes:
            reason = self.refusal(pod, name)
            if reason is None:
                return self.bind(pod, name), [], ""
            reasons[reason] += 1
        summary = f"0/{len(self.nodes)} nodes are available: " + ", ".join(
            f"{count} {reason}" for reason, count in sorted(reasons.items()))
        if not pod.preempts:
            return None, [], summary
        chosen = self._preemption(pod)
        if chosen is None:
            return None, [], summary + "; preemption: no node where evicting lower-priority " \
                "pods would help"
        name, victims = chosen
        for victim in victims:
            self.evict(victim)
        return self.bind(pod, name), victims, ""

    def _victims_on(self, pod: Pod, name: str) -> list[Pod] | None:
        """The default preemption's victims on one node (SelectVictimsOnNode): every pod of
        lower priority removed; None when the pod still does not fit; else each of them given
        back, most important first, while the pod still fits."""
        lower = sorted((b for b in self.on(name) if b.pod.priority < pod.priority),
                       key=lambda b: (-b.pod.priority, b.pod.name))
        if not lower:
            return None
        for binding in lower:
            del self.bindings[binding.pod.name]
        try:
            if self.refusal(pod, name) is not None:
                return None
            victims = []
            for binding in lower:
                self.bindings[binding.pod.name] = binding
                if self.refusal(pod, name) is not None:
                    del self.bindings[binding.pod.name]
                    victims.append(binding.pod)
            return victims
        finally:
            for binding in lower:
                self.bindings[binding.pod.name] = binding

    def _preemption(self, pod: Pod) -> tuple[str, list[Pod]] | None:
        """The node to preempt on (pickOneNodeForPreemption, without disruption budgets): the
        lowest highest-victim priority, then the lowest sum of priorities, then the fewest
        victims, then the first node."""
        candidates = []
        for order, name in enumerate(self.nodes):
            victims = self._victims_on(pod, name)
            if victims is not None:
                key = (max(v.priority for v in victims) if victims else -2**31,
                       sum(v.priority for v in victims), len(victims), order)
                candidates.append((key, name, victims))
        if not candidates:
            return None
        _, name, victims = min(candidates, key=lambda c: c[0])
        return name, victims
