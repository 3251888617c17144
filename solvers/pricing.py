"""Pricing for one-dimensional column generation: several columns a round, smoothed duals.

Column generation for bin packing (Gilmore and Gomory, 1961) prices a pattern by a knapsack
over the LP's duals. Adding only the most valuable pattern each round converges slowly when
bins hold few items of many sizes (three or four pieces of hundreds of distinct sizes): each
round changes one column of hundreds the optimal LP needs, and the duals jump from round to
round (the tailing-off effect). Three standard remedies, all on the one knapsack table a round
already fills:

- Several columns a round. The table holds, for every room r, the most valuable pattern of
  weight at most r, so besides the best pattern it gives, for each item type t, the best
  completion of one item of t (the table at room capacity - w_t, plus t): up to `most` columns
  a round, each holding a different type, which is what the LP is missing (after Vanderbeck,
  "Computational study of a column generation algorithm for bin packing and cutting stock
  problems", Mathematical Programming, 1999, who adds many columns a round).
- Wentges' smoothing (Wentges, "Weighted Dantzig-Wolfe decomposition for linear mixed-integer
  programming", International Transactions in Operational Research, 1997; as analysed by
  Pessoa, Sadykov, Uchoa and Vanderbeck, "In-out separation and column generation
  stabilization by dual price smoothing", 2013): price at alpha * centre + (1 - alpha) * duals,
  the centre being the duals of the best Lagrangian bound so far. A column priced there that
  does not improve at the LP's duals is a mispricing: the round prices at the LP's duals
  instead, so no round ends with nothing where a column improves.
- Dual-optimal inequalities (Ben Amor, Desrosiers and Valerio de Carvalho, "Dual-optimal
  inequalities for stabilized column generation", Operations Research, 2006): a larger
  item's dual is at least a smaller one's in some optimal dual solution, written into the LP
  as columns of cost 0 (`add_exchanges`). The first centre of the smoothing is the sizes over
  the capacity, duals at which no pattern is worth more than 1. Where the LP's values are
  rounded into packings, its exchanges are read back into its patterns first
  (`without_exchanges`). Where pricing runs on the undominated list (large capacities), the
  same paper's inequalities of two smaller items in a larger one's place are added too, as
  the LP's duals violate them (`PairExchanges`): column generation on GI's csAA500_1 from
  first-fit decreasing's bins then proves its LP bound in 9.5 counted seconds, not 12.8.
- Farley's bound (Farley, "A note on bounding a class of linear programming problems,
  including cutting stock problems", Operations Research, 1990): for any duals pi >= 0 whose
  most valuable pattern is worth v, the LP needs at least pi . demand / v bins. Rounded up, it
  proves the LP bound before the LP has converged, and column generation stops there.

Where the table would be too large (`patterns.fits_table`), the same rounds run on the list
of undominated patterns of `solvers.pareto` (`sparse`), whose work scales with the patterns
worth nearly the most rather than with the capacity; it reports None when that list grows
too long, and the caller prices another way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from solvers import pareto
from solvers.clock import (
    COLUMN_ENTRY,
    PAIR_WEIGHED,
    PRICE_ENTRY,
    TABLE_CELL,
    TABLE_PIECE,
    charge,
)
from solvers.lp import CoverLP
from solvers.pareto import Frontier

EPSILON = 1e-9  # a column improves when worth more than 1 + EPSILON
BOUND_TOLERANCE = 1e-6  # a bound within this of an integer is that integer
SMOOTHING = 0.5  # Wentges' alpha: the centre's weight in the duals priced
MOST_COLUMNS = 50  # columns added per round at most


@dataclass(frozen=True)
class Table:
    """A bounded knapsack table over item types (copies split in powers of two): `best[r]`
    is the most valuable pattern of weight at most r, `chosen[i, r]` whether piece i is in
    it (considering pieces 0..i)."""

    weights: list[int]
    pieces: list[tuple[int, int]]  # (type, copies)
    best: np.ndarray
    chosen: np.ndarray

    def patterns(self, rooms: np.ndarray) -> np.ndarray:
        """The most valuable pattern within each room, as rows of counts per type."""
        counts = np.zeros((len(rooms), len(self.weights)), dtype=np.int64)
        left = rooms.astype(np.int64).copy()
        charge(TABLE_PIECE * len(self.pieces) + PRICE_ENTRY * counts.size)
        for i in range(len(self.pieces) - 1, -1, -1):
            taken = self.chosen[i, left]
            if taken.any():
                t, copies = self.pieces[i]
                counts[taken, t] += copies
                left[taken] -= self.weights[t] * copies
        return counts

    def best_within(self, rooms: np.ndarray) -> np.ndarray:
        """The most valuable pattern's value within each room."""
        return self.best[rooms]

    def top(self) -> tuple[float, int]:
        """The best value and the room that holds it."""
        return float(self.best.max()), int(np.argmax(self.best))


