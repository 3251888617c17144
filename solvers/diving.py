"""Diving with limited discrepancy search over the pattern LP (items of one dimension).

Rounding a converged LP lands a GPU or two above the optimum on hard instances, and solving
the LP again after each rounding (a dive) often closes one of them, but not when the optimum
equals the LP bound: a single wrong early choice leaves items that fit nowhere at the end.
After Sadykov, Vanderbeck, Pessoa, Tahiri and Uchoa, "Primal heuristics for branch and price:
the assets of diving methods" (INFORMS Journal on Computing, 2019):

- a node is the residual problem (the items the GPUs fixed so far leave); its master LP is
  solved by column generation, pricing restricted to the residual demand as
  `solvers.pricing` prices (several columns a round, smoothed duals; by the undominated list
  where the whole demand's table is too large, and there quick pricing first, as column
  generation's own rounds do, the list only where it finds no column), stopped as soon as
  its bound is proven. Where the list grows past its limit (at a child's duals, or at the
  root's: GI's csBB500_3 and csBB500_5 ended their searches there) or has taken
  `LISTING_SHARE` of the search's time, the nodes price quickly only, each bounded by
  Farley's bound or its items' size: the root's LP over columns read back from column
  generation's, without its pair exchanges, can take dozens of rounds of the list to
  converge (45 on GI's csAA500_10, the search's whole time at 10 s, after which nothing
  was left to dive; with the share, GI's 500 sizes reached 60 and 57 of 80 optima in two
  wall runs, where they reached 55 before, 53 without the share);
- the node fixes one column, rounded up (the one closest to its ceiling, the most used of
  equals), as many copies as the residual demand allows, and dives into the child; that
  child fixes with it every column the LP uses a whole number of times (the LP's solution
  stays feasible for the child, so its bound holds): a dive then takes fewer nodes, where
  one node a column left GI's dives of 250 sizes a third of the way down at their deadline,
  and the time saved goes to more dives (hard-28: 25 of 28 at the optimum against 23 with
  one column a node); where nodes price by the undominated list (large capacities, where
  each node costs most), the child fixes every column the LP uses at least once, its value
  rounded down, which the same argument allows: on GI's csBB500_1 a dive of 5,331 items
  took 40 nodes, not more than 94 (at its deadline, a quarter of the items still unpacked),
  and reached the optimum; on hard-28 (priced by table) it cost BPP144 its optimum, so
  there nodes keep to whole columns; a node hands on only the columns its LP uses;
- a node whose LP bound plus the GPUs fixed cannot beat the best packing is pruned, and the
  search backtracks: near the root (up to `max_depth` columns fixed), a node also tries its
  next columns, each earlier one put on a tabu list (not fixed again below it), as long as
  the path holds at most `max_discrepancy` such discrepancies;
- every node also rounds its LP at once (`patterns.round_columns`), which completes the
  packing when the LP is integral;
- a tree done before the deadline without a packing at the bound is searched again one
  column deeper with one discrepancy more, as Harvey and Ginsberg's limited discrepancy
  search ("Limited discrepancy search", IJCAI 1995) raises its limit an iteration at a time,
  while the wider tree solves more nodes than the last: the time a narrow tree leaves goes
  to a wider one. The first tree takes the path of a search without widening; the wider
  ones start from every column priced so far;
- or, for a second search raced beside this one (`solvers.race`), the columns are taken in
  an order shuffled from a seed, so that the degenerate root LP lands on another vertex, and
  where nodes price by table each dive starts again from the root over every column priced
  so far in another order (`_restarted`): restarts rather than backtracking, as randomised
  restarts diversify a heavy-tailed search (Gomes, Selman and Kautz, "Boosting
  combinatorial search through randomization", AAAI 1998).

One LP serves every node (`_Master`): a node sets the rows to its residual demand and closes
the columns that no longer fit it, so HiGHS's dual simplex starts again from the last basis
rather than from a model rebuilt column by column. The search stops at a packing with `goal`
GPUs (the lower bound), when the tree is done, or at its deadline; every LP solve charges the
clock by the LP's size and its pivots (`LP_WARM_ENTRY`, `LP_DUAL_PIVOT`, `LP_COLD_PIVOT` for
the root's from no basis), every pricing table as column generation's do.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from solvers.clock import (
    COLUMN_ENTRY,
    LP_COLD_PIVOT,
    LP_DUAL_PIVOT,
    LP_ROUND,
    LP_WARM_ENTRY,
    STEP,
    charge,
    now,
)
from solvers.lp import CoverLP
from solvers.patterns import (
    NEW_COLUMNS,
    QUICK_SEEDS,
    Load,
    add_column,
    fits_table,
    price_quickly,
    round_columns,
)
from solvers.pricing import Pricer, add_exchanges

EPSILON = 1e-6
# The share of the search's time its nodes may spend pricing by the undominated list (large
# capacities): past it they price quickly only (`_Master.listed_until`), so a root that
# does not converge leaves the other half to diving.
LISTING_SHARE = 1 / 2


class _Master:
    """The pattern LP over every column found so far, its rows set to one node's residual
    demand at a time (at least that many of each type), the columns that do not fit that
    demand held at zero."""

    def __init__(self, capacity: int, weights: list[int], columns: list[tuple[int, ...]],
                 sparse: bool):
        self.capacity, self.weights = capacity, weights
        self.sizes: list[Load] = [(w,) for w in weights]  # as quick pricing reads them
        self.sparse = sparse  # priced by the undominated list (`solvers.pareto`), no table
        # Until when nodes may price by that list: minus infinity once it grew too long,
        # quick pricing only after.
        self.listed_until = math.inf
        # A node only raises or lowers the rows' bounds and closes or opens columns, so the
        # last basis stays dual feasible: the dual simplex goes on from it.
        self.lp = CoverLP([0] * len(weights))
        self.patterns: list[tuple[int, ...]] = []
        self.known: set[tuple[int, ...]] = set()
        self.index: list[int] = []  # each pattern's column's index in the LP
        self.nonzeros = 0
        # The patterns as rows: `matrix` views the first rows of `storage`, which grows by
        # doubling, so the columns a node prices do not copy every earlier one.
        self.storage = np.zeros((0, len(weights)), dtype=np.int64)
        self.matrix = self.storage
        self.open = np.zeros(0, dtype=bool)  # whether each column fits the node's demand
        singles = [tuple(int(t == i) for t in range(len(weights))) for i in range(len(weights))]
        for pattern in dict.fromkeys(singles + columns):  # singles keep every residual LP feasible
            self._add(pattern)
        self.nonzeros += 2 * len(add_exchanges(self.lp, weights))

    def _add(self, pattern: tuple[int, ...]) -> None:
        self.known.add(pattern)
        self.patterns.append(pattern)
        index, held = add_column(self.lp, pattern)  # written once, kept for every node
        self.index.append(index)
        self.nonzeros += held

    def _sync(self) -> None:
        """The columns priced since the last call as rows of `matrix`, open: pricing keeps
        to the residual demand, so they fit it."""
        synced = len(self.matrix)
        added = self.patterns[synced:]
        if not added:
            return
        if len(self.patterns) > len(self.storage):
            grown = np.zeros((max(2 * len(self.storage), len(self.patterns)), len(self.weights)),
                             dtype=np.int64)
            grown[:synced] = self.matrix
            self.storage = grown
        self.storage[synced:len(self.patterns)] = np.array(added, dtype=np.int64)
        self.matrix = self.storage[:len(self.patterns)]
        self.open = np.append(self.open, np.ones(len(added), bool))

    def _set_demand(self, left: tuple[int, ...]) -> None:
        self.lp.set_lower(left)
        self._sync()
        fits: np.ndarray = np.all(self.matrix <= np.array(left, dtype=np.int64), axis=1)
        changed = np.flatnonzero(fits != self.open)
        self.lp.set_upper([self.index[i] for i in changed.tolist()],
                          np.where(fits[changed], np.inf, 0.0).tolist())
        self.open = fits

    def solve(self, left: tuple[int, ...], deadline: float
              ) -> tuple[int, list[tuple[int, ...]], list[float], np.ndarray] | None:
        """Column generation for the residual demand `left`: the GPUs it needs at least (the
        LP bound, proven by Farley's bound or the items' total size as soon as it can be, or
        Farley's when cut short; where the undominated list grows too long or its time,
        `listed_until`, runs out, the LP quick pricing reached, bounded so, later nodes
        pricing quickly only: on GI's csBB500_5 the root's list overflowed and the search
        ended there, before its first dive), and the columns the LP uses with their values,
        also as rows of counts: rounding and ranking take no other, and reading every open
        column as a dense tuple cost a node a third of its time on hard-28 and more than its
        LP on large capacities (rounding reads the rows: converting the tuples again took
        half of rounding's time, a twelfth of the search's, on augmented IRUP's 600 sizes).
        None at `deadline`."""
        self._set_demand(left)
        pricer = Pricer(self.capacity, self.weights, list(left), sparse=self.sparse)
        floor = -(-sum(w * n for w, n in zip(self.weights, left, strict=True)) // self.capacity)
        bound = 0
        found: list[tuple[int, ...]] | None = []  # None: not priced to the end
        while now() < deadline:
            charge(LP_ROUND
                   + LP_WARM_ENTRY * (self.nonzeros + len(self.patterns) + len(self.weights)))
            # A node's LP may take thousands of pivots (no packing at the bound: augmented
            # non-IRUP's), the root's from no basis tens of thousands.
            pivot = LP_DUAL_PIVOT if self.lp.has_basis() else LP_COLD_PIVOT
            optimal = self.lp.solve(deadline)
            charge(pivot * self.lp.iterations() * (len(self.patterns) + len(self.weights)))
            if not optimal:
                return None
            value = self.lp.objective()
            solved, duals = self.lp.solution()
            if math.ceil(value - EPSILON) > max(bound, floor):
                priced_at = duals.tolist()
                quick = price_quickly((self.capacity,), self.sizes, priced_at, list(left),
                                      self.known, QUICK_SEEDS) if self.sparse else []
                if quick:
                    for pattern in quick[:NEW_COLUMNS]:
                        self._add(pattern)
                    continue
                found = None if now() >= self.listed_until else pricer.round(
                    priced_at, self.known, deadline=min(deadline, self.listed_until))
                if found is None and now() >= deadline:
                    return None
                if found is None:
                    self.listed_until = -math.inf
                bound = max(bound, pricer.bound)
                if found:
                    for pattern in found:
                        self._add(pattern)
                    continue
            if found is not None:  # priced to the end: the LP's value bounds the node
                bound = max(bound, math.ceil(value - EPSILON))
            bound = max(bound, floor)
            self._sync()
            columns = np.flatnonzero(self.open)
            values = solved[np.array(self.index, dtype=np.int64)[columns]].tolist()
            used = [k for k, v in enumerate(values) if v > EPSILON]
            chosen = columns[used]
            return (bound, [self.patterns[c] for c in chosen.tolist()],
                    [values[k] for k in used], self.matrix[chosen])
        return None


@dataclass(frozen=True)
class _Branch:
    """A child still to explore: the parent's state and the column the child fixes."""

    fixed: tuple[tuple[int, ...], ...]  # the GPUs fixed so far, as counts per type
    left: tuple[int, ...]  # the residual demand
    column: tuple[int, ...] | None  # what the child fixes (None: the root itself)
    copies: int
    tabu: frozenset[tuple[int, ...]]  # columns this subtree may not fix
    depth: int  # columns fixed on the path
    discrepancies: int  # times the path took a column other than the first choice
    # The columns the parent's LP used a whole number of times (on large capacities, each
    # column it used at least once, rounded down), fixed with the first choice (where they
    # still fit): that LP's solution stays feasible for the child, so its bound holds, and
    # one node takes them all instead of one node each.
    whole: tuple[tuple[tuple[int, ...], int], ...] = ()


def _candidates(patterns: list[tuple[int, ...]], values: list[float],
                tabu: frozenset[tuple[int, ...]]) -> list[tuple[tuple[int, ...], int]]:
    """The columns the LP uses and the tabu list allows, with their copies rounded up: the one
    closest to its ceiling first, the most used of equals, then in column order."""
    used = [(math.ceil(v - EPSILON) - v, -v, i) for i, v in enumerate(values)
            if v > EPSILON and patterns[i] not in tabu]
    return [(patterns[i], math.ceil(values[i] - EPSILON)) for _, _, i in sorted(used)]


def _whole(patterns: list[tuple[int, ...]], values: list[float],
           tabu: frozenset[tuple[int, ...]], *, rounded_down: bool = False
           ) -> list[tuple[tuple[int, ...], int]]:
    """The columns the LP uses a whole number of times (at least once), with that number;
    where `rounded_down`, every column it uses at least once, its value rounded down."""
    return [(p, math.floor(v + EPSILON)) for p, v in zip(patterns, values, strict=True)
            if v > 1 - EPSILON and p not in tabu
            and (rounded_down or abs(v - round(v)) <= EPSILON)]


def _fix(fixed: tuple[tuple[int, ...], ...], left: tuple[int, ...], column: tuple[int, ...],
         copies: int) -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...]]:
    """The column fixed `copies` times, fewer where the residual demand runs out (it fits the
    demand of the node that chose it at least once)."""
    most = min(n // a for n, a in zip(left, column, strict=True) if a)
    copies = max(1, min(copies, most))
    rest = tuple(n - a * copies for n, a in zip(left, column, strict=True))
    return fixed + (column,) * copies, rest


def _as_bins(fixed: tuple[tuple[int, ...], ...]) -> list[list[int]]:
    return [[t for t, n in enumerate(column) for _ in range(n)] for column in fixed]


def search(capacity: Load, sizes: list[Load], demand: list[int],
           columns: list[tuple[int, ...]], deadline: float, *, most: int, goal: int,
           max_discrepancy: int = 3, max_depth: int = 2, widen: bool = True,
           round_down: bool = False, restart_seed: int | None = None
           ) -> list[list[int]] | None:
    """A packing into fewer than `most` GPUs, the fewest found, by diving with limited
    discrepancy search from `columns` (those of column generation over the whole demand);
    None when none is found before `deadline` or the widest tree is done. Stops at `goal`
    GPUs. A tree done without a packing at `goal` is searched again one column deeper with
    one discrepancy more (where `widen`), while a wider tree still reaches nodes the last
    one did not. With `round_down`, a child fixes every column the LP uses at least once,
    its value rounded down, on any capacity (shorter dives, for the raced search's rival:
    on hard-28 it misses BPP144, which whole columns pack). With `restart_seed`, the columns
    are taken in an order shuffled from it, and the search restarts instead of backtracking
    (`_restarted`) where nodes price by table (on large capacities a restart's root, priced
    by the undominated list, takes seconds: GI's csBA500_12 ended 17 GPUs over in two of
    four raced runs so). Items of one dimension only."""
    shuffled = None if restart_seed is None else random.Random(restart_seed)
    if shuffled is not None:
        columns = shuffled.sample(columns, len(columns))
    # Where the whole demand's table is too large, every node prices by the undominated
    # list: the residual demands' tables would fit, but fill every room of a large capacity.
    master = _Master(capacity[0], [s[0] for s in sizes], list(columns),
                     sparse=not fits_table(capacity[0], sizes, demand))
    round_down = round_down or master.sparse
    if master.sparse:
        master.listed_until = now() + (deadline - now()) * LISTING_SHARE
    if shuffled is not None and not master.sparse:
        return _restarted(master, capacity, sizes, demand, deadline, most=most, goal=goal,
                          round_down=round_down, shuffled=shuffled)
    best: list[list[int]] | None = None
    limits, reached = (max_depth, max_discrepancy), 0
    while now() < deadline:
        best, done, nodes = _tree(master, capacity, sizes, demand, deadline, most=most,
                                  goal=goal, best=best, limits=limits, round_down=round_down)
        if not (widen and done) or (best is not None and len(best) <= goal) \
                or nodes <= reached:
            break
        limits, reached = (limits[0] + 1, limits[1] + 1), nodes
    return best


def _restarted(master: _Master, capacity: Load, sizes: list[Load], demand: list[int],
               deadline: float, *, most: int, goal: int, round_down: bool,
               shuffled: random.Random) -> list[list[int]] | None:
    """Dives from the root, each one after the first over a master LP that holds every column
    found so far in an order `shuffled` again, until one reaches `goal` GPUs or the root's
    bound, or the deadline. The root LP of a bin packing is degenerate: the simplex's vertex depends
    on the columns' order, and each vertex rounds and dives its own way, where the limited
    discrepancy search's later dives start from one vertex and, on augmented IRUP's 600
    sizes, end at the same dead end as its first (about 146 GPUs fixed, the residual LP a GPU
    over its items' size). The columns the dives priced also let the root round better: on
    600_20000_DI_11 and DI_33 the second root's rounding alone packed 198 GPUs, the optimum,
    where the first dive ended a GPU over."""
    root = master.solve(tuple(demand), deadline)
    if root is None or root[0] >= most:
        return None
    best: list[list[int]] | None = None
    while now() < deadline:
        best, _, _ = _tree(master, capacity, sizes, demand, deadline, most=most, goal=goal,
                           best=best, limits=(0, 0), round_down=round_down)
        if best is not None and len(best) <= max(goal, root[0]):
            break
        columns = shuffled.sample(master.patterns, len(master.patterns))
        master = _Master(master.capacity, master.weights, columns, sparse=master.sparse)
    return best


def _tree(master: _Master, capacity: Load, sizes: list[Load], demand: list[int],
          deadline: float, *, most: int, goal: int, best: list[list[int]] | None,
          limits: tuple[int, int], round_down: bool
          ) -> tuple[list[list[int]] | None, bool, int]:
    """One search tree within `limits` (columns fixed with discrepancies, discrepancies on a
    path), its children fixing the columns used at least once rounded down where
    `round_down`, else the whole ones: the best packing so far, whether the tree was done
    before the deadline, and the nodes whose LP it solved."""
    max_depth, max_discrepancy = limits
    stack = [_Branch((), tuple(demand), None, 0, frozenset(), 0, 0)]
    nodes = 0
    while stack:
        if now() >= deadline:
            return best, False, nodes
        charge(STEP)
        branch = stack.pop()
        fixed, left = branch.fixed, branch.left
        if branch.column is not None:
            fixed, left = _fix(fixed, left, branch.column, branch.copies)
        charge(COLUMN_ENTRY * len(branch.whole) * len(left))  # each checked and fixed
        for column, copies in branch.whole:
            if all(a <= n for a, n in zip(column, left, strict=True)):
                fixed, left = _fix(fixed, left, column, copies)
        ceiling = len(best) if best is not None else most
        if not any(left):
            if len(fixed) < ceiling:
                best = _as_bins(fixed)
                if len(best) <= goal:
                    return best, True, nodes
            continue
        solved = master.solve(left, deadline)
        if solved is None:
            return best, False, nodes
        nodes += 1
        bound, patterns, values, rows = solved
        # Rounding and ranking read every column handed on, a count for every type.
        charge(COLUMN_ENTRY * len(patterns) * len(left))
        if len(fixed) + bound >= ceiling:
            continue  # pruned: this subtree cannot beat the best packing
        rounded = round_columns(capacity, sizes, list(left), rows, values)
        if len(fixed) + len(rounded) < ceiling:
            best = _as_bins(fixed) + rounded
            if len(best) <= goal:
                return best, True, nodes
        choices = _candidates(patterns, values, branch.tabu)
        whole = _whole(patterns, values, branch.tabu, rounded_down=round_down)
        tried: set[tuple[int, ...]] = set()
        children = []
        for rank, (column, copies) in enumerate(choices):
            if rank and (branch.depth >= max_depth
                         or branch.discrepancies + rank > max_discrepancy):
                break
            children.append(_Branch(fixed, left, column, copies, branch.tabu | tried,
                                    branch.depth + 1, branch.discrepancies + rank,
                                    () if rank else tuple(w for w in whole if w[0] != column)))
            tried.add(column)
        stack.extend(reversed(children))  # the first choice is explored first
    return best, True, nodes
