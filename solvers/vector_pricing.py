"""Exact pricing for column generation in several dimensions: branch and bound.

Column generation's pricing problem in several dimensions is a multidimensional knapsack:
the most valuable pattern at the LP's duals. Quick pricing (`patterns._price_greedily`) finds
improving patterns cheaply but proves nothing, and CP-SAT proves optimality slowly on these
knapsacks of real-valued profits (seconds per round on Panigrahy's class 9 in five
dimensions), so column generation stopped with a weak Farley bound (88 bins where its LP is at
122). When a bin holds few items, a depth-first branch and bound proves the optimum in far
less: items in decreasing order of value per unit of size, each node bounded by the
fractional knapsack of the surrogate relaxation (the dimensions' constraints added up, each
over its capacity: Gavish and Pirkul, "Efficient algorithms for solving multiconstraint
zero-one knapsack problems to optimality", Mathematical Programming, 1985), whose greedy
solution over the items that follow is read off prefix sums (Horowitz and Sahni's depth-first
search with Dantzig's bound, 1974). A search that finishes gives an upper bound on every
pattern's value, which is what Farley's bound (`solvers.pricing`) divides the LP by; it
collects the most valuable improving patterns on the way, several columns a round.

Its work is counted per node on the deterministic clock, and it stops at its deadline with
the patterns found so far and no bound.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass

import numpy as np

from solvers.clock import LP_ENTRY, LP_ROUND, PATTERN_STEP, PRICE_ENTRY, charge, now

Load = tuple[int, ...]
CHECK_EVERY = 256  # nodes between two readings of the clock
# What a node's numpy work costs besides its entries (several calls of a few microseconds).
VISIT = 1e-5
MAX_DEPTH = 400  # types in one pattern at most for the search (its recursion), else no search


@dataclass(frozen=True)
class Priced:
    patterns: list[tuple[int, ...]]  # improving patterns (worth more than 1), best first
    bound: float | None  # no pattern is worth more (None: the search was cut short)


class _OutOfTime(Exception):
    pass


@dataclass
class _Types:
    """The types worth packing, in decreasing order of value per surrogate size, as numpy
    rows."""

    index: np.ndarray  # each one's index among all types
    size: np.ndarray  # types x dimensions
    value: np.ndarray
    most: np.ndarray  # copies that fit in an empty bin, within demand
    weight: np.ndarray  # surrogate size: its sizes times the surrogate multipliers
    scale: np.ndarray  # the surrogate multipliers


def _multipliers(capacity: Load, rows: list[tuple[Load, float, int]]) -> list[float]:
    """Surrogate multipliers, one per dimension over its capacity: the duals of the
    knapsack's LP relaxation (plus a little, so every type weighs something), under which the
    surrogate's fractional bound equals the LP relaxation's at the root."""
    from ortools.linear_solver import pywraplp

    lp = pywraplp.Solver.CreateSolver("GLOP")
    take = [lp.NumVar(0, fit, "") for _, _, fit in rows]
    limits = [lp.Constraint(-lp.infinity(), c) for c in capacity]
    for (size, _, _), x in zip(rows, take, strict=True):
        for d, s in enumerate(size):
            if s:
                limits[d].SetCoefficient(x, s)
    objective = lp.Objective()
    for (_, value, _), x in zip(rows, take, strict=True):
        objective.SetCoefficient(x, value)
    objective.SetMaximization()
    charge(LP_ROUND + LP_ENTRY * len(rows) * (1 + len(capacity)))
    duals = [0.0] * len(capacity)
    if rows and lp.Solve() == pywraplp.Solver.OPTIMAL:
        duals = [max(row.dual_value(), 0.0) * c for row, c in zip(limits, capacity, strict=True)]
    least = 1e-3 * max(max(duals), 1e-9)
    return [(u + least) / c if c else 0.0 for u, c in zip(duals, capacity, strict=True)]


def _types(capacity: Load, sizes: list[Load], values: list[float],
           demand: list[int]) -> tuple[_Types, dict[int, int], float]:
    """The types to search over; those of no size that are worth something, which every
    pattern holds all of; and their value."""
    rows, free, free_value = [], {}, 0.0
    for t, (size, value, need) in enumerate(zip(sizes, values, demand, strict=True)):
        if value <= 0 or need <= 0 or any(s > c for s, c in zip(size, capacity, strict=True)):
            continue
        if not any(s for s, c in zip(size, capacity, strict=True) if c):
            free[t] = need
            free_value += value * need
            continue
        fit = min([need] + [c // s for s, c in zip(size, capacity, strict=True) if s])
        rows.append((t, fit))
    scale = _multipliers(capacity, [(sizes[t], values[t], fit) for t, fit in rows])
    weight = {t: sum(m * s for m, s in zip(scale, sizes[t], strict=True)) for t, _ in rows}
    rows.sort(key=lambda r: -values[r[0]] / weight[r[0]])
    order = [t for t, _ in rows]
    types = _Types(np.array(order, dtype=np.int64),
                   np.array([sizes[t] for t in order], dtype=np.int64).reshape(
                       len(order), len(capacity)),
                   np.array([values[t] for t in order], dtype=float),
                   np.array([fit for _, fit in rows], dtype=np.int64),
                   np.array([weight[t] for t in order], dtype=float), np.array(scale))
    return types, free, free_value


def _dantzig(weights: list[float], values: list[float], density: list[float], start: int,
             room: float) -> float:
    """The most the types from `start` on can add within surrogate room `room`, from the
    prefix sums of their surrogate weights and values: whole types in order while they fit,
    then a fraction of the next (Dantzig's bound)."""
    target = weights[start] + max(room, 0.0)
    k = max(start, bisect.bisect_right(weights, target, lo=start) - 1)
    gain = values[k] - values[start]
    if k < len(density):
        gain += (target - weights[k]) * density[k]
    return gain


class _Search:
    """The depth-first search: the best value seen, and the `most` most valuable improving
    patterns, as a heap."""

    def __init__(self, types: _Types, free: dict[int, int], all_types: int, most: int,
                 deadline: float):
        self.types, self.free, self.all_types = types, free, all_types
        self.most, self.deadline = most, deadline
        self.best = 0.0
        self.found: list[tuple[float, int, tuple[int, ...]]] = []
        self.chosen: dict[int, int] = {}  # copies of each type (in search order) held
        self.nodes = 0

    def threshold(self) -> float:
        """What a subtree must be able to beat to be searched: an improving pattern's worth,
        and, once `most` are found, the least of them."""
        low = 1.0 + 1e-9
        return max(low, self.found[0][0]) if len(self.found) >= self.most else low

    def record(self, value: float) -> None:
        self.best = max(self.best, value)
        if value <= self.threshold():
            return
        dense = [0] * self.all_types
        for t, n in self.free.items():
            dense[t] = n
        for j, n in self.chosen.items():
            dense[int(self.types.index[j])] = n
        entry = (value, self.nodes, tuple(dense))
        if len(self.found) < self.most:
            heapq.heappush(self.found, entry)
        else:
            heapq.heapreplace(self.found, entry)

    def visit(self, candidates: np.ndarray, room: np.ndarray, value: float,
              depth: int) -> None:
        """Every pattern that adds some of `candidates` (types, in search order) to what is
        chosen, with `room` left in each dimension: first the candidates that still fit (the
        children search only among these), and the prefix sums of the surrogate's greedy
        solution over them, from which Dantzig's bound for every suffix is a search away."""
        types = self.types
        if depth > MAX_DEPTH:
            raise _OutOfTime
        charge(VISIT + PRICE_ENTRY * len(candidates) * (1 + types.size.shape[1]))
        size = types.size[candidates]
        room_left = np.where(size > 0, room // np.maximum(size, 1), types.most[candidates, None])
        copies = np.minimum(room_left.min(axis=1), types.most[candidates])
        keep = copies > 0
        fitting, copies = candidates[keep], copies[keep]
        if not len(fitting):
            return
        weight, gain = types.weight[fitting], types.value[fitting]
        weights = np.concatenate(([0.0], np.cumsum(weight * copies))).tolist()
        values = np.concatenate(([0.0], np.cumsum(gain * copies))).tolist()
        density = (gain / weight).tolist()
        surrogate = max(float(types.scale @ room), 0.0)
        for i, j in enumerate(fitting.tolist()):
            self._tick()
            if value + _dantzig(weights, values, density, i, surrogate) <= self.threshold():
                return  # the types are in decreasing value per size: none after j can either
            for n in range(int(copies[i]), 0, -1):
                self.chosen[j] = n
                gained = value + n * float(gain[i])
                self.record(gained)
                self.visit(fitting[i + 1:], room - n * types.size[j], gained, depth + 1)
            self.chosen.pop(j, None)

    def _tick(self) -> None:
        self.nodes += 1
        if self.nodes % CHECK_EVERY == 0:
            charge(PATTERN_STEP * CHECK_EVERY)
            if now() >= self.deadline:
                raise _OutOfTime

    def patterns(self) -> list[tuple[int, ...]]:
        return [p for _, _, p in sorted(self.found, reverse=True)]


def price(capacity: Load, sizes: list[Load], values: list[float], demand: list[int], *,
          most: int, deadline: float) -> Priced:
    """The `most` most valuable patterns worth more than 1 at `values` (a pattern holds at
    most `demand` of each type and fits `capacity` in every dimension), and, if the search
    ends by `deadline`, an upper bound on any pattern's value (at least 1)."""
    if now() >= deadline:
        return Priced([], None)
    types, free, free_value = _types(capacity, sizes, values, demand)
    search = _Search(types, free, len(sizes), most, deadline)
    try:
        search.record(free_value)
        search.visit(np.arange(len(types.index)), np.array(capacity, dtype=np.int64),
                     free_value, 0)
    except _OutOfTime:
        return Priced(search.patterns(), None)
    finally:
        charge(PATTERN_STEP * (search.nodes % CHECK_EVERY))
    # Pruned subtrees could not beat the threshold, which never exceeds max(best, 1); the
    # margin covers the rounding of the surrogate sums.
    return Priced(search.patterns(), max(search.best, 1.0) * (1 + 1e-9) + 1e-9)
