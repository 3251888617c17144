"""Fit-decreasing packings of vector items under several measures of size, as numpy rows.

One measure of an item's size orders the items and another picks the bin, and which pair
packs best depends on how the dimensions correlate: no one of them wins on every family
(Panigrahy et al., "Heuristics for Vector Bin Packing", 2011). So every pair here is tried and
the best packing kept; the bins of all of them also give column generation a varied first set
of patterns, from which its LP moves off the starting packing in far fewer rounds than from
one packing alone.

Items are ordered decreasing by their largest share of a dimension, their summed shares, or
their summed squared shares; each goes into the open bin that, among those with room, leaves
the room after it nearest to empty in the L2 norm of its shares (Panigrahy et al.'s norm-based
fit, which prefers a bin whose room has the item's shape) or in their sum (best fit); a new
bin when none has room.
"""

from __future__ import annotations

import numpy as np

from solvers.clock import ITEM_FIT, PRICE_ENTRY, charge

Load = tuple[int, ...]


def _shares(capacity: Load, sizes: list[Load]) -> np.ndarray:
    cap = np.array(capacity, dtype=float)
    size = np.array(sizes, dtype=float).reshape(len(sizes), len(capacity))
    return size / np.where(cap > 0, cap, 1)


def _pack(capacity: Load, size: np.ndarray, share: np.ndarray, order: list[int],
          rule: str) -> list[list[int]]:
    """The items (type indexes, in `order`) packed one by one under `rule`."""
    cap = np.array(capacity, dtype=np.int64)
    load = np.zeros((len(order), len(capacity)), dtype=np.int64)
    load_share = np.zeros((len(order), len(capacity)))
    bins: list[list[int]] = []
    for t in order:
        open_ = len(bins)
        charge(ITEM_FIT + PRICE_ENTRY * max(open_, 1) * len(capacity))
        fitting = np.flatnonzero((load[:open_] + size[t] <= cap).all(axis=1))
        if not len(fitting):
            bins.append([])
            b = open_
        elif rule == "l2":
            room = 1 - load_share[fitting] - share[t]
            b = int(fitting[np.argmin((room ** 2).sum(axis=1))])
        else:
            b = int(fitting[np.argmax(load_share[fitting].sum(axis=1))])
        bins[b].append(t)
        load[b] += size[t]
        load_share[b] += share[t]
    return bins


def packings(capacity: Load, sizes: list[Load], demand: list[int]) -> list[list[list[int]]]:
    """One packing (bins of type indexes) per pair of order and fit rule, in a fixed order."""
    share = _shares(capacity, sizes)
    size = np.array(sizes, dtype=np.int64).reshape(len(sizes), len(capacity))
    items = np.repeat(np.arange(len(sizes)), demand)
    found = []
    for key in (share.max(axis=1), share.sum(axis=1), (share ** 2).sum(axis=1)):
        order = items[np.argsort(-key[items], kind="stable")].tolist()
        for rule in ("l2", "best"):
            found.append(_pack(capacity, size, share, order, rule))
    return found