def knapsack(capacity: int, weights: list[int], values: list[float],
             demand: list[int], *, exact: bool = False) -> Table:
    """The table of the most valuable patterns by room, types of positive value only; where
    `exact`, of weight exactly the room (-inf where no pattern weighs that): `best[capacity]`
    is then the most valuable pattern that fills a bin to the brim."""
    pieces = pareto.split(capacity, weights, values, demand)
    # Each piece sweeps the table once: on large capacities (tens of millions of cells) this
    # is most of column generation's work; on small ones, numpy's cost per sweep is.
    charge(len(pieces) * (TABLE_PIECE + TABLE_CELL * (capacity + 1)))
    best = np.full(capacity + 1, -np.inf) if exact else np.zeros(capacity + 1)
    best[0] = 0.0
    chosen = np.zeros((len(pieces), capacity + 1), dtype=bool)
    for i, (t, copies) in enumerate(pieces):
        w, v = weights[t] * copies, values[t] * copies
        if w > capacity:
            continue
        candidate = best[:-w] + v if w else best + v
        better = candidate > best[w:] + 1e-12
        chosen[i, w:] = better
        best[w:] = np.where(better, candidate, best[w:])
    return Table(weights, pieces, best, chosen)


def _columns(table: Table | Frontier, capacity: int, values: np.ndarray,
             demand: np.ndarray, most: int) -> np.ndarray:
    """The most valuable pattern; from the undominated list, the next most valuable patterns
    it ends with (`Frontier.runners_up`: the list keeps few lighter patterns to complete, so
    the completions below rarely improve there); then for the types of highest completed
    value the best completion of one item of the type: at most `most` distinct rows besides
    the first, each within the capacity and the demand."""
    runners_up = table.runners_up(most) if isinstance(table, Frontier) else \
        np.zeros(0, dtype=np.int64)
    weights = np.array(table.weights, dtype=np.int64)
    types = np.flatnonzero((values > 0) & (demand > 0) & (weights <= capacity))
    completed = table.best_within(capacity - weights[types]) + values[types]
    order = types[np.argsort(-completed, kind="stable")[:most - len(runners_up)]]
    rooms = np.concatenate([[table.top()[1]], runners_up, capacity - weights[order]])
    rows = table.patterns(rooms)
    rows[1 + len(runners_up) + np.arange(len(order)), order] += 1
    within = np.array((rows <= demand).all(axis=1))
    within[0] = True  # the table's own pattern is within the demand
    return np.unique(rows[within], axis=0)


