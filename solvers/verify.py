"""Checking a solution against every rule of its problem, independently of how it was found.

Tests use it on random instances; the engine uses it as a last safety net before answering.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from solvers.problem import Problem, Solution, nodes_cost


def cost_of(problem: Problem, solution: Solution) -> int:
    """The price of every node that holds at least one replica."""
    return nodes_cost(problem.pools, solution.placements)


def _classes_conflict(problem: Problem, classes: set[str], scope: str) -> list[str]:
    return [c.name for c in problem.conflicts
            if c.scope == scope and c.a in classes and c.b in classes]


def violations(problem: Problem, solution: Solution) -> list[str]:
    """Every broken rule, as readable lines; an empty list means the solution is valid."""
    found: list[str] = []
    by_group = defaultdict(list)
    for p in solution.placements:
        by_group[p.group].append(p)
    for group in problem.groups:
        placed = by_group.get(group.name, [])
        if not placed:
            if group.name not in solution.unplaced:
                found.append(f"{group.name}: neither placed nor listed as unplaced")
            elif not group.optional:
                found.append(f"{group.name}: mandatory group left unplaced")
            continue
        pools = {p.pool for p in placed}
        if len(pools) != 1:
            found.append(f"{group.name}: replicas in several pools {sorted(pools)}")
            continue
        option = group.find_option(placed[0].pool)
        if option is None:
            found.append(f"{group.name}: placed in pool {placed[0].pool} it may not use")
            continue
        if sorted(p.replica for p in placed) != list(range(option.count)):
            found.append(f"{group.name}: replicas {sorted(p.replica for p in placed)}, "
                         f"expected 0..{option.count - 1}")
        if option.max_per_node is not None:
            for node, n in Counter(p.node for p in placed).items():
                if n > option.max_per_node:
                    found.append(f"{group.name}: {n} replicas on node {node}, "
                                 f"spread allows {option.max_per_node}")

    on_gpu = defaultdict(list)
    on_node = defaultdict(list)
    for p in solution.placements:
        pool = problem.pool(p.pool)
        group = problem.group(p.group)
        option = group.find_option(p.pool)
        if option is None:
            continue
        if not 0 <= p.node < pool.max_nodes:
            found.append(f"{p.group}/{p.replica}: node {p.node} beyond the pool's limit")
        if any(not 0 <= g < pool.gpus_per_node for g in p.gpus) or len(set(p.gpus)) != len(p.gpus):
            found.append(f"{p.group}/{p.replica}: bad GPU indexes {p.gpus}")
        expected = option.whole_gpus or 1
        if len(p.gpus) != expected:
            found.append(f"{p.group}/{p.replica}: {len(p.gpus)} GPUs, needs {expected}")
        for g in p.gpus:
            on_gpu[(p.pool, p.node, g)].append(p)
        on_node[(p.pool, p.node)].append(p)

    for (pool_name, node, gpu), placed in on_gpu.items():
        pool = problem.pool(pool_name)
        where = f"{pool_name} node {node} GPU {gpu}"
        options = [problem.group(p.group).option(pool_name) for p in placed]
        if any(o.whole_gpus for o in options) and len(placed) > 1:
            found.append(f"{where}: a whole-GPU replica shares the GPU")
            continue
        if any(o.whole_gpus for o in options):
            if any(a > c for a, c in zip(options[0].size, pool.capacity, strict=True)):
                found.append(f"{where}: whole-GPU demand {list(options[0].size)} exceeds "
                             f"capacity {list(pool.capacity)}")
            continue
        if pool.mode == "mig":
            layout_index = solution.mig_layouts.get((pool_name, node, gpu))
            if layout_index is None:
                found.append(f"{where}: MIG GPU without a layout")
                continue
            layout = pool.mig_layouts[layout_index]
            used = Counter(p.slice for p in placed)
            for slice_type, count in zip(pool.slice_types, layout, strict=True):
                if used.pop(slice_type.name, 0) > count:
                    found.append(f"{where}: more {slice_type.name} replicas than slices")
            if used:
                found.append(f"{where}: replicas on slices {sorted(map(str, used))} the "
                             "layout lacks")
            for p, o in zip(placed, options, strict=True):
                kind = next((s for s in pool.slice_types if s.name == p.slice), None)
                if kind and not o.fits_slice(kind):
                    found.append(f"{where}: {p.group} may not use slice {p.slice}")
        else:
            load = [sum(o.size[d] for o in options) for d in range(len(pool.capacity))]
            if any(a > c for a, c in zip(load, pool.capacity, strict=True)):
                found.append(f"{where}: load {load} exceeds capacity {list(pool.capacity)}")
            classes = set().union(*(problem.group(p.group).classes for p in placed))
            for name in _classes_conflict(problem, classes, "gpu"):
                found.append(f"{where}: conflict rule {name} broken")

    for (pool_name, node), placed in on_node.items():
        classes = set().union(*(problem.group(p.group).classes for p in placed))
        for name in _classes_conflict(problem, classes, "node"):
            found.append(f"{pool_name} node {node}: conflict rule {name} broken")

    if cost_of(problem, solution) != solution.cost:
        found.append(f"cost {solution.cost} differs from the open nodes' "
                     f"{cost_of(problem, solution)}")
    return found
