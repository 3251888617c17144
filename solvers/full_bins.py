"""Zero-slack packings: column generation over full bins only, and a dive (one dimension).

Where the items add up to exactly k full bins and k is the lower bound, a packing into k bins
fills every bin to the brim, so only the patterns that weigh exactly the capacity can take
part. Column generation over all patterns spends its rounds on patterns that waste room
(augmented IRUP instances of 402 items: 137 rounds to 132.003 of a bound of 132 and still
going), and rounding or diving from that LP ends a bin over. Restricted to full patterns, the
LP has far fewer columns to find, and a dive over it cannot waste a bin's room:

- the master LP covers the residual demand with full patterns (cost 1) and, so that it is
  always feasible, single items at `ARTIFICIAL_COST` (more than any bin, so an optimal LP
  uses one only where full patterns cannot cover the item at all);
- pricing is the knapsack table of exact weights (`pricing.knapsack(..., exact=True)`): the
  most valuable full pattern and, for the types of highest completed value, the best full
  completion of one item of the type, several columns a round (Vanderbeck's remedy, as
  `solvers.pricing` adds them); it stops as soon as the LP's value is the residual's total
  size over the capacity, the least any cover of it by full patterns costs (the LP is then
  optimal: later rounds would only trade its solution for another optimal one);
- the dive fixes every column the LP uses at least once, its value rounded down (what is
  left of the LP's solution still covers the residual demand), or, where none is used once,
  the most used one, and solves the residual's LP again, until the residual's LP needs an
  artificial item or more bins than are left: a dead end;
- at a dead end, the bins fixed last and as many at random are emptied, and their items with
  those left are packed into as many full bins by the exact cover of every full bin they
  make (`exact_fill.pack_left`), with more bins emptied at each of `REPAIRS` attempts in
  turn (on augmented IRUP's 402_10000_DI_25 the dive ends 19 items short, and emptying two
  bins packs them), and where that cover finds nothing in its time, by a dive over full
  patterns of those items alone (with the columns found so far, and no repair of its own:
  402_10000_DI_10's dead end is packed so); where no attempt succeeds, there is no packing
  (a second, careful dive of the whole demand, fixing only whole columns and one more a
  node, took the time of the phases after this one, which found augmented IRUP's
  201_2500_DI_0).

The columns start from the full bins of up to three items (`exact_fill.few_item_patterns`),
each node's LP from every column found so far that fits its residual demand. The root's LP
gets `ROOT_SHARE` of the time: where it is not solved by then, the phase ends without a
packing. Whatever the dive finds has k bins, the bound, so it is optimal. Where it finds
none, every full pattern priced is handed back (`fill`): the engine's column generation over
all patterns starts from them, at or near its optimum, where from greedy's bins alone it took
augmented IRUP's 402_10000_DI_6 3.1 counted seconds to get there.
"""

from __future__ import annotations

import math
import random

import numpy as np

from solvers.clock import (
    COLUMN_ENTRY,
    LP_ENTRY,
    LP_PIVOT,
    LP_ROUND,
    TABLE_CELL,
    charge,
    now,
)
from solvers.exact_fill import few_item_patterns, one_dimension, pack_left
from solvers.lp import CoverLP
from solvers.patterns import add_column
from solvers.pricing import EPSILON, knapsack

ARTIFICIAL_COST = 3.0  # an item left out of every full bin, in the LP: dearer than a bin
COMPLETIONS = 50  # full completions of one item of a type priced per round at most
START_ITEMS = 3  # the full bins listed to start from hold at most this many items
START_PATTERNS = 20_000  # and are at most this many (none listed beyond)
REPAIRS = 4  # attempts at packing what a dive's dead end leaves, bins emptied each time
REPAIRED_BINS = (2, 4, 6, 8)  # bins emptied, in turn, besides the items left
REPAIR_S = 0.3  # most time for one attempt
# The share of the phase's time the root's LP may take: over full patterns alone it is
# degenerate (augmented IRUP's 600 sizes: 1.4 to 2.9 counted seconds, 402 sizes 0.4 to 0.6,
# 801 sizes 5.0 to 7.7), and where it is still unsolved by then, column generation over all
# patterns, with its dual-optimal inequalities, reaches its value from the columns priced so
# far in under a second, and the diving search after it has the time left. With half the
# phase's time, the 600 sizes' roots were cut short in wall mode beside the racing search:
# 19 of 22 at the optimum, against 21 and 20 in two runs (scripts/BENCHMARKS.md,
# `#choose-simplex`).
ROOT_SHARE = 3 / 4


