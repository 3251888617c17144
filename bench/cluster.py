"""Placing pods onto an existing cluster: fixed, mixed nodes, as much GPU as priorities allow.

The pool engine buys identical nodes to fit every replica at the lowest cost. Here the nodes are
already there (different GPU counts, CPU and memory per node), some pods may not fit at all, and
the goal is the opposite: allocate as much GPU as possible, higher priorities first. This is how
a trace of a real cluster (Alibaba's openb) is replayed, and how a planner answers "what of this
demand fits what we already run".

A pod asks for node resources (CPU, memory) and `gpus` GPUs on one node, each with `gpu_milli`
thousandths of a GPU: fractional pods share a GPU up to `GPU_MILLI`; multi-GPU pods take whole
GPUs. Placement is lexicographic: the most pods of the highest priority by GPU demand, then the
next priority, and so on; a pod with no GPU counts as one milli so that it is placed when room
allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GPU_MILLI = 1000


@dataclass(frozen=True)
class Node:
    name: str
    gpus: int
    capacity: tuple[int, ...]


@dataclass(frozen=True)
class Pod:
    name: str
    demand: tuple[int, ...]
    gpus: int
    gpu_milli: int
    priority: int = 0

    @property
    def gpu_demand_milli(self) -> int:
        return self.gpus * self.gpu_milli

    @property
    def weight(self) -> int:
        """What placing the pod is worth within its priority: its GPU demand, at least 1."""
        return max(self.gpu_demand_milli, 1)


@dataclass(frozen=True)
class Cluster:
    resources: tuple[str, ...]
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]

    @property
    def gpus(self) -> int:
        return sum(n.gpus for n in self.nodes)


@dataclass(frozen=True)
class Allocation:
    """Where each pod runs: `assignment[i]` is (node index, GPU indexes) or None (unplaced).

    `upper_bound_milli` bounds the GPU milli any placement can allocate; `status` is `greedy`
    (a greedy start only), `improved` (the search found better) or `optimal` (every pod placed,
    or a search over the whole cluster proved that nothing better exists).
    """

    status: str
    assignment: tuple[tuple[int, tuple[int, ...]] | None, ...]
    upper_bound_milli: int
    seconds: float = 0.0

    def allocated_milli(self, cluster: Cluster) -> int:
        return allocated_milli(cluster, self.assignment)


def allocated_milli(cluster: Cluster, assignment) -> int:
    """GPU milli of the placed pods."""
    return sum(p.gpu_demand_milli for p, a in zip(cluster.pods, assignment, strict=True)
               if a is not None)


def objective_key(cluster: Cluster, assignment) -> tuple[int, ...]:
    """Placed weight per priority level, highest level first: larger compares better."""
    levels = sorted({p.priority for p in cluster.pods}, reverse=True)
    placed = dict.fromkeys(levels, 0)
    for pod, where in zip(cluster.pods, assignment, strict=True):
        if where is not None:
            placed[pod.priority] += pod.weight
    return tuple(placed[level] for level in levels)


class State:
    """Free resources per node and free milli per GPU, with place and remove in O(GPUs)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.node_free = np.array([n.capacity for n in cluster.nodes], dtype=np.int64)
        self.node_capacity = self.node_free.copy()
        width = max((n.gpus for n in cluster.nodes), default=0)
        self.gpu_free = np.full((len(cluster.nodes), max(width, 1)), -1, dtype=np.int64)
        for i, node in enumerate(cluster.nodes):
            self.gpu_free[i, :node.gpus] = GPU_MILLI
        self.gpu_count = np.array([n.gpus for n in cluster.nodes], dtype=np.int64)
        self.assignment: list[tuple[int, tuple[int, ...]] | None] = [None] * len(cluster.pods)

    def allocated_milli(self) -> int:
        return allocated_milli(self.cluster, self.assignment)

    def fitting_nodes(self, pod: Pod) -> np.ndarray:
        """Indexes of the nodes where the pod fits now."""
        ok = (self.node_free >= np.array(pod.demand)).all(axis=1)
        if pod.gpus:
            ok &= (self.gpu_free >= pod.gpu_milli).sum(axis=1) >= pod.gpus
        return np.flatnonzero(ok)

    def tightest_gpus(self, pod: Pod, node: int) -> tuple[int, ...]:
        """The pod's GPUs on `node`: those with the least free milli that still fit it."""
        if not pod.gpus:
            return ()
        free = self.gpu_free[node]
        order = np.argsort(np.where(free >= pod.gpu_milli, free, 1 << 40), kind="stable")
        return tuple(int(g) for g in order[:pod.gpus])

    def place(self, index: int, node: int, gpus: tuple[int, ...]) -> None:
        pod = self.cluster.pods[index]
        self.node_free[node] -= pod.demand
        for g in gpus:
            self.gpu_free[node, g] -= pod.gpu_milli
        self.assignment[index] = (node, gpus)

    def remove(self, index: int) -> None:
        where = self.assignment[index]
        assert where is not None  # only a placed pod is removed
        node, gpus = where
        pod = self.cluster.pods[index]
        self.node_free[node] += pod.demand
        for g in gpus:
            self.gpu_free[node, g] += pod.gpu_milli
        self.assignment[index] = None


