"""Consistent neighbourhood search: fewer bins for items of several dimensions.

The one-dimensional search (`solvers.partial_search`) carried over to vectors, as Buljubašić
and Vasquez did for two-dimensional vector packing in the same paper ("Consistent
neighborhood search for one-dimensional bin packing and two-dimensional vector packing",
Computers & Operations Research, 2016): to pack the items into m bins, keep m - 2 bins that
hold their items within capacity in every dimension and a set S of items left out, and make S
lighter until its items fit into two bins. Every state is a partial packing that holds:

- a tabu search over exchanges of a few items: none, one or two of a bin's items go to S and
  one or two of S's go in, if the bin still holds them in every dimension. The move that
  leaves S lightest wins (then the one that leaves S more and smaller items), ties drawn at
  random; an item that moved into a bin may not leave it for a few iterations;
- when that stalls, a descent that refills each bin with the heaviest subset of its items and
  S's that fits (every subset of a bounded number of them, checked in every dimension at once
  as a product of a 0/1 matrix and the sizes), which exchanges several items at once.

An item's weight is the sum of its shares of each dimension's capacity, so a lighter S has
less to place in every dimension on the whole. S fits into two bins when every subset of S
(up to `SPLIT_ITEMS` items; beyond that first-fit decreasing under each order of the
dimensions' weight) leaves the rest within capacity too. When it does, the packing has m
bins; its three lightest go back to S and the search goes on for m - 1, down to the goal.

Every step charges the clock by its work (the exchanges weighed per dimension, the subsets
summed) and draws its ties from a generator seeded by the solve's seed, so in the
deterministic mode the same input, seed and budget give the same bins.
"""

from __future__ import annotations

import numpy as np

from solvers.clock import charge, now
from solvers.partial_search import subsets, tabu

DELETED = 3  # bins of a packing of m + 1 whose items start S in the search for m bins
TENURE = (3, 10)  # iterations an item that moved stays where it is: drawn in this range
SPLIT_ITEMS = 16  # most items of S whose every split into two bins is tried
REFILL_ITEMS = 14  # most items (a bin's and S's) whose every subset a refill weighs
MOST_REFILLED = 18  # a bin of more items is not refilled (its subsets alone are too many)
MOST_PAIRS = 4_000_000  # most (exchange out, exchange in) pairs one move weighs
MIN_SLACK = 0.05  # the least room (in bins) a dimension is weighed by
SHARE_UNIT = 1_000_000  # an item's weight: its shares of capacity in millionths, summed
ITERATION = 8e-5  # deterministic seconds per tabu iteration, besides its exchanges
OUT = 2e-7  # per exchange out (nothing, one or two of a bin's items) a move weighs
PAIR = 8e-9  # per (exchange out, exchange in) pair a move weighs, besides its dimensions
PAIR_DIMENSION = 2e-9  # per such pair and dimension
SUBSET = 3e-9  # per (subset, item, dimension) entry summed in a split or a refill

Bins = list[list[int]]


def fewer_bins(capacity: tuple[int, ...], sizes: list[tuple[int, ...]], packing: Bins, *,
               goal: int, deadline: float, seed: int) -> Bins:
    """A packing of the same items (lists of item-type indexes, `sizes` by type, one entry per
    dimension) in fewer bins than `packing` when the search finds one before `deadline`, down
    to `goal` bins; else `packing` itself."""
    rng = np.random.default_rng(seed)
    cap = np.asarray(capacity, dtype=np.int64)
    size = np.asarray(sizes, dtype=np.int64).reshape(len(sizes), len(capacity))
    best = [list(b) for b in packing if b]
    while len(best) > max(goal, DELETED) and now() < deadline:
        found = _search(cap, size, best, deadline, rng)
        if found is None:
            break
        best = found
    return best if len(best) < len([b for b in packing if b]) else packing


