"""Exact one-dimensional bin packing: arc flow over a compressed graph.

The model's size grows with the distinct item sizes and the capacity, not with the items.
Nodes are loads; an arc adds one item of a type to a load, and a bin is a path from the empty
load to the sink. Types are taken in decreasing size, and an arc of type t leaves only loads
reached with the larger types and fewer than its count of type t, so each pattern is one path
(Valério de Carvalho's graph, built with bitsets: the loads reachable after each type are one
integer's bits). Then every load is relabelled by how far it could be pushed up while every
path on from it still fits, the capacity minus the longest path to the sink (Brandão and
Pedroso's compression); loads with one label merge, which shrinks the graph several times and
keeps every path a pattern that fits. Variables: the flow on each arc (integer). Constraints:
flow in equals flow out at every load; the flow on arcs of type t is its count; the flow out of
the empty load is the bins asked for. Its LP relaxation is the Gilmore-Gomory bound.

The graph's arcs are counted before it is built (`count_arcs`, bitsets only), so a caller can
refuse a graph that would not finish in its time. CP-SAT then asks for exactly k bins, bounded
by the clock in use (deterministic time in the deterministic mode), and the flow is split back
into bins, dropping items a bin covers twice. Given the best packing so far, it asks instead
for the fewest bins between the bound and that packing's count, with the packing as CP-SAT's
hint (`improve`): each of its bins is a path of the graph (its items in the graph's type order,
each load mapped to its node), so the hint is a solution, CP-SAT starts from it, and its
objective bound proves bins as it goes. HiGHS (its MIP, from the best packing as a start)
was tried on this model and left out: on zero-slack instances of capacity 1,000 its root LP
alone, by dual simplex, took longer than the whole budget (7 s for 25,000 arcs), and on
Scholl's third set its presolve took half a minute for the 276,000 compressed arcs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from solvers.clock import ARC, BIT_WORD, MODEL_TERM, charge, cost, now, solve_overhead
from solvers.sat import new_solver, run

BUILD_PASSES = 4  # times each arc is charged while the graph is built and compressed
LOAD_UNPACKED = 5e-9  # deterministic seconds per load of a layer unpacked from its bits


@dataclass(frozen=True)
class Graph:
    """A compressed arc-flow graph. Node 0 is the empty load and the last node the sink;
    arc i goes from `tails[i]` to `heads[i]` adding an item of `types[i]` (-1: the bin
    closes, to the sink)."""

    nodes: int
    tails: np.ndarray
    heads: np.ndarray
    types: np.ndarray
    node_of_load: np.ndarray  # the node each load (0 to the capacity) was merged into


def _layers(capacity: int, sizes: list[int], demand: list[int]) -> list[int]:
    """For each type, the loads an arc of that type may leave, as bits of an integer: loads
    reached with the larger types and fewer than its count of this type, with room for it."""
    words = capacity // 64 + 1
    full = (1 << (capacity + 1)) - 1
    reached = 1
    tails = []
    for size, count in zip(sizes, demand, strict=True):
        room = (1 << (capacity - size + 1)) - 1
        start = reached & room
        copies = min(count, capacity // size)
        layer, step = start, start
        for _ in range(copies - 1):
            step = (step << size) & room
            if not step:
                break
            layer |= step
        charge(BIT_WORD * words * (copies + 2))
        tails.append(layer)
        reached = (reached | (layer << size)) & full
    return tails


def count_arcs(capacity: int, sizes: list[int], demand: list[int]) -> int:
    """The arcs of the uncompressed graph (items only), without building it: what building
    and compressing it costs. `sizes` in decreasing order."""
    return sum(layer.bit_count() for layer in _layers(capacity, sizes, demand))


def _bits(value: int, length: int) -> np.ndarray:
    raw = np.frombuffer(value.to_bytes(length // 8 + 1, "little"), dtype=np.uint8)
    return np.flatnonzero(np.unpackbits(raw, bitorder="little"))


def build(capacity: int, sizes: list[int], demand: list[int]) -> Graph:
    """The compressed graph for items of `sizes` (decreasing) and their counts."""
    layers = _layers(capacity, sizes, demand)
    tails = [_bits(layer, capacity + 1) for layer in layers]
    # Each layer's bits unpacked into a byte per load and scanned: a few numpy passes over the
    # capacity per type, which on large capacities outweighs the arcs.
    charge(LOAD_UNPACKED * len(layers) * (capacity + 1))
    kinds = np.concatenate([np.full(len(t), i) for i, t in enumerate(tails)])
    tail = np.concatenate(tails).astype(np.int64)
    head = tail + np.array(sizes, dtype=np.int64)[kinds]
    charge(ARC * len(tail))
    # label(load) = min(capacity, min over its arcs of label(head) - size), loads in
    # decreasing order (every arc goes up); a load no arc leaves keeps the capacity.
    label = np.full(capacity + 1, capacity, dtype=np.int64)
    order = np.lexsort((head, -tail))
    tail, head, kinds = tail[order], head[order], kinds[order]
    starts = np.flatnonzero(np.r_[True, tail[1:] != tail[:-1]])
    ends = np.r_[starts[1:], len(tail)]
    weight = np.array(sizes, dtype=np.int64)[kinds]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        label[tail[s]] = min(capacity, int((label[head[s:e]] - weight[s:e]).min()))
    charge(ARC * (len(tail) + 3 * len(starts)))  # a node costs a few arcs' worth
    # Nodes: the empty load first (never merged: the bins are the flow out of it), then the
    # labels of every other load in increasing order, then the sink.
    loads = np.unique(np.r_[tail, head])
    loads = loads[loads > 0]
    distinct = np.unique(label[loads])
    node_of_label = {int(v): i + 1 for i, v in enumerate(distinct.tolist())}
    lookup = np.zeros(capacity + 1, dtype=np.int64)
    lookup[loads] = [node_of_label[int(v)] for v in label[loads].tolist()]
    arcs = np.unique(np.stack([lookup[tail], lookup[head], kinds]), axis=1)
    sink = len(distinct) + 1
    closing = np.arange(1, sink)
    return Graph(sink + 1,
                 np.r_[arcs[0], closing], np.r_[arcs[1], np.full(len(closing), sink)],
                 np.r_[arcs[2], np.full(len(closing), -1)], lookup)


def flow_of(graph: Graph, sizes: list[int], bins: list[list[int]]) -> np.ndarray:
    """A packing (bins of type indexes, `sizes` in the graph's decreasing order) as a flow on
    the graph: each bin's items in type order are a path of the uncompressed graph, whose
    loads map to nodes of the compressed one, closed by the arc to the sink."""
    index = {(int(a), int(b), int(t)): i for i, (a, b, t) in enumerate(zip(
        graph.tails.tolist(), graph.heads.tolist(), graph.types.tolist(), strict=True))}
    flow = np.zeros(len(graph.tails), dtype=np.int64)
    sink = graph.nodes - 1
    for contents in bins:
        load, node = 0, 0
        for t in sorted(contents):
            load += sizes[t]
            head = int(graph.node_of_load[load])
            flow[index[(node, head, t)]] += 1
            node = head
        if node:
            flow[index[(node, sink, -1)]] += 1
    charge(2 * ARC * len(index) + MODEL_TERM * sum(len(b) for b in bins))
    return flow


def bins_of(graph: Graph, flow: np.ndarray, demand: list[int]) -> list[list[int]]:
    """The flow split into paths from the empty load to the sink, one bin each (its item
    types); an item beyond its type's count is left out, and so is a bin left empty."""
    out: dict[int, list[int]] = {}
    left = {}
    for i in np.flatnonzero(flow > 0).tolist():
        out.setdefault(int(graph.tails[i]), []).append(i)
        left[i] = int(flow[i])
    need = list(demand)
    sink = graph.nodes - 1
    bins = []
    while out.get(0):
        node, contents = 0, []
        while node != sink:
            arcs = out[node]
            arc = arcs[-1]
            left[arc] -= 1
            if not left[arc]:
                arcs.pop()
            t = int(graph.types[arc])
            if t >= 0 and need[t]:
                need[t] -= 1
                contents.append(t)
            node = int(graph.heads[arc])
        if contents:
            bins.append(contents)
    return bins


def _graph(capacity: int, sizes: list[int], demand: list[int], time_limit_s: float,
           max_arcs: int) -> tuple[list[int], Graph, list[int]] | None:
    """The types in decreasing size order, their compressed graph and the demand in that
    order; None, before any building, when the uncompressed graph would have more than
    `max_arcs` arcs or take more than half the time to build, and when the compressed graph
    holds more than a tenth or writing its model and loading it into CP-SAT would take more
    than half the time left."""
    deadline = now() + time_limit_s
    order = sorted(range(len(sizes)), key=lambda t: (-sizes[t], t))
    ordered = [sizes[t] for t in order]
    wanted = [demand[t] for t in order]
    arcs = count_arcs(capacity, ordered, wanted)
    if arcs > max_arcs or cost(ARC * arcs * BUILD_PASSES) > time_limit_s / 2:
        return None
    graph = build(capacity, ordered, wanted)
    loading = cost(MODEL_TERM * 2 * len(graph.tails)) + solve_overhead(len(graph.tails)
                                                                      + graph.nodes)
    if len(graph.tails) > max(max_arcs // 10, 1) or now() + 2 * loading >= deadline:
        return None
    return order, graph, wanted


def flow_model(graph: Graph, demand: list[int], fewest: int, most: int
               ) -> tuple[cp_model.CpModel, list[cp_model.IntVar], cp_model.LinearExpr]:
    """The arc-flow model for `demand` (in the graph's type order) in `fewest` to `most`
    bins: the model, the flow on each arc, and the bins (the flow out of the empty load)."""
    model = cp_model.CpModel()
    flow = [model.new_int_var(0, demand[t] if t >= 0 else most, "")
            for t in graph.types.tolist()]
    into: list[list] = [[] for _ in range(graph.nodes)]
    out: list[list] = [[] for _ in range(graph.nodes)]
    of_type: list[list] = [[] for _ in demand]
    for var, tail, head, t in zip(flow, graph.tails.tolist(), graph.heads.tolist(),
                                  graph.types.tolist(), strict=True):
        out[tail].append(var)
        into[head].append(var)
        if t >= 0:
            of_type[t].append(var)
    charge(MODEL_TERM * 2 * len(flow))
    for node in range(1, graph.nodes - 1):
        model.add(sum(into[node]) == sum(out[node]))  # conservation: a bin's load goes on
    for need, terms in zip(demand, of_type, strict=True):
        model.add(sum(terms) == need)  # demand: every item of type t, exactly once
    opened = sum(out[0])
    model.add_linear_constraint(opened, fewest, most)  # the bins asked for
    return model, flow, opened


def _bins(graph: Graph, solver: cp_model.CpSolver, flow: list, order: list[int],
          demand: list[int]) -> list[list[int]]:
    values = np.array([solver.value(v) for v in flow], dtype=np.int64)
    return [[order[t] for t in contents] for contents in bins_of(graph, values, demand)]


def pack(capacity: int, sizes: list[int], demand: list[int], bins: int, *,
         time_limit_s: float, seed: int, workers: int,
         max_arcs: int) -> tuple[str, list[list[int]]] | None:
    """Is there a packing into exactly `bins` bins? ("found" with the bins as lists of type
    indexes, "impossible", or "unknown" at the time limit.) None, before any building, when
    the uncompressed graph would have more than `max_arcs` arcs or would take more than half
    the time to build; the compressed graph may hold at most a tenth of that."""
    if any(s > capacity for s in sizes):
        return "impossible", []
    deadline = now() + time_limit_s
    built = _graph(capacity, sizes, demand, time_limit_s, max_arcs)
    if built is None:
        return None
    order, graph, wanted = built
    model, flow, _ = flow_model(graph, wanted, bins, bins)
    solver = new_solver(max(deadline - now(), 0.05), seed, workers)
    status = run(solver, model)
    if status == cp_model.INFEASIBLE:
        return "impossible", []
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return "unknown", []
    return "found", _bins(graph, solver, flow, order, wanted)


def improve(capacity: int, sizes: list[int], demand: list[int], fewest: int,
            incumbent: list[list[int]], *, time_limit_s: float, seed: int, workers: int,
            max_arcs: int) -> tuple[list[list[int]], int] | None:
    """The fewest bins from `fewest` up, CP-SAT started from `incumbent` (a packing, bins of
    type indexes): the best packing found (the incumbent when none has fewer bins) and the
    bins proven needed. None when the graph is refused, as in `pack`."""
    deadline = now() + time_limit_s
    built = _graph(capacity, sizes, demand, time_limit_s, max_arcs)
    if built is None:
        return None
    order, graph, wanted = built
    position = {t: i for i, t in enumerate(order)}
    hint = flow_of(graph, [sizes[t] for t in order],
                   [[position[t] for t in contents] for contents in incumbent])
    model, flow, opened = flow_model(graph, wanted, fewest, len(incumbent))
    model.minimize(opened)
    for var, value in zip(flow, hint.tolist(), strict=True):
        model.add_hint(var, value)
    solver = new_solver(max(deadline - now(), 0.05), seed, workers)
    # The hint is a whole solution, taken as the first one at once. Without this, one worker
    # first searches again along the hint and, on graphs of 10,000 arcs or more, spends most
    # of a few seconds there before its own search starts.
    solver.parameters.hint_conflict_limit = 0
    status = run(solver, model)
    if status == cp_model.INFEASIBLE:  # only if the incumbent was not a packing
        raise ValueError("the incumbent is not a packing of these items")
    proven = max(fewest, math.ceil(solver.best_objective_bound - 1e-6)) \
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else fewest
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE) or \
            solver.objective_value >= len(incumbent):
        return [list(b) for b in incumbent], min(proven, len(incumbent))
    return _bins(graph, solver, flow, order, wanted), proven