def _left(state: State, pod: Pod, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each node's free GPU milli and free resource shares once the pod is on it."""
    gpu_left = np.where(state.gpu_free[nodes] > 0, state.gpu_free[nodes], 0).sum(axis=1)
    resource_share = ((state.node_free[nodes] - np.array(pod.demand))
                      / np.maximum(state.node_capacity[nodes], 1))
    return gpu_left - pod.gpu_demand_milli, resource_share


def best_fit_scores(state: State, pod: Pod, nodes: np.ndarray) -> np.ndarray:
    """Classic best fit: the least free GPU milli left on the node, then the least free
    resources."""
    gpu_left, resource_share = _left(state, pod, nodes)
    return gpu_left * 1000.0 + resource_share.sum(axis=1)


def balanced_scores(state: State, pod: Pod, nodes: np.ndarray) -> np.ndarray:
    """Keep a node's free GPU share level with its scarcest free resource share, so that
    neither is stranded: GPUs nobody can use for want of CPU, or CPU with no GPU beside it."""
    gpu_left, resource_share = _left(state, pod, nodes)
    gpu_share = gpu_left / np.maximum(state.gpu_count[nodes] * GPU_MILLI, 1)
    return np.abs(resource_share.min(axis=1) - gpu_share)


SCORES = {"best": best_fit_scores, "balanced": balanced_scores}


def decreasing_order(cluster: Cluster) -> list[int]:
    """Priority first, then the largest GPU demand, then the largest share of node resources."""
    biggest = np.maximum(np.array([n.capacity for n in cluster.nodes]).max(axis=0), 1)

    def key(i: int):
        pod = cluster.pods[i]
        return (-pod.priority, -pod.gpu_demand_milli, -pod.gpu_milli,
                -float((np.array(pod.demand) / biggest).sum()), i)
    return sorted(range(len(cluster.pods)), key=key)


def fit(cluster: Cluster, rule: str = "best") -> State:
    """Pods in decreasing order, each to the fitting node that the rule scores lowest (`best`:
    best-fit decreasing, the baseline; `balanced`: see `balanced_scores`)."""
    score = SCORES[rule]
    state = State(cluster)
    for index in decreasing_order(cluster):
        pod = cluster.pods[index]
        nodes = state.fitting_nodes(pod)
        if len(nodes):
            node = int(nodes[np.argmin(score(state, pod, nodes))])
            state.place(index, node, state.tightest_gpus(pod, node))
    return state


def violations(cluster: Cluster, assignment) -> list[str]:
    """Every broken capacity, as readable lines; empty when the assignment is valid."""
    found = []
    node_used = np.zeros((len(cluster.nodes), len(cluster.resources)), dtype=np.int64)
    gpu_used: dict[tuple[int, int], int] = {}
    for pod, where in zip(cluster.pods, assignment, strict=True):
        if where is None:
            continue
        node, gpus = where
        if len(gpus) != pod.gpus or len(set(gpus)) != len(gpus):
            found.append(f"{pod.name}: GPUs {gpus}, needs {pod.gpus} distinct")
        node_used[node] += pod.demand
        for g in gpus:
            if not 0 <= g < cluster.nodes[node].gpus:
                found.append(f"{pod.name}: node {cluster.nodes[node].name} has no GPU {g}")
            gpu_used[(node, g)] = gpu_used.get((node, g), 0) + pod.gpu_milli
    for i, node in enumerate(cluster.nodes):
        for name, used, cap in zip(cluster.resources, node_used[i], node.capacity, strict=True):
            if used > cap:
                found.append(f"{node.name}: {name} {used} over {cap}")
    for (i, g), used in gpu_used.items():
        if used > GPU_MILLI:
            found.append(f"{cluster.nodes[i].name} GPU {g}: {used} milli over {GPU_MILLI}")
    return found