def fill(capacity: tuple[int, ...], sizes: list[tuple[int, ...]], demand: list[int],
         bins: int, *, deadline: float, seed: int
         ) -> tuple[list[list[int]] | None, list[tuple[int, ...]]]:
    """`pack` for items that need one dimension (None for any others), in the caller's type
    order, and where it finds none, the full patterns it priced, as counts in that order too
    (none where it finds a packing): where the items fill the bound's bins exactly, every
    optimal solution of the pattern LP uses full patterns only, so column generation over all
    patterns that starts from them starts at (or near) its optimum."""
    d = one_dimension(capacity, sizes)
    if d is None:
        return None, []
    order = sorted(range(len(sizes)), key=lambda t: (-sizes[t][d], t))
    priced = Columns(len(sizes))
    found = pack(capacity[d], [sizes[t][d] for t in order], [demand[t] for t in order], bins,
                 deadline=deadline, seed=seed, columns=priced)
    if found is not None:
        return [[order[t] for t in contents] for contents in found], []
    charge(COLUMN_ENTRY * len(priced) * len(sizes))  # each column read back as a tuple
    rows = np.array(list(priced), dtype=np.int64).reshape(len(priced), len(sizes))
    return None, list(map(tuple, rows[:, np.argsort(order)].tolist()))  # the caller's order


def zero_slack(capacity: int, sizes: list[int], demand: list[int], bins: int) -> bool:
    """Whether the items fill `bins` bins exactly."""
    return sum(s * n for s, n in zip(sizes, demand, strict=True)) == bins * capacity


def pack(capacity: int, sizes: list[int], demand: list[int], bins: int, *,
         deadline: float, seed: int, columns: Columns | None = None
         ) -> list[list[int]] | None:
    """A packing of `demand` items of `sizes` (in decreasing order) into `bins` full bins, as
    lists of type indexes; None where the items do not fill `bins` bins exactly, where the
    dive ends without one, or at `deadline`. Every full pattern listed or priced is added to
    `columns` when given."""
    if not zero_slack(capacity, sizes, demand, bins):
        return None
    listed = few_item_patterns(capacity, sizes, demand, 0, most_items=START_ITEMS,
                               limit=START_PATTERNS, deadline=deadline) or []
    columns = Columns(len(sizes)) if columns is None else columns
    for pattern in listed:
        counts = [0] * len(sizes)
        for t, k in pattern:
            counts[t] += k
        columns[tuple(counts)] = None
    found = _dive(capacity, sizes, demand, bins, columns, seed=seed, deadline=deadline,
                  root_deadline=now() + (deadline - now()) * ROOT_SHARE)
    return None if found is None else [[t for t, n in enumerate(p) for _ in range(n)]
                                       for p in found]


def _dive(capacity: int, sizes: list[int], demand: list[int], bins: int, columns: Columns, *,
          seed: int, deadline: float, repair: bool = True,
          root_deadline: float = math.inf) -> list[tuple[int, ...]] | None:
    """Full patterns that hold `demand` in `bins` bins, by a dive from `columns` (new ones
    are added to it), its dead end `repair`ed; None where it ends without (see the module's
    docstring), at `deadline`, or where the root's LP is not solved by `root_deadline`."""
    left = list(demand)
    fixed: list[tuple[int, ...]] = []
    while any(left):
        solved = _node(capacity, sizes, left, columns,
                       deadline if fixed else min(deadline, root_deadline))
        if solved is None:
            return None
        value, used = solved
        if value > bins - len(fixed) + EPSILON:  # an artificial item, or too many bins
            return _repaired(capacity, sizes, fixed, left, bins, columns, seed=seed,
                             deadline=deadline) if repair else None
        chosen = [(p, math.floor(v + EPSILON)) for p, v in used if v > 1 - EPSILON] or [
            (max(used, key=lambda u: u[1])[0], 1)]
        for pattern, copies in chosen:
            for _ in range(copies):
                if all(a <= n for a, n in zip(pattern, left, strict=True)):
                    left = [n - a for a, n in zip(pattern, left, strict=True)]
                    fixed.append(pattern)
    return fixed


