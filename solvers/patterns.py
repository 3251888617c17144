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

Before either, column generation (Gilmore-Gomory) solves the LP relaxation of the pattern model
with HiGHS's simplex (`solvers.lp`), pricing new patterns by a knapsack over the LP's duals: in
one dimension, while its table stays small, by dynamic programming, several columns a round at
smoothed duals (`solvers.pricing`); otherwise first greedily, growing a pattern from every
valuable type and every valuable pair of types at once, and exactly only when that finds nothing
(in one dimension by the list of undominated patterns, `solvers.pareto`, through the same
pricing; in several by branch and bound, `solvers.vector_pricing`; by CP-SAT where either runs
out). Its bound (or Farley's bound when time runs out first) lifts the lower bound; in one
dimension it stops as soon as that bound is proven. Its solution, rounded, is a packing within a
GPU or two of the optimum on large instances, and its columns give a restricted integer model
that finds most optimal packings at once when the full pattern list is too long to write out.

Either way a found packing with k GPUs is optimal when every smaller k was proven impossible.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from solvers import arcflow, vector_pricing
from solvers.clock import (
    COLUMN_ENTRY,
    ITEM_FIT,
    LP_COLD_PIVOT,
    LP_ENTRY,
    LP_PIVOT,
    LP_ROUND,
    MODEL_TERM,
    PATTERN_STEP,
    PRICE_ENTRY,
    charge,
    now,
    solve_overhead,
)
from solvers.lp import CoverLP
from solvers.pricing import Exchange, PairExchanges, Pricer, add_exchanges, without_exchanges
from solvers.sat import new_solver, run

Load = tuple[int, ...]
SINK: Load = (-1,)
NEW_COLUMNS = 100  # most improving quick patterns added per round of column generation
QUICK_SEEDS = 100  # quick pricing's seeds to start from
# In several dimensions, where a round's pricing costs more than the LP, four times as many.
NEW_VECTOR_COLUMNS = 400
# Fewer improving quick patterns than this in a round (several dimensions): quick pricing is
# tailing off, and the round prices exactly as well.
FEW_QUICK_COLUMNS = 50
# One-dimensional pricing by dynamic programming only while its table (capacity x item types)
# stays this small; beyond it (large capacities) it prices as in several dimensions.
MAX_TABLE_CELLS = 100_000_000


@dataclass(frozen=True)
class Outcome:
    """The result of asking for a packing into exactly `bins` GPUs."""

    status: str  # "found", "impossible" or "unknown"
    bins: list[list[int]]
    lower_bound: int = 0  # GPUs proven needed, where the method proves more than `bins`


def list_patterns(capacity: Load, sizes: list[Load], demand: list[int], slack: Load,
                  limit: int, deadline: float = math.inf) -> list[tuple[int, ...]] | None:
    """Every multiset of item types (as counts) that fits and wastes at most `slack` per
    dimension; None when there are more than `limit`, or at `deadline`. `sizes` must be in
    decreasing order.

    Depth-first, pruned by what the remaining (smaller) types can still add in each
    dimension: at most `room // smallest` more items that take room there (and no more items
    in all than fit in a dimension every type takes room in), none larger than the largest
    type still allowed. An item of size 0 in a dimension does not count against its room:
    a count over all items from the tightest dimension would cut off the patterns that
    fill another dimension with such items, and a bin count proven impossible without them
    could be the optimum.
    """
    dims = range(len(capacity))
    floor = [c - s for c, s in zip(capacity, slack, strict=True)]
    smallest = [min((s[d] for s in sizes if s[d]), default=0) for d in dims]
    taking = [d for d in dims if all(s[d] for s in sizes)]  # every type takes room there
    largest_from = [[0] * len(capacity) for _ in range(len(sizes) + 1)]
    for t in range(len(sizes) - 1, -1, -1):
        largest_from[t] = [max(largest_from[t + 1][d], sizes[t][d]) for d in dims]
    found: list[tuple[int, ...]] = []
    counts = [0] * len(sizes)

    if len(capacity) == 1 and smallest[0]:
        # The test below on plain numbers: it runs once per type tried, most of a listing's
        # work in one dimension (a third of a bench row's CPU on GI's csAA500_1).
        room_of, low, least = capacity[0], floor[0], smallest[0]
        largest = [sizes_from[0] for sizes_from in largest_from]
        items = math.inf if taking else sum(demand)

        def reachable(start: int, load: list[int]) -> bool:
            room = room_of - load[0]
            return load[0] + min(room, min(items, room // least) * largest[start]) >= low
    else:
        def reachable(start: int, load: list[int]) -> bool:
            rooms = [c - a for c, a in zip(capacity, load, strict=True)]
            fewest = min((rooms[d] // smallest[d] for d in taking), default=sum(demand))
            return all(load[d] + min(rooms[d], min(fewest, rooms[d] // smallest[d])
                                     * largest_from[start][d]) >= floor[d]
                       if smallest[d] else load[d] >= floor[d] for d in dims)

    steps = [0]

    def extend(start: int, load: list[int]) -> bool:
        if any(counts) and all(a >= f for a, f in zip(load, floor, strict=True)):
            found.append(tuple(counts))
            if len(found) > limit:
                return False
        for t in range(start, len(sizes)):
            # A step is one type tried: with thousands of types one call makes thousands.
            steps[0] += 1
            if steps[0] % 4096 == 0:
                charge(4096 * PATTERN_STEP)
                if now() > deadline:
                    return False
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
    return new_solver(max(time_limit_s, 0.05), seed, workers)


def _status(code) -> str:
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return "found"
    return "impossible" if code == cp_model.INFEASIBLE else "unknown"


def pack_with_patterns(patterns: list[tuple[int, ...]], demand: list[int], bins: int, *,
                       time_limit_s: float, seed: int, workers: int,
                       cover: bool = False) -> Outcome:
    """Exactly `bins` patterns covering the demand: exactly when `patterns` lists them all,
    at least (items packed twice are dropped) for a restricted list from column generation.
    "unknown" at once when loading the model into CP-SAT would take half the time or more (a
    search of what is left would find nothing, and the loading would run past the limit)."""
    if solve_overhead(len(patterns) + len(demand) + 1) >= time_limit_s / 2:
        return Outcome("unknown", [])
    # Each pattern by its non-zero counts only (patterns x types is large).
    counts = [[(t, p[t]) for t in _nonzero(p)] for p in patterns]
    charge(MODEL_TERM * 2 * (sum(len(c) for c in counts) + len(counts)))  # + values read
    return pack_with_counts(counts, demand, bins, _solver(time_limit_s, seed, workers),
                            cover=cover)


def pack_with_counts(patterns: Sequence[Sequence[tuple[int, int]]], demand: list[int],
                     bins: int, solver: cp_model.CpSolver, *, cover: bool = False,
                     at_most: bool = False, uses: Sequence[int] = (),
                     exact: Sequence[bool] = (), fewest: bool = False) -> Outcome:
    """`pack_with_patterns` for patterns written as the (type, count) pairs of the types
    they hold (as `solvers.exact_fill` lists them), solved by `solver`. With `at_most`, at
    most `bins` patterns (the list need not hold the empty one), and with `fewest` as few as
    CP-SAT finds (its LP then steers the search by the objective); `uses`, where given,
    bounds how often each pattern is used (else `bins`); `exact`, where given, marks the
    types covered exactly even under `cover`. The caller charges the model's making."""
    cp = cp_model.CpModel()
    use = [cp.new_int_var(0, uses[i] if uses else bins, f"y[{i}]")
           for i in range(len(patterns))]
    by_type: list[list] = [[] for _ in demand]
    for p, y in zip(patterns, use, strict=True):
        for t, k in p:
            by_type[t].append(k * y)
    for t, (need, terms) in enumerate(zip(demand, by_type, strict=True)):
        if cover and not (exact and exact[t]):
            cp.add(sum(terms) >= need)  # demand: every item of type t at least once
        else:
            cp.add(sum(terms) == need)  # demand: every item of type t, exactly once
    if at_most:
        cp.add(sum(use) <= bins)
        if fewest:
            cp.minimize(sum(use))
    else:
        cp.add(sum(use) == bins)  # exactly this many GPUs
    status = _status(run(solver, cp))
    if status != "found":
        return Outcome(status, [])
    left = list(demand)
    result = []
    for pattern, y in zip(patterns, use, strict=True):
        for _ in range(solver.value(y)):
            contents = []
            for t, n in pattern:
                take = min(n, left[t])
                contents += [t] * take
                left[t] -= take
            result.append(contents)
    return Outcome(status, result)


def _table_cells(capacity: int, sizes: list[Load], demand: list[int]) -> int:
    """The size of `pricing.knapsack`'s table: capacity x pieces (at most)."""
    pieces = sum(min(n, capacity // s[0]).bit_length() for s, n in zip(sizes, demand,
                                                                       strict=True) if s[0])
    return (capacity + 1) * pieces


def fits_table(capacity: int, sizes: list[Load], demand: list[int]) -> bool:
    """Whether pricing by dynamic programming stays within its table limit: column
    generation prices by it then, and the diving search needs it for its bounds."""
    return _table_cells(capacity, sizes, demand) <= MAX_TABLE_CELLS


def _size_bound(capacity: Load, sizes: list[Load], demand: list[int]) -> int:
    """Bins the items' total size needs in the fullest dimension."""
    return max(math.ceil(sum(s[d] * n for s, n in zip(sizes, demand, strict=True)) / c)
               for d, c in enumerate(capacity) if c)


def _nonzero(pattern: tuple[int, ...]) -> list[int]:
    """The types a pattern holds, found in numpy (a pattern lists every type)."""
    return np.flatnonzero(pattern).tolist()


def add_column(lp: CoverLP, pattern: tuple[int, ...]) -> tuple[int, int]:
    """`pattern` as a column of cost 1 in a covering LP (a row per type), written with its
    non-zero counts only: the column's index and how many non-zeros it adds."""
    charge(COLUMN_ENTRY * len(pattern))  # a dense tuple: hashed, scanned, converted
    held = _nonzero(pattern)
    return lp.add_column(1.0, {t: pattern[t] for t in held}), len(held)


class _Patterns(cp_model.CpSolverSolutionCallback):
    """Every pattern CP-SAT passes on its way to the best one: each is a column too."""

    def __init__(self, take: list):
        super().__init__()
        self.take = take
        self.found: list[tuple[int, ...]] = []

    def on_solution_callback(self) -> None:
        self.found.append(tuple(self.value(a) for a in self.take))


def _price_cp_sat(capacity: Load, sizes: list[Load], values: list[float], demand: list[int],
                  time_limit_s: float) -> tuple[float, list[tuple[int, ...]]]:
    """The most valuable patterns in several dimensions, as a small CP-SAT knapsack: a proven
    upper bound on any pattern's value (for Farley's bound; exact when solved to optimality)
    and the patterns found on the way, best last."""
    cp = cp_model.CpModel()
    take = [cp.new_int_var(0, n if values[t] > 0 else 0, f"a[{t}]") for t, n in enumerate(demand)]
    for d, cap in enumerate(capacity):
        cp.add(sum(s[d] * a for s, a in zip(sizes, take, strict=True)) <= cap)
    scale = 10**6
    cp.maximize(sum(round(v * scale) * a for v, a in zip(values, take, strict=True) if v > 0))
    charge(MODEL_TERM * len(take) * (2 + len(capacity)))
    solver = _solver(time_limit_s, 0, 1)
    # CP-SAT's presolve solves a knapsack of one row itself, by work that its deterministic
    # time leaves out (a tenth of a CPU second at capacity 500,000, counted as none); without
    # it the search does that work, counted, and finds the same optimum. With several rows
    # presolve's work is counted, and the search needs it: without it column generation on
    # Panigrahy's class9_250_3_0 stopped at a bound of 115 where it proves 127.
    solver.parameters.cp_model_presolve = len(capacity) > 1
    collector = _Patterns(take)
    status = run(solver, cp, collector)
    charge(MODEL_TERM * len(take) * len(collector.found))  # each solution read back in Python
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return math.inf, []
    # Rounding each value to 1e-6 can shift the optimum by at most that much per item, and a
    # pattern holds at most what fits of the smallest items: where the LP has converged, a
    # slack of every item instead would leave Farley's bound a bin short on thousands of them.
    slack = _items_bound(capacity, sizes, demand) / scale
    return solver.best_objective_bound / scale + slack, collector.found


def _items_bound(capacity: Load, sizes: list[Load], demand: list[int]) -> int:
    """A bound on the items a pattern can hold: every item, or as many of the smallest as
    fit in a dimension where every item takes room, whichever is fewer (at least
    `reduced_cost._most_items`, which counts each size's demand)."""
    fitting = [c // min(s[d] for s in sizes) for d, c in enumerate(capacity)
               if all(s[d] for s in sizes)]
    return min([sum(demand), *fitting])


def _pair_seeds(size: np.ndarray, value: np.ndarray, limit: np.ndarray, cap: np.ndarray,
                most: int, among: int = 200) -> np.ndarray:
    """The `most` most valuable pairs of types that fit together (a type with itself where
    two are needed), among the `among` most valuable types, as rows of counts. With two or
    three items to a GPU, a pattern grown from one item takes the best partner for the
    first item's value per size, and misses the pairs that are worth most together."""
    top = np.argsort(-value, kind="stable")[:among]
    charge(PRICE_ENTRY * len(top) ** 2 * size.shape[1])
    first, second = np.triu_indices(len(top))
    a, b = top[first], top[second]
    fits = (size[a] + size[b] <= cap).all(axis=1) & ((a != b) | (limit[a] >= 2))
    a, b = a[fits], b[fits]
    best = np.argsort(-(value[a] + value[b]), kind="stable")[:most]
    seeds = np.zeros((len(best), len(value)), dtype=np.int64)
    np.add.at(seeds, (np.arange(len(best)), a[best]), 1)
    np.add.at(seeds, (np.arange(len(best)), b[best]), 1)
    return seeds


def _worth(counts: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Each row of counts valued at `value` per item. Not a matrix product: numpy's product of
    floats goes through BLAS, whose threads run beside the solve, uncounted by its clock
    (nearly four CPU seconds of sixteen on GI's csAA500_1)."""
    return (counts * value).sum(axis=1)


def _grow(size: np.ndarray, cap: np.ndarray, limit: np.ndarray, ratio: np.ndarray,
          counts: np.ndarray) -> np.ndarray:
    """Each row of counts grown by the fitting type of best `ratio` until none fits."""
    load = counts @ size
    rows = np.arange(len(counts))
    while len(rows):
        charge(PRICE_ENTRY * len(rows) * size.size)
        fits = (load[rows, None, :] + size[None, :, :] <= cap).all(axis=2)
        score = np.where(fits & (counts[rows] < limit), ratio, -np.inf)
        best = score.argmax(axis=1)
        grows = np.isfinite(score[np.arange(len(rows)), best])
        rows, best = rows[grows], best[grows]
        counts[rows, best] += 1
        load[rows] += size[best]
    return counts


def _price_greedily(capacity: Load, sizes: list[Load], values: list[float], demand: list[int],
                    max_seeds: int = 400) -> list[tuple[float, tuple[int, ...]]]:
    """Quick improving patterns (worth more than 1): starting from each of the most valuable
    types, and from the most valuable pairs that fit together, add the fitting item of best
    dual value per unit of size until none fits, for three measures of size (largest share,
    summed shares, none). Many patterns per round, not one per measure, is what lets column
    generation converge in few rounds when a GPU holds only two or three items; the seeds run
    side by side as numpy rows, over the types of positive value only (no other can add
    value)."""
    cap = np.array(capacity, dtype=np.int64)
    value_all = np.array(values, dtype=float)
    limit_all = np.array(demand, dtype=np.int64)
    wanted = np.flatnonzero((value_all > 1e-12) & (limit_all > 0))
    if not len(wanted):
        return []
    size = np.array(sizes, dtype=np.int64).reshape(len(sizes), len(capacity))[wanted]
    value, limit = value_all[wanted], limit_all[wanted]
    order = np.argsort(-value, kind="stable")[:max_seeds]
    single = np.zeros((len(order), len(wanted)), dtype=np.int64)
    single[np.arange(len(order)), order] = 1
    seeds = np.vstack([single, _pair_seeds(size, value, limit, cap, max_seeds)])
    share = size / np.where(cap > 0, cap, 1)
    measures = [share.max(axis=1), share.sum(axis=1), np.ones(len(wanted))]
    if len(capacity) == 1:  # the largest share is the summed one: the same patterns twice
        del measures[1]
    found = []
    for measure in measures:
        ratio = value / np.maximum(measure, 1e-9)
        counts = _grow(size, cap, limit, ratio, seeds.copy())
        worth = _worth(counts, value)
        keep = worth > 1 + 1e-9
        dense = np.zeros((int(keep.sum()), len(sizes)), dtype=np.int64)
        dense[:, wanted] = counts[keep]
        found += [(float(v), tuple(row)) for v, row in zip(worth[keep], dense.tolist(),
                                                           strict=True)]
    return found


def price_quickly(capacity: Load, sizes: list[Load], duals: list[float], demand: list[int],
                  known: set, seeds: int) -> list[tuple[int, ...]]:
    """New improving patterns from quick pricing, most valuable first."""
    found = list(dict.fromkeys(p for _, p in _price_greedily(capacity, sizes, duals, demand,
                                                              seeds) if p not in known))
    if not found:
        return []
    worth = _worth(np.array(found, dtype=np.int64), np.array(duals))
    return [found[i] for i in np.argsort(-worth, kind="stable")]


def _price_searching(capacity: Load, sizes: list[Load], duals: list[float], demand: list[int],
                     known: set, seeds: int, left_s: float, pricer: Pricer | None = None
                     ) -> tuple[list[tuple[int, ...]], float | None, int]:
    """New improving patterns by quick pricing (from `seeds` seeds, four times more while
    they find none), with no bound (None); else exactly, with a bound on any pattern's value:
    in several dimensions by branch and bound (no bound if it runs out of time); in one by the
    undominated list of `pricer` where it holds (its bound in `pricer.bound`, none here:
    infinity); by CP-SAT otherwise. The seeds for the next round too."""
    quick = price_quickly(capacity, sizes, duals, demand, known, seeds)
    while not quick and seeds < len(sizes):
        # Few seeds make cheap rounds while many patterns improve; near the end, when they
        # find none, more seeds before the exact pricing.
        seeds *= 4
        quick = price_quickly(capacity, sizes, duals, demand, known, seeds)
    if len(capacity) > 1 and len(quick) < FEW_QUICK_COLUMNS:
        # Branch and bound: it proves in a fraction of CP-SAT's time, and once quick pricing
        # tails off, its columns (the most valuable) move the LP more than quick ones.
        exact = vector_pricing.price(capacity, sizes, duals, demand, most=NEW_VECTOR_COLUMNS,
                                     deadline=now() + min(max(left_s / 4, 0.01), 1.0))
        found = [p for p in dict.fromkeys(exact.patterns + quick) if p not in known]
        if exact.bound is not None or found:
            return found, exact.bound, seeds
    if quick:  # exact pricing only to prove that no column improves any more
        return quick, None, seeds
    if pricer is not None and (listed := pricer.round(duals, known,
                                                      deadline=now() + left_s)) is not None:
        return listed, math.inf, seeds
    best, found = _price_cp_sat(capacity, sizes, duals, demand, min(max(left_s / 4, 0.01), 0.5))
    improving = [p for p in dict.fromkeys(found) if p not in known
                 and sum(v * n for v, n in zip(duals, p, strict=True)) > 1 + 1e-9]
    return improving, best, seeds


def _pricer(lp: CoverLP, capacity: int, sizes: list[Load], demand: list[int]
            ) -> tuple[Pricer, list[Exchange], PairExchanges | None]:
    """One dimension's pricing, and the dual-optimal inequalities it adds to the LP
    (`solvers.pricing.add_exchanges`; the LP's values are read back over patterns alone,
    `without_exchanges`). By table where it fits (`fits_table`): several columns a round at
    smoothed duals. Beyond the table, priced quickly first and exactly by the undominated
    list (`_price_searching`): with the inequalities, column generation on GI's csAA500_1
    took its LP to 2,043.1 in 86 rounds, without them to 2,045.8 in 98 (the same counted
    time). There the pair exchanges too (`PairExchanges`, where the types' pairs are few
    enough): where the table fits, column generation reaches its bound in a fraction of its
    share without them, and on hard-28 they changed which optimal LP solution the diving
    search starts from, one instance better and two worse."""
    weights = [s[0] for s in sizes]
    pricer = Pricer(capacity, weights, demand, sparse=not fits_table(capacity, sizes, demand))
    pairs = PairExchanges(weights) if pricer.sparse and PairExchanges.fit(len(weights)) \
        else None
    return pricer, add_exchanges(lp, weights), pairs


@dataclass(frozen=True)
class Columns:
    patterns: list[tuple[int, ...]]
    lower_bound: int  # GPUs: ceiling of the LP bound, or of Farley's bound if cut short
    values: list[float]  # the LP's use of each pattern
    # The first `priced` patterns are the LP's columns; the rest its exchanges read back as
    # patterns (`without_exchanges`): for rounding, and for models without the exchanges;
    # an LP with them has their solution already.
    priced: int
    duals: tuple[float, ...] = ()  # the last solve's by type: zeros before one, none if it failed


class _PatternLP:
    """Column generation's LP over the patterns priced so far: one LP is kept and each new
    pattern is added as a column with its non-zero counts only, so an iteration costs what
    the new columns hold, not the whole pattern list again. In one dimension it holds the
    dual-optimal inequalities too (`exchanges`), read back out of its values for what it
    hands on (`columns`)."""

    def __init__(self, demand: list[int]):
        self.lp = CoverLP(demand, choose_simplex=True)
        self.demand = demand
        self.patterns: list[tuple[int, ...]] = []
        self.known: set[tuple[int, ...]] = set()
        self.use: list[int] = []  # each pattern's variable, by its index in the LP
        self.nonzeros = 0  # of the LP, what each solve of it is charged by
        self.exchanges: list[Exchange] = []
        self.pairs: PairExchanges | None = None
        self.weights: list[int] | None = None  # one dimension's: exchanges read back by size
        self.values: list[float] = []  # the last solve's, of each pattern then priced
        self.flows = np.zeros(0)  # the last solve's, of each exchange
        self.duals = np.zeros(len(demand))

    def add(self, pattern: tuple[int, ...]) -> None:
        self.known.add(pattern)
        self.patterns.append(pattern)
        index, held = add_column(self.lp, pattern)
        self.use.append(index)
        self.nonzeros += held

    def solve(self, deadline: float) -> float | None:
        """The LP's value (None if not solved to optimality, by `deadline` on the wall
        clock), its values and duals kept. With pair exchanges, those its duals violate are
        added after the solve, for the next one: pricing goes on at these duals, as valid
        for it as any. Solving again at once until none were violated (up to four times)
        took three solves a round: column generation from first-fit decreasing's bins on
        GI's csAB500_1 took 4.5 counted seconds (8.3 CPU seconds) to its bound, now 3.0
        (6.5), on csBB500_4 6.0 (10.8), now 3.6 (7.2)."""
        charge(LP_ROUND + LP_ENTRY * (self.nonzeros + len(self.patterns) + len(self.demand)))
        pivot = LP_PIVOT if self.lp.has_basis() else LP_COLD_PIVOT
        optimal = self.lp.solve(deadline)
        charge(pivot * self.lp.iterations() * (len(self.patterns) + len(self.demand)))
        if not optimal:
            return None
        solved, self.duals = self.lp.solution()
        value = self.lp.objective()  # read before the model changes
        self.values = solved[self.use].tolist()
        self.flows = solved[[index for _, _, index in self.exchanges]]
        if self.pairs is not None:
            added = self.pairs.separate(self.lp, self.duals)
            self.exchanges += added
            self.nonzeros += 3 * len(added)
            self.flows = np.concatenate([self.flows, np.zeros(len(added))])  # not yet in it
        return value

    def columns(self, bound: int) -> Columns:
        """The columns and the last solve's values over patterns alone (columns priced since
        have none)."""
        values = self.values + [0.0] * (len(self.patterns) - len(self.values))
        duals = tuple(self.duals.tolist())
        if not self.exchanges or len(self.flows) < len(self.exchanges):  # none solved yet
            return Columns(self.patterns, bound, values, len(self.patterns), duals)
        columns, recovered = without_exchanges(self.patterns, values, self.exchanges,
                                               self.flows, self.demand, self.weights)
        return Columns(columns, bound, recovered, len(self.patterns), duals)


def generate_columns(capacity: Load, sizes: list[Load], demand: list[int],
                     start: list[tuple[int, ...]], deadline: float,
                     rounds: int | None = None, known_bins: int = 0,
                     converge: bool = False) -> Columns:
    """Column generation for the LP relaxation of the pattern model (`_PatternLP`). At most
    `rounds` rounds of pricing when given (the LP of the last one is solved, not priced).

    In one dimension (`_pricer`), a stop once Farley's bound, `known_bins` or the total size
    reach the LP's value rounded up (its `lower_bound`), unless `converge`: then pricing goes
    on to the LP's optimum, whose duals price no pattern above 1 (what
    `solvers.reduced_cost` needs)."""
    master = _PatternLP(demand)
    for pattern in dict.fromkeys(start):
        master.add(pattern)
    bound = 0
    floor, pricer = 0, None  # bins known needed: priced by table or list, it stops there
    if len(capacity) == 1:
        pricer, master.exchanges, master.pairs = _pricer(master.lp, capacity[0], sizes, demand)
        master.weights = pricer.weights
        master.nonzeros += 2 * len(master.exchanges)
        floor = max(known_bins, _size_bound(capacity, sizes, demand))
    seeds = QUICK_SEEDS  # four times more each time they find nothing
    most = NEW_COLUMNS if len(capacity) == 1 else NEW_VECTOR_COLUMNS
    priced = 0  # rounds
    while True:
        if now() >= deadline:
            return master.columns(bound)
        value = master.solve(deadline)
        if value is None and now() >= deadline:  # cut short on the wall clock: the last LP
            return master.columns(bound)
        if value is None:
            patterns = master.patterns
            return Columns(patterns, bound, [0.0] * len(patterns), len(patterns))
        if floor and not converge and math.ceil(value - 1e-6) <= max(bound, floor):
            return master.columns(max(bound, floor))  # the LP's bound is proven
        if rounds is not None and priced >= rounds:
            return master.columns(bound)
        priced += 1
        duals = master.duals.tolist()
        left = deadline - now()
        if pricer is not None and not pricer.sparse:
            improving = pricer.round(duals, master.known) or []
            bound = max(bound, pricer.bound)
            if not improving:  # no pattern is worth more than 1: the LP is optimal
                return master.columns(max(bound, math.ceil(value - 1e-6)))
        else:
            improving, best, seeds = _price_searching(capacity, sizes, duals, demand,
                                                      master.known, seeds, left, pricer)
            bound = max(bound, pricer.bound if pricer is not None else 0)
            if best is None:  # quick patterns: the next round, no bound yet
                for p in improving[:most]:
                    master.add(p)
                continue
            if 0 < best < math.inf:  # Farley: no pattern is worth more than `best`
                bound = max(bound, math.ceil(value / max(best, 1.0) - 1e-6))
        if not improving or now() >= deadline:
            return master.columns(bound)
        for p in improving:
            master.add(p)


def dive(capacity: Load, sizes: list[Load], demand: list[int], start: list[tuple[int, ...]],
         deadline: float, *, rounds: int, fix: float) -> list[list[int]]:
    """A packing by rounding the LP (items of several dimensions): a step takes every pattern
    the LP uses at least `fix` (most used first, while its items are still needed) and
    solves the LP again for what is left, priced at most `rounds` rounds: a dozen LPs in all
    on hundreds of items, where one pattern a step, each LP priced to the end, does not
    finish. Time running out ends the dive with the last LP rounded at once for what is
    left."""
    left = list(demand)
    bins: list[list[int]] = []
    columns = list(start)
    found = Columns(columns, 0, [0.0] * len(columns), len(columns))
    while any(left):
        if now() >= deadline:
            return bins + round_columns(capacity, sizes, left, found.patterns, found.values)
        # Each column cut down to what is left, in numpy: columns x types is large.
        charge(COLUMN_ENTRY * len(columns) * len(left))
        cut = np.minimum(np.array(columns, dtype=np.int64).reshape(len(columns), len(left)),
                         np.array(left, dtype=np.int64))
        clipped = list(dict.fromkeys(map(tuple, cut[cut.any(axis=1)].tolist())))
        found = generate_columns(capacity, sizes, left, clipped, deadline, rounds)
        columns = found.patterns
        order = sorted(range(len(columns)), key=lambda i: -found.values[i])
        chosen = [order[0]] + [i for i in order[1:] if found.values[i] >= fix]
        for rank, i in enumerate(chosen):
            value = found.values[i]
            copies = max(1, math.floor(value + 1e-9)) if rank == 0 else \
                math.floor(value + 1 - fix + 1e-9)
            for _ in range(copies):
                if rank and any(n > m for n, m in zip(columns[i], left, strict=True)):
                    break  # an earlier pattern of this step took some of its items
                contents = []
                for t, n in enumerate(columns[i]):
                    take = min(n, left[t])
                    contents += [t] * take
                    left[t] -= take
                if contents:
                    bins.append(contents)
    return bins


def round_columns(capacity: Load, sizes: list[Load], demand: list[int],
                  columns: list[tuple[int, ...]] | np.ndarray, values: list[float]
                  ) -> list[list[int]]:
    """A packing from an LP solution, at once: every pattern as many times as the LP uses it
    whole, then the fractional ones, most used first, while their items are still needed;
    what is left goes best fit (by summed share) into any GPU with room, else a new one.
    From a converged LP this lands within a few GPUs of the optimum, where rounding one
    pattern at a time and solving the LP again does not finish on large instances."""
    types = np.arange(len(demand))
    left = np.array(demand, dtype=np.int64)
    # `columns` as tuples or as an array's rows (the diving search's: no conversion).
    patterns = np.asarray(columns, dtype=np.int64).reshape(len(columns), len(demand))
    bins: list[list[int]] = []

    def take(i: int, times: int) -> None:
        """Pattern i up to `times` times, while all its items are still needed."""
        pattern = patterns[i]
        for _ in range(times):
            if not pattern.any() or (pattern > left).any():
                return
            charge(ITEM_FIT + COLUMN_ENTRY * len(pattern))
            bins.append(np.repeat(types, pattern).tolist())
            left[:] -= pattern

    order = sorted(range(len(columns)), key=lambda i: -values[i])
    for i in order:
        take(i, math.floor(values[i] + 1e-9))
    for i in order:
        take(i, 1 if values[i] > 1e-9 else 0)
    cap = np.array(capacity, dtype=np.int64)
    size = np.array(sizes, dtype=np.int64).reshape(len(sizes), len(capacity))
    loads = np.zeros((len(bins) + int(left.sum()), len(capacity)), dtype=np.int64)
    for b, contents in enumerate(bins):
        loads[b] = size[contents].sum(axis=0)
    shares = [sum(s / c for s, c in zip(row, capacity, strict=True) if c) for row in sizes]
    for t in sorted((t for t, n in enumerate(left.tolist()) for _ in range(n)),
                    key=lambda t: -shares[t]):
        charge(ITEM_FIT + PRICE_ENTRY * len(bins) * len(capacity))
        fitting = np.flatnonzero((loads[:len(bins)] + size[t] <= cap).all(axis=1))
        if not len(fitting):
            bins.append([])
            b = len(bins) - 1
        else:
            # The fullest by summed share, the first of equals: the same sum, in the same
            # order, as one GPU at a time would add it.
            fullness = np.zeros(len(fitting))
            for d, c in enumerate(capacity):
                if c:
                    fullness = fullness + loads[fitting, d] / c
            b = int(fitting[np.argmax(fullness)])
        bins[b].append(t)
        loads[b] += size[t]
    return bins


def build_graph(capacity: Load, sizes: list[Load], max_arcs: int,
                deadline: float = math.inf) -> list[tuple[Load, Load, int]] | None:
    """Arcs that add one item of type t only from loads reachable with types 0..t, so every
    pattern appears once, in type order; closing arcs (type -1) lead to the sink. None when
    the graph would exceed `max_arcs`, or at `deadline`."""
    zero = tuple(0 for _ in capacity)
    reachable = {zero}
    arcs: list[tuple[Load, Load, int]] = []
    tried = 0  # loads taken from a frontier, each a step whether or not its arc fits
    for t, size in enumerate(sizes):
        # Ascending loads, so chains of several copies of type t are found too.
        frontier = sorted(reachable)
        heapq.heapify(frontier)
        charge(PATTERN_STEP * len(frontier) / 2)
        while frontier:
            load = heapq.heappop(frontier)
            tried += 1
            if tried % 1024 == 0:
                charge(512 * PATTERN_STEP)  # a load tried: half a type tried in a listing
            head = tuple(a + b for a, b in zip(load, size, strict=True))
            if all(h <= c for h, c in zip(head, capacity, strict=True)):
                arcs.append((load, head, t))
                if head not in reachable:
                    reachable.add(head)
                    heapq.heappush(frontier, head)
            if len(arcs) > max_arcs or now() > deadline:
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
    status = _status(run(solver, cp))
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


def pack_listed(capacity: Load, sizes: list[Load], demand: list[int], bins: int, *,
                time_limit_s: float, seed: int, workers: int,
                max_patterns: int = 10_000) -> Outcome | None:
    """Exactly `bins` GPUs by the explicit pattern model; None when there are too many
    patterns to list."""
    totals = [sum(s[d] * n for s, n in zip(sizes, demand, strict=True))
              for d in range(len(capacity))]
    slack = tuple(bins * c - t for c, t in zip(capacity, totals, strict=True))
    if any(s < 0 for s in slack):
        return Outcome("impossible", [])
    deadline = now() + time_limit_s
    patterns = list_patterns(capacity, sizes, demand, slack, max_patterns,
                             now() + time_limit_s / 4)
    if patterns is None:
        return None
    return pack_with_patterns(patterns, demand, bins,
                              time_limit_s=deadline - now(), seed=seed,
                              workers=workers)


def pack_exactly(capacity: Load, sizes: list[Load], demand: list[int], bins: int, *,
                 time_limit_s: float, seed: int, workers: int, max_arcs: int = 60_000,
                 columns: Sequence[tuple[int, ...]] = (),
                 incumbent: Sequence[list[int]] = (), listing: bool = True) -> Outcome:
    """Is there a packing into exactly `bins` GPUs? Listed patterns if few (unless `listing`
    is off: known to be too many), else the restricted model over `columns` from column
    generation, else arc flow (in one dimension over the compressed graph of
    `solvers.arcflow`, up to ten times the arcs uncompressed). In one dimension, given a
    packing with more GPUs (`incumbent`), the arc flow asks for the fewest from `bins` up,
    started from it: "found" is then any packing with fewer GPUs than the incumbent, and
    `lower_bound` what its objective bound proves."""
    deadline = now() + time_limit_s
    listed = pack_listed(capacity, sizes, demand, bins, time_limit_s=time_limit_s, seed=seed,
                         workers=workers) if listing else None
    if listed is not None:
        return listed
    if now() >= deadline:  # the listing took the time: no model can start
        return Outcome("unknown", [])
    if columns:
        # In several dimensions the arc-flow graph is rarely small enough to build: the
        # restricted model gets two thirds of the time there, a third in one dimension.
        share = 1 / 3 if len(capacity) == 1 else 2 / 3
        found = pack_with_patterns(list(columns), demand, bins,
                                   time_limit_s=(deadline - now()) * share, seed=seed,
                                   workers=workers, cover=True)
        if found.status == "found":
            return found
    if len(capacity) == 1 and all(s[0] for s in sizes):
        # One dimension: the compressed graph, when its size says it will finish.
        if now() >= deadline:
            return Outcome("unknown", [])
        if len(incumbent) > bins:
            improved = arcflow.improve(capacity[0], [s[0] for s in sizes], demand, bins,
                                       list(incumbent), time_limit_s=deadline - now(),
                                       seed=seed, workers=workers, max_arcs=max_arcs * 10)
            if improved is None:
                return Outcome("unknown", [])
            best, proven = improved
            if len(best) < len(incumbent):
                return Outcome("found", best, proven)
            return Outcome("impossible" if proven > bins else "unknown", [], proven)
        compressed = arcflow.pack(capacity[0], [s[0] for s in sizes], demand, bins,
                                  time_limit_s=deadline - now(), seed=seed, workers=workers,
                                  max_arcs=max_arcs * 10)
        return Outcome("unknown", []) if compressed is None else Outcome(*compressed)
    arcs = build_graph(capacity, sizes, max_arcs, deadline - 0.5)
    if arcs is None or deadline - now() < 0.1:
        return Outcome("unknown", [])
    return pack_with_arc_flow(arcs, capacity, demand, bins,
                              time_limit_s=deadline - now(), seed=seed,
                              workers=workers)