class _Partial:
    """Bins that hold their items and the items left out (S), by item id; beside each bin,
    what may leave it in one move (nothing, one item or two: rows of two ids, -1 for none)."""

    def __init__(self, size: np.ndarray, weight: np.ndarray, bins: Bins, out: list[int]):
        self.size = np.vstack([size, np.zeros(size.shape[1], dtype=np.int64)])  # id -1: none
        self.weight = np.append(weight, 0)
        self.rows = [list(b) for b in bins]
        self.load = np.array([self.size[b].sum(axis=0) for b in bins], dtype=np.int64)
        self.leaving = [subsets(b) for b in bins]
        self.out = list(out)

    def left_weight(self) -> int:
        return int(self.weight[self.out].sum()) if self.out else 0

    def set_row(self, row: int, items: list[int]) -> None:
        self.rows[row] = items
        self.load[row] = self.size[items].sum(axis=0) if items else 0
        self.leaving[row] = subsets(items)


def _search(cap: np.ndarray, size: np.ndarray, packing: Bins, deadline: float,
            rng: np.random.Generator) -> Bins | None:
    """A packing in len(packing) - 1 bins, or None by the deadline."""
    kinds = np.array([t for b in packing for t in b], dtype=np.int64)
    sizes = size[kinds]
    share = sizes / np.maximum(cap, 1)
    slack = np.maximum(len(packing) - 1 - share.sum(axis=0), MIN_SLACK)  # bins' worth to spare
    weight = (share * (slack.min() / slack) * SHARE_UNIT).astype(np.int64).sum(axis=1)
    ids, start = [], 0
    for b in packing:
        ids.append(list(range(start, start + len(b))))
        start += len(b)
    loads = np.array([weight[b].sum() for b in ids])
    order = np.lexsort((rng.random(len(ids)), loads))  # lightest first, ties at random
    deleted = set(order[:DELETED].tolist())
    partial = _Partial(sizes, weight, [b for i, b in enumerate(ids) if i not in deleted],
                       [i for d in sorted(deleted) for i in ids[d]])
    found = tabu(partial, len(partial.weight), deadline,
                 finished=lambda p: _finished(cap, p),
                 descend=lambda p: _descend(cap, p, rng),
                 move=lambda p, frozen, iteration: _move(cap, p, frozen, iteration, rng))
    if found is None:
        return None
    return [[int(kinds[i]) for i in b] for b in found]


def _finished(cap: np.ndarray, partial: _Partial) -> Bins | None:
    """The full packing when the items left out fit into two bins (or one)."""
    out = partial.out
    total = partial.size[out].sum(axis=0) if out else np.zeros_like(cap)
    if (total > 2 * cap).any():
        return None
    if (total <= cap).all():
        last = [list(out)] if out else []
    else:
        first = _split(cap, partial.size[out], partial.weight[out])
        if first is None:
            return None
        taken = set(first)
        last = [[out[k] for k in first], [i for k, i in enumerate(out) if k not in taken]]
    return [list(r) for r in partial.rows] + last


def _split(cap: np.ndarray, size: np.ndarray, weight: np.ndarray) -> list[int] | None:
    """Positions of items that fill one bin while the others fill a second, or None."""
    count = len(size)
    if count <= SPLIT_ITEMS:
        # the first item in the first bin: every other item in or out, each split once
        chosen = _masks(count - 1)
        loads = chosen @ size[1:] + size[0]
        charge(SUBSET * len(chosen) * count * size.shape[1])
        fits = ((loads <= cap) & (size.sum(axis=0) - loads <= cap)).all(axis=1)
        if not fits.any():
            return None
        row = chosen[int(np.argmax(fits))]
        return [0, *(1 + np.flatnonzero(row)).tolist()]
    for key in (weight, *size.T):  # first-fit decreasing into two bins
        order = np.argsort(-key, kind="stable")
        load = np.zeros((2, size.shape[1]), dtype=np.int64)
        placed: list[list[int]] = [[], []]
        for k in order.tolist():
            b = next((b for b in (0, 1) if (load[b] + size[k] <= cap).all()), None)
            if b is None:
                break
            load[b] += size[k]
            placed[b].append(k)
        else:
            return placed[0]
    return None


def _masks(count: int) -> np.ndarray:
    """Every subset of `count` positions as a row of 0/1."""
    return ((np.arange(1 << count)[:, None] >> np.arange(count)) & 1).astype(np.int64)