class Columns(dict[tuple[int, ...], None]):
    """The full patterns found so far, in the order found (a dict as an ordered set: they are
    added, never removed), with their counts kept as rows of a matrix too: every node of a
    dive asks which of thousands of patterns fit its residual demand (augmented IRUP's 600
    sizes: 3,000 patterns of 600 types, 14 of 20 s in Python's comparisons)."""

    def __init__(self, types: int):
        super().__init__()
        self.matrix = np.zeros((0, types), dtype=np.int64)

    def within(self, left: list[int]) -> list[tuple[int, ...]]:
        """The patterns no count of which exceeds `left`'s, in the order found."""
        patterns = list(self)
        if len(self.matrix) < len(patterns):
            new = np.array(patterns[len(self.matrix):], dtype=np.int64)
            charge(COLUMN_ENTRY * new.size)  # each new pattern's counts read from its tuple
            self.matrix = np.vstack([self.matrix, new])
        charge(TABLE_CELL * self.matrix.size)  # each count compared, in numpy
        fits = (self.matrix <= np.asarray(left, dtype=np.int64)).all(axis=1)
        return [patterns[i] for i in np.flatnonzero(fits).tolist()]


def _node(capacity: int, sizes: list[int], left: list[int], columns: Columns, deadline: float
          ) -> tuple[float, list[tuple[tuple[int, ...], float]]] | None:
    """Column generation over full patterns for the residual demand `left`, from the
    `columns` that fit it (new ones are added to `columns`): the LP's value and the patterns
    it uses with their values; None at `deadline` or where the LP fails twice."""
    patterns = columns.within(left)
    least = sum(s * n for s, n in zip(sizes, left, strict=True)) / capacity  # the LP's least
    lp = _Master(left, patterns)
    while now() < deadline:
        solved = lp.solve(deadline)
        if solved is None:
            lp = _Master(left, patterns)  # the LP gave up on it: rebuilt once
            solved = lp.solve(deadline)
            if solved is None:
                return None
        value, values, duals = solved
        if value <= least + EPSILON:
            new = []  # at the residual's total size over the capacity: the LP is optimal
        else:
            new = [p for p in _priced(capacity, sizes, left, duals) if p not in columns]
        if not new:
            return value, [(p, v) for p, v in zip(patterns, values, strict=True)
                           if v > EPSILON]
        for pattern in new:
            columns[pattern] = None
            patterns.append(pattern)
            lp.add(pattern)
    return None


class _Master:
    """The covering LP of one residual demand over full patterns, with an artificial single
    item per type at `ARTIFICIAL_COST`. It only ever grows by columns, so HiGHS is left to
    choose its simplex: the primal, from a basis that stays primal feasible."""

    def __init__(self, left: list[int], patterns: list[tuple[int, ...]]):
        self.lp = CoverLP(left, choose_simplex=True)
        self.rows = len(left)
        self.nonzeros = 0
        self.use: list[int] = []
        for t, n in enumerate(left):
            if n:
                self.lp.add_column(ARTIFICIAL_COST, {t: 1})
                self.nonzeros += 1
        for pattern in patterns:
            self.add(pattern)

    def add(self, pattern: tuple[int, ...]) -> None:
        index, held = add_column(self.lp, pattern)
        self.use.append(index)
        self.nonzeros += held

    def solve(self, deadline: float) -> tuple[float, list[float], np.ndarray] | None:
        """The LP's value, each pattern's value and the rows' duals; None if not solved (by
        `deadline`, on the wall clock)."""
        charge(LP_ROUND + LP_ENTRY * (self.nonzeros + len(self.use) + self.rows))
        optimal = self.lp.solve(deadline)
        # Full-bin LPs are degenerate: a solve takes a thousand or more iterations, past what
        # `LP_ENTRY` counts.
        charge(LP_PIVOT * self.lp.iterations() * (len(self.use) + self.rows))
        if not optimal:
            return None
        solved, duals = self.lp.solution()
        return self.lp.objective(), solved[self.use].tolist(), duals


