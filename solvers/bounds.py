"""Lower bounds on GPUs, nodes and cost, so every answer carries a proven gap.

Per pool: the continuous bound (total demand over capacity, per dimension), the Martello-Toth
L2 bound per dimension (large items cannot share a GPU), whole-GPU demand, MIG slice shares,
and the spread rule's minimum node count. Across pools: each group's cheapest fractional cost.
"""

from __future__ import annotations

import functools
import math
from collections import Counter

import numpy as np

from solvers.problem import Group, Option, Pool, Problem


def martello_toth_l2(sizes: Counter, capacity: int) -> int:
    """The L2 bound for one-dimensional bin packing of `sizes` (size -> count) into `capacity`.

    For each threshold alpha (0 and every size up to half the capacity): items over
    capacity - alpha each need a bin that nothing of at least alpha joins; items over half the
    capacity each need a bin of their own; items from alpha to half the capacity fill what the
    latter leave, then whole bins. Every threshold at once over the sorted sizes (prefix sums,
    integers throughout), so it costs distinct sizes x log, not distinct sizes squared.
    """
    items = sorted((s, n) for s, n in sizes.items() if s > 0 and n > 0)
    if not items:
        return 0
    size = np.array([s for s, _ in items], dtype=np.int64)
    count = np.array([n for _, n in items], dtype=np.int64)
    # Prefix sums with a leading zero: sums over size[i:j] are prefix[j] - prefix[i].
    counts = np.concatenate(([0], np.cumsum(count)))
    volume = np.concatenate(([0], np.cumsum(size * count)))
    total = int(volume[-1])
    alphas = np.concatenate(([0], size[2 * size <= capacity]))
    # Index ranges in the sorted sizes: [low, half) are from alpha to half the capacity,
    # [half, top) over half the capacity up to capacity - alpha, [top, end) the rest.
    half = int(np.searchsorted(size, capacity // 2, side="right"))
    top = np.searchsorted(size, capacity - alphas, side="right")
    low = np.searchsorted(size, alphas, side="left")
    big = counts[-1] - counts[top]
    medium_count = counts[top] - counts[half]
    medium_room = medium_count * capacity - (volume[top] - volume[half])
    small = volume[half] - volume[low]
    rest = np.maximum(0, -((medium_room - small) // capacity))  # ceil((small - room) / cap)
    return max(-(-total // capacity), int((big + medium_count + rest).max()))


def shared_gpus_bound(pool: Pool, options: list[Option]) -> int:
    """GPUs needed by the shared (fractional) replicas of `options` in a shared-mode pool."""
    shared = [o for o in options if not o.whole_gpus]
    if not shared:
        return 0
    if pool.mode == "mig":
        return mig_gpus_bound(pool, shared)
    bound = 0
    for d, cap in enumerate(pool.capacity):
        sizes: Counter[int] = Counter()
        for o in shared:
            sizes[o.size[d]] += o.count
        bound = max(bound, martello_toth_l2(sizes, cap))
    return bound


def mig_gpus_bound(pool: Pool, options: list[Option]) -> int:
    """GPUs a MIG pool needs. In a dimension where every layout fits the GPU (compute and
    memory do, for NVIDIA's profiles), each replica takes at least its smallest usable slice's
    share of that dimension, and the shares on one GPU add up to at most one."""
    return max((math.ceil(sum(_smallest_slice(pool, o, d) * o.count for o in options)
                          / pool.capacity[d]) for d in _mig_dimensions(pool)), default=0)


@functools.cache
def _mig_dimensions(pool: Pool) -> tuple[int, ...]:
    """Dimensions in which no layout holds more than the whole GPU."""
    return tuple(d for d, cap in enumerate(pool.capacity) if cap and all(
        sum(n * s.capacity[d] for n, s in zip(layout, pool.slice_types, strict=True)) <= cap
        for layout in pool.mig_layouts))


def _smallest_slice(pool: Pool, option: Option, d: int) -> int:
    """The least capacity in dimension d of a slice type the option fits and a layout has."""
    return min((s.capacity[d] for i, s in enumerate(pool.slice_types)
                if option.fits_slice(s) and any(layout[i] for layout in pool.mig_layouts)),
               default=0)


def pool_nodes_bound(pool: Pool, groups: list[Group]) -> int:
    """Nodes a pool needs to hold all replicas of `groups` (each must have an option there)."""
    options = [g.option(pool.name) for g in groups]
    whole = sum(o.count * o.whole_gpus for o in options if o.whole_gpus)
    gpus = shared_gpus_bound(pool, options) + whole
    return max([math.ceil(gpus / pool.gpus_per_node)] + [_least_nodes(pool, o) for o in options])


def _least_nodes(pool: Pool, option: Option) -> int:
    """Nodes one option needs on its own: its spread limit, and how many of its multi-GPU
    replicas one node holds."""
    least = 0
    if option.max_per_node:
        least = math.ceil(option.count / option.max_per_node)
    if option.whole_gpus and pool.gpus_per_node // option.whole_gpus:
        least = max(least, math.ceil(option.count / (pool.gpus_per_node // option.whole_gpus)))
    return least


def fractional_cost_bound(problem: Problem, groups: list[Group]) -> int:
    """Each group at its cheapest option, paying only the node share its replicas fill, one
    dimension at a time (a replica's largest share over several dimensions is not a valid
    share: two replicas heavy in different dimensions can share a GPU)."""
    dims = range(len(problem.dimensions))
    totals = [0.0 for _ in dims]
    for group in groups:
        for d in dims:
            costs = []
            for o in group.options:
                pool = problem.pool(o.pool)
                cap = pool.capacity[d]
                size = o.size[d]
                if pool.mode == "mig" and not o.whole_gpus:
                    size = _smallest_slice(pool, o, d) if d in _mig_dimensions(pool) else 0
                share = o.whole_gpus or (size / cap if cap else 0.0)
                costs.append(pool.node_cost * share * o.count / pool.gpus_per_node)
            totals[d] += min(costs)
    return math.floor(max(totals, default=0.0))


def choice_bound(problem: Problem, groups: list[Group], *, time_limit_s: float,
                 workers: int = 1) -> int:
    """A lower bound on cost when groups choose among pools: CP-SAT on a relaxation that keeps
    each group's one pool and, per pool, integer nodes within `max_nodes`, the volume of every
    dimension, replicas over half a GPU in a dimension taking a GPU each, whole GPUs, MIG slice
    shares and the spread rule, but not which GPU holds what. The solver's proven bound is
    valid even when it stops early."""
    from ortools.sat.python import cp_model

    from solvers.sat import new_solver, run

    model = cp_model.CpModel()
    by_pool: dict[str, list] = {}
    for group in groups:
        families: dict[str, tuple] = {}
        for option in group.options:
            family = problem.pool(option.pool).family_name
            if family not in families:
                # A group's replica count is its pool's: it differs between pools (an LLM's
                # configuration, a slice's speed), and is the same for every shape of one.
                families[family] = (model.new_bool_var(""), [], option.count)
            pick, members, _ = families[family]
            # Replicas in this pool: all of them if picked, or (node shapes of one pool) any
            # part of them, the family's parts adding up to all.
            amount = model.new_int_var(0, option.count, "") \
                if problem.pool(option.pool).family else option.count * pick
            members.append(amount)
            by_pool.setdefault(option.pool, []).append((pick, option, amount))
        model.add_exactly_one(pick for pick, _, _ in families.values())
        for pick, members, count in families.values():
            model.add(sum(members) == count * pick)
    cost = []
    for name, chosen in by_pool.items():
        pool = problem.pool(name)
        nodes = model.new_int_var(0, pool.max_nodes, "")
        shared_gpus = model.new_int_var(0, pool.max_gpus, "")
        whole = [o.whole_gpus * amount for _, o, amount in chosen if o.whole_gpus]
        model.add(shared_gpus + sum(whole) <= pool.gpus_per_node * nodes)
        shared = [(amount, o) for _, o, amount in chosen if not o.whole_gpus]
        if pool.mode == "mig":
            for d in _mig_dimensions(pool):
                model.add(sum(_smallest_slice(pool, o, d) * amount for amount, o in shared)
                          <= pool.capacity[d] * shared_gpus)
        else:
            for d, cap in enumerate(pool.capacity):
                model.add(sum(o.size[d] * amount for amount, o in shared)
                          <= cap * shared_gpus)
                model.add(sum(amount for amount, o in shared if 2 * o.size[d] > cap)
                          <= shared_gpus)
        for pick, o, amount in chosen:
            if pool.family:
                # Spread and multi-GPU replicas per node, for the part placed here.
                if o.max_per_node:
                    model.add(amount <= o.max_per_node * nodes)
                if o.whole_gpus and pool.gpus_per_node // o.whole_gpus:
                    model.add(amount <= pool.gpus_per_node // o.whole_gpus * nodes)
            elif least := _least_nodes(pool, o):
                model.add(nodes >= least).only_enforce_if(pick)
        cost.append(pool.node_cost * nodes)
    model.minimize(sum(cost))
    solver = new_solver(time_limit_s, workers=workers)
    if run(solver, model) in (cp_model.MODEL_INVALID, cp_model.INFEASIBLE):
        return 0
    return max(0, math.ceil(solver.best_objective_bound - 1e-6))


def cost_bound(problem: Problem, groups: list[Group], *, time_limit_s: float = 1.0) -> int:
    """A lower bound on the cost of placing every group in `groups`."""
    pools = {o.pool for g in groups for o in g.options}
    if len(pools) == 1:
        pool = problem.pool(pools.pop())
        return pool.node_cost * pool_nodes_bound(pool, groups)
    return max(fractional_cost_bound(problem, groups),
               choice_bound(problem, groups, time_limit_s=time_limit_s))