class Pricer:
    """The pricing of one column generation over one demand: each round's improving columns
    and the bin bound the rounds prove (Farley's, at every duals priced)."""

    def __init__(self, capacity: int, weights: list[int], demand: list[int],
                 most: int = MOST_COLUMNS, *, sparse: bool = False):
        self.capacity, self.weights, self.most = capacity, weights, most
        self.sparse = sparse  # priced by the undominated list (`solvers.pareto`), no table
        self.demand = np.array(demand, dtype=np.int64)
        # Sizes over the capacity are duals no pattern is worth more than 1 at, whose bound
        # is the items' total size: the first centre.
        self.centre = np.array(weights, dtype=float) / capacity
        self.centre_bound = float(self.centre @ self.demand)
        self.bound = 0  # bins the rounds so far prove needed

    def _price(self, duals: np.ndarray, deadline: float) -> tuple[np.ndarray, float] | None:
        """The columns of the table at `duals` and Farley's bound there; None where the
        undominated list grows too long, or at `deadline` before it is made."""
        table: Table | Frontier | None
        if self.sparse:
            # Only a pattern worth more than 1 improves or lifts Farley's bound.
            table = pareto.knapsack(self.capacity, self.weights, duals.tolist(),
                                    self.demand.tolist(), floor=1.0, near_best=pareto.NEAR_BEST,
                                    deadline=deadline)
            if table is None:
                return None
        else:
            table = knapsack(self.capacity, self.weights, duals.tolist(),
                             self.demand.tolist())
        top = table.top()[0]
        farley = float(duals @ self.demand) / top if top > EPSILON else 0.0
        self.bound = max(self.bound, math.ceil(farley - BOUND_TOLERANCE))
        return _columns(table, self.capacity, duals, self.demand, self.most), farley

    def round(self, duals: list[float], known: set[tuple[int, ...]], *,
              deadline: float = math.inf) -> list[tuple[int, ...]] | None:
        """New columns worth more than 1 at the LP's `duals`, most valuable first; none when
        no pattern is (the LP is optimal over the demand); None when the undominated list
        grew too long to price by, or was cut short at `deadline`."""
        exact = np.maximum(np.array(duals, dtype=float), 0.0)
        smoothed = SMOOTHING * self.centre + (1 - SMOOTHING) * exact
        found: list[tuple[int, ...]] = []
        for priced_at in (smoothed, exact):  # the LP's own duals after a mispricing only
            priced = self._price(priced_at, deadline)
            if priced is None:
                return None
            rows, farley = priced
            if farley > self.centre_bound:  # the best Lagrangian bound: the new centre
                self.centre, self.centre_bound = priced_at, farley
            found = _improving(rows, exact, known)
            if found:
                break
        return found


def _improving(rows: np.ndarray, duals: np.ndarray, known: set[tuple[int, ...]]
               ) -> list[tuple[int, ...]]:
    """The rows worth more than 1 at `duals` and not yet columns, most valuable first."""
    worth = rows @ duals
    order = np.argsort(-worth, kind="stable")
    charge(COLUMN_ENTRY * rows.size)  # each row read back as a tuple
    found = [tuple(rows[i].tolist()) for i in order if worth[i] > 1 + EPSILON]
    return [p for p in found if p not in known]


Exchange = tuple[int, tuple[int, ...], int]  # (larger type, smaller types, the LP's column)
MAX_PAIRS = 1_000_000  # pairs of types weighed for pair exchanges at most
PAIR_EXCHANGES = 100  # pair exchanges added per separation at most


def add_exchanges(lp: CoverLP, weights: list[int]) -> list[Exchange]:
    """Dual-optimal inequalities in a pattern LP of covering rows (one per type): an
    item's place in a bin may hold any smaller item instead, so some optimal duals grow with
    the size. Each is a column of cost 0 moving cover from a type to the next smaller one;
    the LP's value is unchanged and its duals stay ordered by size, which spares the rounds
    that duals out of order spend. Each as (larger type, smaller type, the column's index in
    the LP), largest first; each adds two non-zeros."""
    order = sorted(range(len(weights)), key=lambda t: -weights[t])
    exchanges = [_exchange(lp, larger, (smaller,))
                 for larger, smaller in zip(order, order[1:], strict=False)]
    charge(COLUMN_ENTRY * 2 * len(order))
    return exchanges


def _exchange(lp: CoverLP, larger: int, smaller: tuple[int, ...]) -> Exchange:
    """A column of cost 0 that moves one item's cover from the `larger` type to each of the
    `smaller` ones."""
    entries = {larger: -1} | {t: smaller.count(t) for t in smaller}
    return larger, smaller, lp.add_column(0.0, entries)


