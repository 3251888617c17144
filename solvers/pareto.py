"""A knapsack whose work scales with the undominated patterns, not with the capacity.

The pricing table of `solvers.pricing` sweeps every room from 0 to the capacity once per
piece: at capacities of hundreds of thousands with hundreds of item types that is billions of
cells a round. Nemhauser and Ullmann ("Discrete dynamic programming and capital allocation",
Management Science, 1969) keep instead only the undominated (weight, value) states: a state is
dropped when another weighs no more and is worth at least as much. Each piece (a type's copies
split in powers of two, as in the table) merges the list with a copy of itself shifted by the
piece, in numpy, so a round costs what the lists hold.

Column generation needs the exact most valuable pattern only when it is worth more than 1
(a column that improves, or Farley's bound over its value); below that, 1 itself bounds every
pattern's value. So a state is also dropped when even filling its room at the best value per
unit of size of the pieces still to merge (merged in decreasing order of that ratio) cannot
lift it above `floor`, or up to the best state so far: the bound of branch and bound for the
knapsack (Dantzig's), with the best state as incumbent, applied to the whole list at once.
The list then holds only near-best patterns, which is what keeps it short on large
capacities. Pricing wants several improving columns a round, not the best one alone (one
a round, column generation on GI's 250 sizes had not converged in its share of the time), so
it lowers that bar to the floor plus a share (`NEAR_BEST`) of the best state's gain over it:
the list then ends with the runners-up too, each an undominated pattern worth more than the
floor. Above `floor` the best value is exact; at or below it, `top` reports `floor`, which
bounds every pattern's value all the same. The best pattern within a smaller room (the
completions `solvers.pricing` adds besides the best pattern) is the best the list kept: a
column that fits, not necessarily the best one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from solvers.clock import PARETO_STATE, PRICE_ENTRY, TABLE_PIECE, charge, now

MAX_STATES = 3_000_000  # states kept over all merges at most (each a parent and a flag)
# A state is kept while it could reach the floor plus this share of the best state's gain
# over the floor: 1 keeps only the best pattern's path; below it the list ends with the
# runners-up too, each an improving column of its own.
NEAR_BEST = 0.5


@dataclass(frozen=True)
class Frontier:
    """The undominated states after every piece, ascending in weight and strictly in value,
    and for each merge, where each of its states came from: `parents[i]` indexes the states
    before piece i, `took[i]` says whether piece i was added."""

    weights: list[int]
    pieces: list[tuple[int, int]]  # (type, copies)
    weight: np.ndarray
    value: np.ndarray
    parents: list[np.ndarray]
    took: list[np.ndarray]
    floor: float

    def best_within(self, rooms: np.ndarray) -> np.ndarray:
        """The most valuable state's value within each room (the empty state is never
        dropped, so every room has one)."""
        return self.value[self._states(rooms)]

    def top(self) -> tuple[float, int]:
        """The best value, `floor` where none kept passes it, and the room that holds it."""
        return max(float(self.value[-1]), self.floor), int(self.weight[-1])

    def runners_up(self, most: int) -> np.ndarray:
        """The rooms of the `most` most valuable states worth more than the floor after the
        best: with `knapsack`'s `near_best` below 1 the list ends with several, each a
        pattern of its own."""
        above = np.flatnonzero(self.value[:-1] > self.floor + 1e-12)
        return self.weight[above[np.argsort(-self.value[above], kind="stable")[:most]]]

    def _states(self, rooms: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.weight, rooms, side="right") - 1

    def patterns(self, rooms: np.ndarray) -> np.ndarray:
        """The most valuable kept pattern within each room, as rows of counts per type."""
        counts = np.zeros((len(rooms), len(self.weights)), dtype=np.int64)
        state = self._states(np.asarray(rooms, dtype=np.int64))
        charge(TABLE_PIECE * len(self.pieces) + PRICE_ENTRY * counts.size)
        for i in range(len(self.pieces) - 1, -1, -1):
            taken = self.took[i][state]
            if taken.any():
                t, copies = self.pieces[i]
                counts[taken, t] += copies
            state = self.parents[i][state]
        return counts


def split(capacity: int, weights: list[int], values: list[float], demand: list[int]
          ) -> list[tuple[int, int]]:
    """Each type of positive value as pieces of 1, 2, 4, ... copies (what is left last), in
    type order, as (type, copies): every count up to its demand, or what fits, is a sum of
    distinct pieces, so a knapsack that takes each piece at most once (this list's, and the
    table of `solvers.pricing`) holds any number of each type. Items of size 0 fit any
    pattern, all of them: their value counts, or Farley's bound over the best pattern's value
    would pass the optimum."""
    pieces = []
    for t, n in enumerate(demand):
        n = min(n, capacity // weights[t]) if weights[t] else n
        if values[t] <= 0:
            continue
        k = 1
        while n > 0:
            take = min(k, n)
            pieces.append((t, take))
            n -= take
            k *= 2
    return pieces


def _pieces(capacity: int, weights: list[int], values: list[float], demand: list[int]
            ) -> list[tuple[int, int]]:
    """`split`'s pieces in decreasing order of value per unit of size (items of size 0
    first: they add value for no room)."""
    pieces = split(capacity, weights, values, demand)
    ratio = [values[t] / weights[t] if weights[t] else np.inf for t, _ in pieces]
    return [pieces[i] for i in sorted(range(len(pieces)), key=lambda i: -ratio[i])]


def knapsack(capacity: int, weights: list[int], values: list[float], demand: list[int],
             floor: float, near_best: float = 1.0, *,
             deadline: float = math.inf) -> Frontier | None:
    """The undominated patterns that could be worth more than `floor` and at least the floor
    plus `near_best` of the best pattern's gain over it; None when they would pass
    `MAX_STATES` over all merges, or at `deadline` (the caller prices another way)."""
    pieces = _pieces(capacity, weights, values, demand)
    # The best value per unit of size among the pieces after each one: what its room can add.
    after = [0.0] * len(pieces)
    for i in range(len(pieces) - 2, -1, -1):
        t = pieces[i + 1][0]
        after[i] = max(after[i + 1], values[t] / weights[t] if weights[t] else np.inf)
    weight, value = np.zeros(1, dtype=np.int64), np.zeros(1)
    parents: list[np.ndarray] = []
    took: list[np.ndarray] = []
    stored = 0
    for i, (t, copies) in enumerate(pieces):
        w, v = weights[t] * copies, values[t] * copies
        shifted = np.flatnonzero(weight + w <= capacity)
        both_w = np.concatenate([weight, weight[shifted] + w])
        both_v = np.concatenate([value, value[shifted] + v])
        source = np.concatenate([np.arange(len(weight)), shifted])
        added = np.arange(len(both_w)) >= len(weight)
        charge(TABLE_PIECE + PARETO_STATE * len(both_w))
        order = np.lexsort((-both_v, both_w))  # by weight, the most valuable first
        sorted_v = both_v[order]
        lighter = np.maximum.accumulate(np.concatenate([[-np.inf], sorted_v[:-1]]))
        keep = sorted_v > lighter + 1e-12  # worth more than every lighter state
        if after[i] < np.inf:
            # States that cannot pass the floor, nor come near the best state so far, the
            # empty one kept.
            reach = sorted_v + after[i] * (capacity - both_w[order])
            best = sorted_v[keep].max()
            bar = best if near_best >= 1 else best - (1 - near_best) * max(best - floor, 0.0)
            keep &= ((reach > floor + 1e-12) & (reach >= bar - 1e-12)) | (both_w[order] == 0)
        kept = order[keep]
        weight, value = both_w[kept], both_v[kept]
        parents.append(source[kept].astype(np.int32))
        took.append(added[kept])
        stored += len(kept)
        if stored > MAX_STATES or now() > deadline:
            return None
    return Frontier(weights, pieces, weight, value, parents, took, floor)
