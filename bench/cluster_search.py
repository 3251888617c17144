"""Placing a cluster's pods as well as time allows: greedy starts, then CP-SAT windows.

1. Starts. Best-fit decreasing (the baseline) and balanced fit (`cluster.balanced_scores`) both
   run; the lexicographically better one is kept.
2. Windows. Large neighbourhood search: free a few nodes (the most fragmented, and some at
   random), add unplaced pods that could fit there, and let CP-SAT repack them to place the most
   weight, priority by priority (each level weighs more than all below it together). The model
   demands strictly more than the window holds now, so every answer it gives is an improvement.
   Identical pods are aggregated into counts per GPU, which keeps each model small.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from bench.cluster import (
    GPU_MILLI,
    SCORES,
    Allocation,
    Cluster,
    State,
    fit,
    objective_key,
    violations,
)
from bench.cluster_bound import upper_bound_milli
from solvers.sat import new_solver


def _node_type(cluster: Cluster, node: int) -> tuple:
    n = cluster.nodes[node]
    return (n.gpus, n.capacity)


def _kind(pod) -> tuple:
    return (pod.demand, pod.gpus, pod.gpu_milli, pod.priority)


def _window(cluster: Cluster, state: State, rng: random.Random, size: int) -> list[int]:
    """A few nodes to repack: one with free GPU, then nodes of its type and nodes with free
    node resources, where pods could move to."""
    if len(cluster.nodes) <= size:
        return list(range(len(cluster.nodes)))
    gpu_free = np.where(state.gpu_free > 0, state.gpu_free, 0).sum(axis=1)
    candidates = np.flatnonzero(gpu_free > 0)
    if len(candidates):
        seed = int(rng.choices(candidates, weights=gpu_free[candidates])[0])
    else:
        seed = rng.randrange(len(cluster.nodes))
    same = [i for i in range(len(cluster.nodes))
            if _node_type(cluster, i) == _node_type(cluster, seed) and i != seed]
    share_free = (state.node_free / np.maximum(state.node_capacity, 1)).min(axis=1)
    roomy = [int(i) for i in np.flatnonzero(share_free > 0.05) if i != seed]
    chosen = {seed}
    for source in (same, roomy, same, roomy, same, roomy, same, roomy):
        if len(chosen) >= size:
            break
        if source:
            chosen.add(int(rng.choice(source)))
    return sorted(chosen)


def _window_pods(cluster: Cluster, state: State, nodes: list[int],
                 per_kind: int) -> tuple[list[int], dict[tuple, list[int]]]:
    """The pods on `nodes`, and those together with up to `per_kind` unplaced pods of each
    kind that one of the nodes could hold, grouped by kind."""
    chosen = set(nodes)
    inside = [i for i, a in enumerate(state.assignment) if a is not None and a[0] in chosen]
    most = state.node_capacity[nodes].max(axis=0)
    widest = max(cluster.nodes[n].gpus for n in nodes)
    outside: dict[tuple, list[int]] = defaultdict(list)
    for i, a in enumerate(state.assignment):
        pod = cluster.pods[i]
        if a is None and pod.gpus <= widest and (np.array(pod.demand) <= most).all() \
                and len(outside[_kind(pod)]) < per_kind:
            outside[_kind(pod)].append(i)
    pods_of: dict[tuple, list[int]] = defaultdict(list)
    for i in inside + [i for group in outside.values() for i in group]:
        pods_of[_kind(cluster.pods[i])].append(i)
    return inside, pods_of


def _level_scale(cluster: Cluster, pods_of: dict[tuple, list[int]]) -> dict[int, int]:
    """Weight multipliers that make each priority level outweigh all levels below it."""
    scale, total = {}, 1
    for level in sorted({k[3] for k in pods_of}):
        scale[level] = total
        total += sum(cluster.pods[i].weight for k, ids in pods_of.items() if k[3] == level
                     for i in ids) * total
    return scale


@dataclass
class _WindowModel:
    """The CP-SAT model of one window: pods of each kind per GPU (`on_gpu`, single-GPU and the
    GPUs of multi-GPU pods) and per node (`on_node`, multi-GPU and GPU-less pods), and the
    weight placed as terms of the objective."""

    model: cp_model.CpModel
    on_gpu: dict[tuple[tuple, int, int], cp_model.IntVar] = field(default_factory=dict)
    on_node: dict[tuple[tuple, int], cp_model.IntVar] = field(default_factory=dict)
    placed_terms: list = field(default_factory=list)


def _window_model(cluster: Cluster, nodes: list[int], pods_of: dict[tuple, list[int]],
                  scale: dict[int, int]) -> _WindowModel:
    """Counts of each kind of pod on each GPU or node of the window, within GPU and node
    capacity; the weight they place, scaled by priority level."""
    w = _WindowModel(cp_model.CpModel())
    model = w.model
    node_terms: dict[int, list] = defaultdict(list)
    gpu_terms: dict[tuple[int, int], list] = defaultdict(list)
    for kind, ids in pods_of.items():
        demand, gpus, milli, level = kind
        count_vars = []
        for n in nodes:
            node = cluster.nodes[n]
            if gpus > node.gpus or any(d > c for d, c in zip(demand, node.capacity,
                                                            strict=True)):
                continue
            if gpus == 1:
                per_gpu = min(len(ids), GPU_MILLI // milli if milli else len(ids))
                for j in range(node.gpus):
                    var = model.new_int_var(0, per_gpu, "")
                    w.on_gpu[(kind, n, j)] = var
                    gpu_terms[(n, j)].append(milli * var)
                    count_vars.append(var)
                    node_terms[n].append((demand, var))
                continue
            z = model.new_int_var(0, len(ids), "")
            w.on_node[(kind, n)] = z
            count_vars.append(z)
            node_terms[n].append((demand, z))
            slots = []
            for j in range(node.gpus if gpus else 0):
                var = model.new_int_var(0, len(ids), "")
                model.add(var <= z)
                w.on_gpu[(kind, n, j)] = var
                gpu_terms[(n, j)].append(milli * var)
                slots.append(var)
            if slots:
                model.add(sum(slots) == gpus * z)
        if count_vars:
            model.add(sum(count_vars) <= len(ids))
            w.placed_terms.append(cluster.pods[ids[0]].weight * scale[level] * sum(count_vars))
    for terms in gpu_terms.values():
        model.add(sum(terms) <= GPU_MILLI)
    for n, terms in node_terms.items():
        for r, cap in enumerate(cluster.nodes[n].capacity):
            model.add(sum(d[r] * v for d, v in terms if d[r]) <= cap)
    return w


def _place_window(cluster: Cluster, state: State, nodes: list[int],
                  pods_of: dict[tuple, list[int]], w: _WindowModel,
                  solver: cp_model.CpSolver) -> None:
    """Put the window's pods where the solver's counts say, kind by kind."""
    for kind, ids in pods_of.items():
        queue = iter(ids)
        for n in nodes:
            if kind[1] == 1:
                for j in range(cluster.nodes[n].gpus):
                    cell = w.on_gpu.get((kind, n, j))
                    for _ in range(solver.value(cell) if cell is not None else 0):
                        state.place(next(queue), n, (j,))
            elif (kind, n) in w.on_node:
                # k-GPU pods: GPU j was counted once per pod using it, at most once per pod,
                # so pod p takes every count-th slot from p on, all on distinct GPUs.
                count = solver.value(w.on_node[(kind, n)])
                used = [j for j in range(cluster.nodes[n].gpus)
                        for _ in range(solver.value(w.on_gpu[(kind, n, j)]))] if kind[1] else []
                for p in range(count):
                    state.place(next(queue), n, tuple(used[p::count]) if kind[1] else ())


def _repack(cluster: Cluster, state: State, nodes: list[int], *, time_limit_s: float,
            seed: int, workers: int, per_kind: int) -> str:
    """Repack the pods on `nodes` together with up to `per_kind` unplaced pods of each kind.

    Returns `improved` (the state is updated), `proven` (nothing better exists for this window
    and these pods) or `unknown` (time ran out first).
    """
    inside, pods_of = _window_pods(cluster, state, nodes, per_kind)
    scale = _level_scale(cluster, pods_of)
    w = _window_model(cluster, nodes, pods_of, scale)
    current = sum(cluster.pods[i].weight * scale[cluster.pods[i].priority] for i in inside)
    w.model.add(sum(w.placed_terms) >= current + 1)
    w.model.maximize(sum(w.placed_terms))
    solver = new_solver(time_limit_s, seed, workers)
    status = solver.solve(w.model)
    if status == cp_model.INFEASIBLE:
        return "proven"
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return "unknown"
    for i in inside:
        state.remove(i)
    _place_window(cluster, state, nodes, pods_of, w, solver)
    return "improved"


def improve(cluster: Cluster, state: State, *, time_limit_s: float, seed: int, workers: int,
            window: int = 6, step_s: float = 1.0) -> bool:
    """Repack windows until the time limit. True when the state is proven optimal: a window
    holding the whole cluster and every unplaced pod found nothing better."""
    deadline = time.perf_counter() + time_limit_s
    rng = random.Random(seed)
    whole = len(cluster.nodes) <= window
    while time.perf_counter() < deadline - 0.05 and None in state.assignment:
        nodes = _window(cluster, state, rng, window)
        left = deadline - time.perf_counter()
        outcome = _repack(cluster, state, nodes, time_limit_s=min(step_s, max(left, 0.05)),
                          seed=rng.randrange(1 << 30), workers=workers,
                          per_kind=len(cluster.pods) if whole else 8)
        if whole and outcome == "proven":
            return True
    return None not in state.assignment


def place(cluster: Cluster, *, time_limit_s: float = 60.0, seed: int = 0,
          workers: int = 2) -> Allocation:
    """The best placement found within the time limit, with the relaxation's upper bound."""
    start = time.perf_counter()
    time_limit_s *= 0.97  # leave room for checking and reporting the answer
    bound = upper_bound_milli(cluster)
    states = [fit(cluster, rule) for rule in SCORES]
    state = max(states, key=lambda s: objective_key(cluster, s.assignment))
    before = objective_key(cluster, state.assignment)
    left = time_limit_s - (time.perf_counter() - start)
    proven = None not in state.assignment
    if not proven and left > 0.1:
        proven = improve(cluster, state, time_limit_s=left, seed=seed, workers=workers)
    status = "optimal" if proven else (
        "improved" if objective_key(cluster, state.assignment) > before else "greedy")
    broken = violations(cluster, state.assignment)
    if broken:
        raise AssertionError("cluster search produced an invalid placement: "
                             + "; ".join(broken[:5]))
    return Allocation(status, tuple(state.assignment), bound, time.perf_counter() - start)
