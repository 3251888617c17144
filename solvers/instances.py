"""Readers for the classic packing benchmark formats, as engine problems.

Each distinct item becomes one group whose count is its multiplicity, so identical items are
aggregated exactly as identical model replicas are.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from solvers.problem import Group, Option, Pool, Problem


def _single_pool(capacity: tuple[int, ...], items: Counter, max_bins: int) -> Problem:
    pool = Pool("bins", capacity, gpus_per_node=1, node_cost=1, max_nodes=max(max_bins, 1))
    groups = tuple(Group(f"item{i}", (Option("bins", size, count),))
                   for i, (size, count) in enumerate(sorted(items.items(), reverse=True)))
    dims = tuple(f"d{i}" for i in range(len(capacity)))
    return Problem(dims, (pool,), groups)


def read_bpp(path: Path) -> Problem:
    """BPPLIB text: n, capacity, then n weights (CRLF tolerated)."""
    numbers = [int(x) for x in path.read_text().split()]
    count, capacity, weights = numbers[0], numbers[1], numbers[2:]
    if len(weights) != count:
        raise ValueError(f"{path}: expected {count} weights, found {len(weights)}")
    return _single_pool((capacity,), Counter((w,) for w in weights), count)


def read_vbp(path: Path) -> Problem:
    """`.vbp`: dimensions, capacities, item types, then weights and demand per type."""
    numbers = [int(x) for x in path.read_text().split()]
    dims = numbers[0]
    capacity = tuple(numbers[1:1 + dims])
    types = numbers[1 + dims]
    items: Counter = Counter()
    rest = numbers[2 + dims:]
    for t in range(types):
        row = rest[t * (dims + 1):(t + 1) * (dims + 1)]
        items[tuple(row[:dims])] += row[dims]
    return _single_pool(capacity, items, sum(items.values()))
