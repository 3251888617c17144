"""Consistent neighbourhood search: fewer bins for items of one dimension.

To pack the items into m bins, the search keeps m - 2 bins that hold their items within
capacity and a set S of items left out, and makes S lighter until its items fit into two
bins (a subset sum over S says when). The moves change one bin and S together, so every
state is a partial packing that holds:

- a tabu search over exchanges of a few items: none, one or two of a bin's items go to S and
  one or two of S's go in, if the bin still holds them. The move that leaves S lightest wins
  (then the one that leaves S more and smaller items, which pack more easily), ties drawn at
  random; an item that moved may not move again for a few iterations, so no move is undone at
  once and the search walks on across moves that leave S as heavy;
- when that stalls, a descent that refills each bin with the heaviest subset of its items and
  S's that fits (a subset sum as a bitset of the loads it reaches), which exchanges any number
  of items at once.

When S fits into two bins the packing has m bins; its three lightest bins go back to S and
the search goes on for m - 1, down to the lower bound. It starts from the best packing found
so far. This follows Buljubašić and Vasquez, "Consistent neighborhood search for
one-dimensional bin packing and two-dimensional vector packing" (Computers & Operations
Research, 2016), which reaches the best known packings of the hard instances where greedy
packings and rounding stop one bin over.

Every step charges the clock by its work (the moves evaluated, the bitset words shifted) and
draws its ties from a generator seeded by the solve's seed, so in the deterministic mode the
same input, seed and budget give the same bins.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Protocol, TypeVar

import numpy as np

from solvers.clock import BIT_WORD, charge, now

DELETED = 3  # bins of a packing of m + 1 whose items start S in the search for m bins
TENURE = (3, 10)  # iterations an item that moved stays where it is: drawn in this range
STALL = 60  # tabu iterations without a lighter S before a descent over the bins
DESCENT_WORDS = 20_000_000  # most bitset words one descent pass shifts (large capacities)
MOVE = 1.8e-8  # deterministic seconds per (bin, items out) pair a tabu iteration weighs
ITERATION = 3.6e-5  # per tabu iteration, besides its moves
ROW = 1.8e-7  # per bin a tabu iteration gathers the moves of
REFILL = 5e-6  # per bin the descent refills, besides its bitset words
PART_BIN = 1e-5  # per bin of a partial packing set up, its moves listed, besides its items
PART_ITEM = 5e-7  # per item of a partial packing set up

Bins = list[list[int]]
P = TypeVar("P", bound="Partial")


def fewer_bins(capacity: int, sizes: list[int], packing: Bins, *, goal: int, deadline: float,
               seed: int) -> Bins:
    """A packing of the same items (lists of item-type indexes, `sizes` by type) in fewer bins
    than `packing` when the search finds one before `deadline`, down to `goal` bins; else
    `packing` itself."""
    rng = np.random.default_rng(seed)
    best = [list(b) for b in packing if b]
    while len(best) > max(goal, DELETED) and now() < deadline:
        found = _search(capacity, np.asarray(sizes, dtype=np.int64), best, deadline, rng)
        if found is None:
            break
        best = found
    return best if len(best) < len([b for b in packing if b]) else packing


class _Partial:
    """Bins that hold their items and the items left out (S), by item id; beside each bin,
    what may leave it in one move (nothing, one item or two: rows of two ids, -1 for
    none)."""

    def __init__(self, weights: np.ndarray, bins: list[list[int]], out: list[int]):
        charge(PART_BIN * len(bins) + PART_ITEM * len(weights))
        self.weights = np.append(weights, 0)  # the id -1 reads as weight 0
        self.rows = [list(b) for b in bins]
        self.load = np.array([self.weights[b].sum() for b in bins], dtype=np.int64)
        self.leaving = [subsets(b) for b in bins]
        self.out = list(out)

    def left_weight(self) -> int:
        return int(self.weights[self.out].sum()) if self.out else 0

    def set_row(self, row: int, items: list[int]) -> None:
        self.rows[row] = items
        self.load[row] = self.weights[items].sum() if items else 0
        self.leaving[row] = subsets(items)


def _search(capacity: int, sizes: np.ndarray, packing: Bins, deadline: float,
            rng: np.random.Generator) -> Bins | None:
    """A packing in len(packing) - 1 bins (or fewer), or None by the deadline."""
    kinds = np.array([t for b in packing for t in b], dtype=np.int64)
    weights = sizes[kinds]
    ids, start = [], 0
    for b in packing:
        ids.append(list(range(start, start + len(b))))
        start += len(b)
    loads = np.array([weights[b].sum() for b in ids])
    order = np.lexsort((rng.random(len(ids)), loads))  # lightest first, ties at random
    deleted = set(order[:DELETED].tolist())
    partial = _Partial(weights, [b for i, b in enumerate(ids) if i not in deleted],
                       [i for d in sorted(deleted) for i in ids[d]])
    found = tabu(partial, len(partial.weights), deadline,
                 finished=lambda p: _finished(capacity, p),
                 descend=lambda p: _descend(capacity, p, rng),
                 move=lambda p, frozen, iteration: _move(capacity, p, frozen, iteration, rng))
    if found is None:
        return None
    return [[int(kinds[i]) for i in b] for b in found]


class Partial(Protocol):
    """What `tabu` reads of a partial packing: the weight of the items left out (S)."""

    def left_weight(self) -> int: ...


def tabu(partial: P, items: int, deadline: float, *, finished: Callable[[P], Bins | None],
         descend: Callable[[P], bool], move: Callable[[P, np.ndarray, int], bool]
         ) -> Bins | None:
    """Tabu search with descents until S fits into two bins; the full packing, or None. The
    loop of the search in one dimension and in several (`solvers.vector_search`), which
    differ in their steps only: `finished` (the packing once S fits), `descend` (after
    `STALL` iterations without a lighter S; True when S got lighter) and `move` (given when
    each of the `items` ids may move again and the iteration; False when no exchange
    holds)."""
    frozen = np.zeros(items, dtype=np.int64)  # iteration an item may move again
    best_left, stalled, iteration = partial.left_weight(), 0, 0
    while now() < deadline:
        found = finished(partial)
        if found is not None:
            return found
        iteration += 1
        if stalled >= STALL:
            stalled = 0
            if descend(partial):
                continue
        if not move(partial, frozen, iteration):
            stalled += 1
            continue
        left = partial.left_weight()
        if left < best_left:
            best_left, stalled = left, 0
        else:
            stalled += 1
    return None


def _finished(capacity: int, partial: _Partial) -> Bins | None:
    """The full packing when the items left out fit into two bins (or one)."""
    left = partial.left_weight()
    if left > 2 * capacity:
        return None
    if left <= capacity:
        last = [list(partial.out)] if partial.out else []
    else:
        weights = [int(partial.weights[i]) for i in partial.out]
        chosen = _subset_between(weights, left - capacity, capacity)
        if chosen is None:
            return None
        taken = set(chosen)
        last = [[partial.out[k] for k in chosen],
                [i for k, i in enumerate(partial.out) if k not in taken]]
    return [list(r) for r in partial.rows] + last


def _subset_between(weights: list[int], low: int, high: int) -> list[int] | None:
    """Positions of weights whose sum lies in [low, high] (the largest such sum), or None."""
    layers = _reach(weights, high)
    best = layers[-1].bit_length() - 1
    return _trace(weights, layers, best) if best >= low else None


def _reach(weights: list[int], high: int) -> list[int]:
    """layers[k]: the sums up to `high` that the first k weights reach, as bits of an int."""
    mask = (1 << (high + 1)) - 1
    layers = [1]
    for w in weights:
        layers.append(layers[-1] | ((layers[-1] << w) & mask))
    charge(len(weights) * BIT_WORD * (high // 64 + 1))
    return layers


def _trace(weights: list[int], layers: list[int], total: int) -> list[int]:
    """Positions of weights that add up to `total`, a sum the last layer reaches: each weight
    from the last is left out when the sum is reached without it."""
    chosen = []
    for k in range(len(weights), 0, -1):
        if not layers[k - 1] >> total & 1:
            chosen.append(k - 1)
            total -= weights[k - 1]
    return chosen


def _move(capacity: int, partial: _Partial, frozen: np.ndarray, iteration: int,
          rng: np.random.Generator) -> bool:
    """The best exchange between one bin and S (items out: none, one or two; in: one or two);
    False when there is none."""
    if not partial.out:
        return False
    weights = partial.weights
    ins = subsets(partial.out)[1:]  # S's items alone and in pairs
    in_sum = weights[ins[:, 0]] + weights[ins[:, 1]]
    in_count = (ins >= 0).sum(axis=1)
    order = np.lexsort((-in_count, in_sum))  # among equal sums, more items first
    ins, in_sum, in_count = ins[order], in_sum[order], in_count[order]
    outs = np.concatenate(partial.leaving)
    row_of = np.repeat(np.arange(len(partial.rows)), [len(x) for x in partial.leaving])
    a, b = outs[:, 0], outs[:, 1]
    movable = frozen <= iteration  # the id -1 reads the entry past the items: movable
    out_sum = weights[a] + weights[b]
    # the heaviest of S's subsets that fits in place of each one leaving
    pick = np.searchsorted(in_sum, capacity - partial.load[row_of] + out_sum, side="right") - 1
    valid = movable[a] & movable[b] & (pick >= 0)
    charge(ITERATION + MOVE * len(outs) + ROW * len(partial.rows))
    if not valid.any():
        return False
    pick = np.maximum(pick, 0)
    gain = in_sum[pick] - out_sum
    count = (a >= 0).astype(np.int64) + (b >= 0) - in_count[pick]
    key = np.where(valid, gain * 8.0 + count + 2 + rng.random(len(gain)), -np.inf)
    best = int(np.argmax(key))
    row = int(row_of[best])
    leaving = [int(i) for i in outs[best] if i >= 0]
    coming = [int(i) for i in ins[pick[best]] if i >= 0]
    partial.set_row(row, [i for i in partial.rows[row] if i not in leaving] + coming)
    partial.out = [i for i in partial.out if i not in coming] + leaving
    frozen[coming] = iteration + rng.integers(TENURE[0], TENURE[1] + 1)
    return True


@cache
def _pairs(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of positions below `count`, as two index arrays."""
    return np.triu_indices(count, k=1)


