"""Lower bounds on GPUs, nodes and cost, so every answer carries a proven gap.

Per pool: the continuous bound (total demand over capacity, per dimension), the Martello-Toth
L2 bound per dimension (large items cannot share a GPU), whole-GPU demand, MIG compute slices,
and the spread rule's minimum node count. Across pools: each group's cheapest fractional cost.
"""

from __future__ import annotations

import math
from collections import Counter

from solvers.problem import Group, Option, Pool, Problem

MIG_COMPUTE_SLICES = 7


def martello_toth_l2(sizes: Counter, capacity: int) -> int:
    """The L2 bound for one-dimensional bin packing of `sizes` (size -> count) into `capacity`."""
    items = {s: n for s, n in sizes.items() if s > 0 and n > 0}
    if not items:
        return 0
    total = sum(s * n for s, n in items.items())
    best = math.ceil(total / capacity)
    for alpha in sorted({s for s in items if s <= capacity / 2} | {0}):
        big = sum(n for s, n in items.items() if s > capacity - alpha)
        medium = [(s, n) for s, n in items.items() if capacity - alpha >= s > capacity / 2]
        small = sum(s * n for s, n in items.items() if capacity / 2 >= s >= alpha)
        medium_count = sum(n for _, n in medium)
        medium_room = medium_count * capacity - sum(s * n for s, n in medium)
        best = max(best, big + medium_count + max(0, math.ceil((small - medium_room) / capacity)))
    return best


def shared_gpus_bound(pool: Pool, options: list[Option]) -> int:
    """GPUs needed by the shared (fractional) replicas of `options` in a shared-mode pool."""
    shared = [o for o in options if not o.whole_gpus]
    if not shared:
        return 0
    if pool.mode == "mig":
        smallest = []
        for o in shared:
            fitting = [s.capacity for s in pool.slice_types if o.fits_slice(s)]
            slices = min((_slices_of(pool, cap) for cap in fitting), default=MIG_COMPUTE_SLICES)
            smallest.append(slices * o.count)
        return math.ceil(sum(smallest) / MIG_COMPUTE_SLICES)
    bound = 0
    for d, cap in enumerate(pool.capacity):
        sizes = Counter()
        for o in shared:
            sizes[o.size[d]] += o.count
        bound = max(bound, martello_toth_l2(sizes, cap))
    return bound


def _slices_of(pool: Pool, capacity: tuple[int, ...]) -> int:
    kind = next(s for s in pool.slice_types if s.capacity == capacity)
    best = max((layout[pool.slice_types.index(kind)] for layout in pool.mig_layouts), default=1)
    return math.ceil(MIG_COMPUTE_SLICES / max(best, 1))


def pool_nodes_bound(pool: Pool, groups: list[Group]) -> int:
    """Nodes a pool needs to hold all replicas of `groups` (each must have an option there)."""
    options = [g.option(pool.name) for g in groups]
    whole = sum(o.count * o.whole_gpus for o in options if o.whole_gpus)
    gpus = shared_gpus_bound(pool, options) + whole
    nodes = math.ceil(gpus / pool.gpus_per_node)
    for option in options:
        if option.max_per_node:
            nodes = max(nodes, math.ceil(option.count / option.max_per_node))
        if option.whole_gpus:
            per_node = pool.gpus_per_node // option.whole_gpus
            nodes = max(nodes, math.ceil(option.count / per_node) if per_node else nodes)
    return nodes


def fractional_cost_bound(problem: Problem, groups: list[Group]) -> int:
    """Each group at its cheapest option, paying only the node share its replicas fill."""
    total = 0.0
    for group in groups:
        costs = []
        for o in group.options:
            pool = problem.pool(o.pool)
            share = o.whole_gpus or max((s / c for s, c in zip(o.size, pool.capacity,
                                                               strict=True) if c), default=0)
            costs.append(pool.node_cost * share * o.count / pool.gpus_per_node)
        total += min(costs)
    return math.floor(total)


def cost_bound(problem: Problem, groups: list[Group]) -> int:
    """A lower bound on the cost of placing every group in `groups`."""
    pools = {o.pool for g in groups for o in g.options}
    if len(pools) == 1:
        pool = problem.pool(pools.pop())
        return pool.node_cost * pool_nodes_bound(pool, groups)
    return fractional_cost_bound(problem, groups)