class PairExchanges:
    """Dual-optimal inequalities of two smaller items in a larger one's place: where w_i >=
    w_j + w_k, some optimal duals have pi_i >= pi_j + pi_k, as a column of cost 0 moving
    cover from type i to types j and k (Ben Amor, Desrosiers and Valerio de Carvalho), for
    each pair the smallest type that holds both (the exchanges to the next smaller type
    carry it to the larger ones). All pairs of hundreds of types are too many columns, so
    they are separated: each solve adds those the LP's duals violate most."""

    def __init__(self, weights: list[int]):
        w = np.array(weights, dtype=np.int64)
        order = np.argsort(w, kind="stable")  # ascending
        ascending = w[order]
        first, second = np.triu_indices(len(w))
        both = ascending[first] + ascending[second]
        kept = (ascending[first] > 0) & (both <= ascending[-1])
        # the smallest type that holds the pair (the first of its size, in the sort)
        holder = np.searchsorted(ascending, both[kept], side="left")
        charge(PAIR_WEIGHED * len(first))
        self.larger = order[holder]
        self.first, self.second = order[first[kept]], order[second[kept]]
        self.added = np.zeros(len(self.larger), dtype=bool)

    @staticmethod
    def fit(types: int) -> bool:
        """Whether the pairs of `types` item types are few enough to weigh."""
        return types * (types + 1) // 2 <= MAX_PAIRS

    def separate(self, lp: CoverLP, duals: np.ndarray) -> list[Exchange]:
        """The pair exchanges `duals` violate most, not added before, added to `lp`."""
        charge(PAIR_WEIGHED * len(self.larger))
        gain = duals[self.first] + duals[self.second] - duals[self.larger]
        violated = np.flatnonzero((gain > EPSILON) & ~self.added)
        violated = violated[np.argsort(-gain[violated], kind="stable")[:PAIR_EXCHANGES]]
        self.added[violated] = True
        exchanges = [_exchange(lp, larger, (first, second))
                     for larger, first, second in zip(self.larger[violated].tolist(),
                                                      self.first[violated].tolist(),
                                                      self.second[violated].tolist(),
                                                      strict=True)]
        charge(COLUMN_ENTRY * 3 * len(exchanges))
        return exchanges


def without_exchanges(columns: list[tuple[int, ...]], values: list[float],
                      exchanges: list[Exchange], flows: np.ndarray, demand: list[int],
                      weights: list[int] | None = None
                      ) -> tuple[list[tuple[int, ...]], list[float]]:
    """The LP's solution over patterns alone, of the same value (see below for more): each
    exchange's flow, the largest types first (by `weights`; without them, in the order
    given), moved into the used patterns that hold its larger type, one item of it swapped
    for the smaller ones, which fit in its place (Ben Amor, Desrosiers and Valerio de
    Carvalho's recovery). Under the inequalities the patterns hold larger items than the
    rows count, and rounding them takes a pattern only while all its items are still
    needed: on GI's 500 sizes that left dozens of GPUs to fit anew. The columns, the new
    ones last, and their values.

    Flows chain down the sizes, so a swap may leave a pattern holding more of the smaller
    type than its demand on the way: such a pattern is the first to pass the item on down
    the chain, and one where the smaller type stays within its demand comes next. A
    pattern still over the demand at the end is cut down to it, and the cover that leaves
    short is made up by patterns of one item, which adds to the value: the inequalities
    hold for patterns that may hold more of a type than its demand, and a pair exchange
    can take the LP there (items of 10 and 1, one of each, in bins of 10: one pattern and
    half of a pattern of two 1s, 1.5 bins)."""
    used = {p: v for p, v in zip(columns, values, strict=True) if v > EPSILON}
    charge(COLUMN_ENTRY * len(demand) * len(used))
    order = range(len(exchanges)) if weights is None else sorted(
        range(len(exchanges)), key=lambda e: -weights[exchanges[e][0]])
    for e in order:
        larger, smaller, _ = exchanges[e]
        flow = float(flows[e])
        while flow > EPSILON:
            holders = [p for p, v in used.items() if v > EPSILON and p[larger]]
            charge(COLUMN_ENTRY * len(used))
            if not holders:
                break
            source = max(holders, key=lambda p: (p[larger] > demand[larger], all(
                p[t] < demand[t] for t in smaller), used[p]))
            moved = min(flow, used[source])
            swapped = list(source)
            swapped[larger] -= 1
            for t in smaller:
                swapped[t] += 1
            used[source] -= moved
            used[tuple(swapped)] = used.get(tuple(swapped), 0.0) + moved
            flow -= moved
    within: dict[tuple[int, ...], float] = {}
    for p, v in used.items():
        if v > EPSILON:
            cut = tuple(min(n, d) for n, d in zip(p, demand, strict=True))
            within[cut] = within.get(cut, 0.0) + v
    charge(COLUMN_ENTRY * len(demand) * len(within))
    covered = np.zeros(len(demand))
    for p, v in within.items():
        covered += v * np.array(p, dtype=float)
    for t in np.flatnonzero(covered < np.array(demand) - EPSILON).tolist():
        single = tuple(int(i == t) for i in range(len(demand)))
        within[single] = within.get(single, 0.0) + demand[t] - covered[t]
    known = set(columns)
    return (columns + [p for p in within if p not in known],
            [within.get(p, 0.0) for p in columns] + [v for p, v in within.items()
                                                      if p not in known])
