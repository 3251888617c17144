"""Pattern formulations for plain vector bin packing: exact, and far stronger than assignment.

When a component is one pool of identical GPUs with no conflicts, spread or whole-GPU replicas,
placement is plain vector bin packing, and what a GPU holds is a pattern: a multiset of item
types that fits. The engine then asks, for a number of GPUs k from the lower bound up, whether
k patterns cover the demand exactly, with one of two models:

- Explicit patterns, when few exist. With k GPUs the total waste per dimension is known
  (k * capacity - demand), so no GPU may waste more than that; when that leaves few patterns
  (tight instances such as Falkenauer's triplets, where waste must be zero) they are listed.
  Variables: y[p] GPUs using pattern p (int). Constraints: sum_p y[p] * a[t,p] = n_t for every
  type t; sum_p y[p] = k.
- Arc flow otherwise. Nodes are reachable load vectors, arcs add one item of a type in
  decreasing-size order, and a GPU is a path from the empty load to the sink. Variables: flow
  f[a] per arc (int). Constraints: conservation at every load; flow on arcs of type t = n_t;
  flow out of the empty load = k. Its LP relaxation is the Gilmore-Gomory bound.

Either way a found packing with k GPUs is optimal when every smaller k was proven impossible.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass

from ortools.sat.python import cp_model

Load = tuple[int, ...]
SINK: Load = (-1,)


@dataclass(frozen=True)
class Outcome:
    """The result of asking for a packing into exactly `bins` GPUs."""

    status: str  # "found", "impossible" or "unknown"
    bins: list[list[int]]


def list_patterns(capacity: Load, sizes: list[Load], demand: list[int], slack: Load,
                  limit: int) -> list[tuple[int, ...]] | None:
    """Every multiset of item types (as counts) that fits and wastes at most `slack` per
    dimension; None when there are more than `limit`. `sizes` must be in decreasing order.

    Depth-first, pruned by what the remaining (smaller) types can still add: at most
    `room // smallest` more items, none larger than the largest type still allowed.
    """
    dims = range(len(capacity))
    floor = [c - s for c, s in zip(capacity, slack, strict=True)]
    smallest = [min((s[d] for s in sizes if s[d]), default=0) for d in dims]
    largest_from = [[0] * len(capacity) for _ in range(len(sizes) + 1)]
    for t in range(len(sizes) - 1, -1, -1):
        largest_from[t] = [max(largest_from[t + 1][d], sizes[t][d]) for d in dims]
    found: list[tuple[int, ...]] = []
    counts = [0] * len(sizes)

    def reachable(start: int, load: list[int]) -> bool:
        more = min((capacity[d] - load[d]) // smallest[d] for d in dims if smallest[d])
        return all(load[d] + min(capacity[d] - load[d], more * largest_from[start][d])
                   >= floor[d] for d in dims)

    def extend(start: int, load: list[int]) -> bool:
        if any(counts) and all(a >= f for a, f in zip(load, floor, strict=True)):
            found.append(tuple(counts))
            if len(found) > limit:
                return False
        for t in range(start, len(sizes)):
            if not reachable(t, load):
                break  # later types are no larger, so they cannot reach the floor either
            if counts[t] >= demand[t]:
                continue
            head = [a + b for a, b in zip(load, sizes[t], strict=True)]
            if any(h > c for h, c in zip(head, capacity, strict=True)):
                continue
            counts[t] += 1
            ok = extend(t, head)
            counts[t] -= 1
            if not ok:
                return False
        return True

    return found if extend(0, [0] * len(capacity)) else None


def _solver(time_limit_s: float, seed: int, workers: int) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(time_limit_s, 0.05)
    solver.parameters.random_seed = seed
    solver.parameters.num_workers = workers
    return solver


def _status(code) -> str:
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return "found"
    return "impossible" if code == cp_model.INFEASIBLE else "unknown"


def pack_with_patterns(patterns: list[tuple[int, ...]], demand: list[int], bins: int, *,
                       time_limit_s: float, seed: int, workers: int) -> Outcome:
    cp = cp_model.CpModel()
    use = [cp.new_int_var(0, bins, f"y[{i}]") for i in range(len(patterns))]
    for t, need in enumerate(demand):
        terms = [p[t] * y for p, y in zip(patterns, use, strict=True) if p[t]]
        cp.add(sum(terms) == need)  # demand: every item of type t, exactly once
    cp.add(sum(use) == bins)  # exactly this many GPUs
    solver = _solver(time_limit_s, seed, workers)
    status = _status(solver.solve(cp))
    if status != "found":
        return Outcome(status, [])
    result = []
    for pattern, y in zip(patterns, use, strict=True):
        contents = [t for t, n in enumerate(pattern) for _ in range(n)]
        result += [list(contents) for _ in range(solver.value(y))]
    return Outcome(status, result)


def build_graph(capacity: Load, sizes: list[Load],
                max_arcs: int) -> list[tuple[Load, Load, int]] | None:
    """Arcs that add one item of type t only from loads reachable with types 0..t, so every
    pattern appears once, in type order; closing arcs (type -1) lead to the sink. None when
    the graph would exceed `max_arcs`."""
    zero = tuple(0 for _ in capacity)
    reachable = {zero}
    arcs: list[tuple[Load, Load, int]] = []
    for t, size in enumerate(sizes):
        # Ascending loads, so chains of several copies of type t are found too.
        frontier = sorted(reachable)
        heapq.heapify(frontier)
        while frontier:
            load = heapq.heappop(frontier)
            head = tuple(a + b for a, b in zip(load, size, strict=True))
            if all(h <= c for h, c in zip(head, capacity, strict=True)):
                arcs.append((load, head, t))
                if head not in reachable:
                    reachable.add(head)
                    heapq.heappush(frontier, head)
            if len(arcs) > max_arcs:
                return None
    return arcs + [(load, SINK, -1) for load in reachable if load != zero]


def pack_with_arc_flow(arcs: list[tuple[Load, Load, int]], capacity: Load, demand: list[int],
                       bins: int, *, time_limit_s: float, seed: int, workers: int) -> Outcome:
    cp = cp_model.CpModel()
    flow = [cp.new_int_var(0, demand[t] if t >= 0 else bins, f"f[{i}]")
            for i, (_, _, t) in enumerate(arcs)]
    zero = tuple(0 for _ in capacity)
    into, out, of_type = defaultdict(list), defaultdict(list), defaultdict(list)
    for var, (tail, head, t) in zip(flow, arcs, strict=True):
        out[tail].append(var)
        into[head].append(var)
        if t >= 0:
            of_type[t].append(var)
    for load in set(into) | set(out):
        if load not in (zero, SINK):
            cp.add(sum(into[load]) == sum(out[load]))  # conservation: a GPU's load goes on
    for t, need in enumerate(demand):
        cp.add(sum(of_type[t]) == need)  # demand: every item of type t, exactly once
    cp.add(sum(out[zero]) == bins)  # exactly this many GPUs
    solver = _solver(time_limit_s, seed, workers)
    status = _status(solver.solve(cp))
    if status != "found":
        return Outcome(status, [])
    return Outcome(status, _paths(arcs, [solver.value(v) for v in flow], zero))


def _paths(arcs, values: list[int], zero: Load) -> list[list[int]]:
    """Split a flow into paths from the empty load to the sink, one per GPU."""
    out = defaultdict(list)
    for i, (tail, _, _) in enumerate(arcs):
        out[tail].append(i)
    left = list(values)
    bins = []
    while (arc := next((i for i in out[zero] if left[i] > 0), None)) is not None:
        contents = []
        while True:
            left[arc] -= 1
            _, head, t = arcs[arc]
            if t >= 0:
                contents.append(t)
            if head == SINK:
                break
            arc = next(i for i in out[head] if left[i] > 0)
        bins.append(contents)
    return bins


def pack_exactly(capacity: Load, sizes: list[Load], demand: list[int], bins: int, *,
                 time_limit_s: float, seed: int, workers: int, max_patterns: int = 10_000,
                 max_arcs: int = 60_000) -> Outcome:
    """Is there a packing into exactly `bins` GPUs? Chooses the model as the module says."""
    totals = [sum(s[d] * n for s, n in zip(sizes, demand, strict=True))
              for d in range(len(capacity))]
    slack = tuple(bins * c - t for c, t in zip(capacity, totals, strict=True))
    if any(s < 0 for s in slack):
        return Outcome("impossible", [])
    patterns = list_patterns(capacity, sizes, demand, slack, max_patterns)
    if patterns is not None:
        return pack_with_patterns(patterns, demand, bins, time_limit_s=time_limit_s, seed=seed,
                                  workers=workers)
    arcs = build_graph(capacity, sizes, max_arcs)
    if arcs is None:
        return Outcome("unknown", [])
    return pack_with_arc_flow(arcs, capacity, demand, bins, time_limit_s=time_limit_s,
                              seed=seed, workers=workers)