def _move(cap: np.ndarray, partial: _Partial, frozen: np.ndarray, iteration: int,
          rng: np.random.Generator) -> bool:
    """The best exchange between one bin and S (items out: none, one or two; in: one or two)
    that every dimension holds; False when there is none."""
    if not partial.out:
        return False
    size, weight = partial.size, partial.weight
    ins = subsets(partial.out)[1:]  # S's items alone and in pairs
    outs = np.concatenate(partial.leaving)
    row_of = np.repeat(np.arange(len(partial.rows)), [len(x) for x in partial.leaving])
    outs, row_of, ins = _bounded(outs, row_of, ins, rng)
    in_size = size[ins[:, 0]] + size[ins[:, 1]]
    in_weight = weight[ins[:, 0]] + weight[ins[:, 1]]
    in_count = (ins >= 0).sum(axis=1)
    a, b = outs[:, 0], outs[:, 1]
    movable = frozen <= iteration  # the id -1 reads the entry past the items: movable
    room = cap - partial.load[row_of] + size[a] + size[b]  # per exchange out, per dimension
    fits = (in_size[None, :, :] <= room[:, None, :]).all(axis=2)
    fits &= (movable[a] & movable[b])[:, None]
    charge(ITERATION + OUT * len(outs) + fits.size * (PAIR + PAIR_DIMENSION * len(cap)))
    valid = np.flatnonzero(fits)
    if not len(valid):
        return False
    out_at, in_at = np.divmod(valid, fits.shape[1])
    gain = in_weight[in_at] - weight[a[out_at]] - weight[b[out_at]]
    count = (a[out_at] >= 0).astype(np.int64) + (b[out_at] >= 0) - in_count[in_at]
    key = gain * 8.0 + count + rng.random(len(valid))
    best = int(np.argmax(key))
    best_out, best_in = out_at[best], in_at[best]
    row = int(row_of[best_out])
    leaving = [int(i) for i in outs[best_out] if i >= 0]
    coming = [int(i) for i in ins[best_in] if i >= 0]
    partial.set_row(row, [i for i in partial.rows[row] if i not in leaving] + coming)
    partial.out = [i for i in partial.out if i not in coming] + leaving
    frozen[coming] = iteration + rng.integers(TENURE[0], TENURE[1] + 1)
    return True


def _bounded(outs: np.ndarray, row_of: np.ndarray, ins: np.ndarray,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exchanges a move weighs, at most `MOST_PAIRS` pairs of them: where bins or S hold
    so many items that their pairs are too many, single items only, and then the exchanges
    out drawn at random."""
    if len(outs) * len(ins) <= MOST_PAIRS:
        return outs, row_of, ins
    single = outs[:, 1] < 0
    outs, row_of, ins = outs[single], row_of[single], ins[ins[:, 1] < 0]
    most = max(MOST_PAIRS // len(ins), 1)
    if len(outs) > most:
        drawn = np.sort(rng.permutation(len(outs))[:most])
        outs, row_of = outs[drawn], row_of[drawn]
    return outs, row_of, ins


def _descend(cap: np.ndarray, partial: _Partial, rng: np.random.Generator) -> bool:
    """Refill bins in random order with the heaviest subset of their items and some of S's
    (the heaviest first, `REFILL_ITEMS` in all) that fits; True when S got lighter."""
    improved = False
    for row in rng.permutation(len(partial.rows)).tolist():
        if not partial.out:
            break
        inside = partial.rows[row]
        if len(inside) > MOST_REFILLED:
            continue
        room = max(REFILL_ITEMS - len(inside), 0)
        outside = sorted(partial.out, key=lambda i: -int(partial.weight[i]))[:room]
        items = np.array(inside + outside, dtype=np.int64)
        chosen = _masks(len(items))
        loads = chosen @ partial.size[items]
        charge(SUBSET * len(chosen) * len(items) * len(cap))
        value = np.where((loads <= cap).all(axis=1), chosen @ partial.weight[items], -1)
        best = int(np.argmax(value))
        if value[best] <= partial.weight[inside].sum():
            continue
        kept = items[chosen[best] == 1].tolist()
        staying = set(kept)
        partial.out = [i for i in partial.out + inside if i not in staying]
        partial.set_row(row, kept)
        improved = True
    return improved