def subsets(items: list[int]) -> np.ndarray:
    """Nothing, each item alone and each pair of items, as rows of two ids (-1 for none):
    what may leave a bin or S in one exchange (here and in `solvers.vector_search`)."""
    ids = np.asarray(items, dtype=np.int64)
    first, second = _pairs(len(ids))
    return np.concatenate([[[-1, -1]], np.stack([ids, np.full(len(ids), -1)], axis=1),
                           np.stack([ids[first], ids[second]], axis=1)]).astype(np.int64)


def _descend(capacity: int, partial: _Partial, rng: np.random.Generator) -> bool:
    """Refill bins in random order with the heaviest subset of their items and S's that
    fits; True when S got lighter."""
    improved, words = False, 0
    for row in rng.permutation(len(partial.rows)).tolist():
        if not partial.out or words > DESCENT_WORDS:
            break
        items = sorted(partial.rows[row] + partial.out,
                       key=lambda i: -int(partial.weights[i]))
        sizes = [int(partial.weights[i]) for i in items]
        words += len(items) * (capacity // 64 + 1)
        charge(REFILL)
        layers = _reach(sizes, capacity)
        best = layers[-1].bit_length() - 1
        if best <= partial.load[row]:
            continue
        chosen = [items[k] for k in _trace(sizes, layers, best)]
        inside = set(chosen)
        partial.out = [i for i in items if i not in inside]
        partial.set_row(row, chosen)
        improved = True
    return improved