def _priced(capacity: int, sizes: list[int], left: list[int], duals: np.ndarray
            ) -> list[tuple[int, ...]]:
    """Full patterns within `left` worth more than 1 at `duals`, most valuable first: the
    best of the exact-weight table and the best full completion of one item of each of the
    `COMPLETIONS` types of highest completed value."""
    values = np.maximum(duals, 0.0)
    # Types of dual 0 add no value and stay out of the table, so a full pattern that needs
    # one is not priced: this column generation finds the dive its columns and proves no
    # bound.
    table = knapsack(capacity, sizes, values.tolist(), left, exact=True)
    weights = np.array(sizes, dtype=np.int64)
    types = np.flatnonzero((values > 0) & (np.array(left) > 0))
    completed = table.best_within(capacity - weights[types]) + values[types]
    ranked = np.argsort(-completed, kind="stable")[:COMPLETIONS]
    order = types[ranked[completed[ranked] > 1 + EPSILON]]  # -inf: no full completion
    rooms = np.concatenate([[capacity], capacity - weights[order]]).astype(np.int64)
    rows = table.patterns(rooms)
    rows[1 + np.arange(len(order)), order] += 1
    if table.best[capacity] <= 1 + EPSILON:  # no full pattern improves (or none exists)
        rows = rows[1:]
    rows = rows[(rows <= np.array(left)).all(axis=1)]
    worth = (rows * values).sum(axis=1)  # not `@`: BLAS threads run uncounted
    charge(COLUMN_ENTRY * rows.size)  # each row read back as a tuple
    return [tuple(rows[i].tolist()) for i in np.argsort(-worth, kind="stable")
            if worth[i] > 1 + EPSILON]


def _repaired(capacity: int, sizes: list[int], fixed: list[tuple[int, ...]], left: list[int],
              bins: int, columns: Columns, *, seed: int, deadline: float
              ) -> list[tuple[int, ...]] | None:
    """The dive's full bins with the items `left` packed too, after a dead end: a few of the
    bins fixed last and as many at random are emptied, and their items with those left are
    packed into as many full bins as are free by the exact cover of every full bin they
    make (`exact_fill.pack_left`) or, where it finds none, by a dive from `columns` without
    repair, `REPAIRS` times at most, more bins emptied each time in turn; None if none
    succeeds."""
    rng = random.Random(seed)
    for attempt in range(REPAIRS):
        if now() >= deadline:
            return None
        emptied = REPAIRED_BINS[attempt % len(REPAIRED_BINS)]
        last = range(max(0, len(fixed) - emptied // 2), len(fixed))
        released = set(last) | set(rng.sample(range(len(fixed)), min(len(fixed), emptied)))
        items = list(left)
        for b in released:
            items = [n + a for a, n in zip(fixed[b], items, strict=True)]
        charge(COLUMN_ENTRY * len(released) * len(items))
        free = bins - len(fixed) + len(released)
        kept = [p for b, p in enumerate(fixed) if b not in released]
        rest = pack_left(capacity, sizes, items, free, deadline=min(deadline, now() + REPAIR_S),
                         seed=rng.randrange(1 << 30))
        if rest is not None:
            return kept + [tuple(contents.count(t) for t in range(len(sizes)))
                           for contents in rest]
        again = _dive(capacity, sizes, items, free, columns, seed=seed, deadline=deadline,
                      repair=False)
        if again is not None:
            return kept + again
    return None
