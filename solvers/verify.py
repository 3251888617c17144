"""Checking a solution against every rule of its problem, independently of how it was found.

Tests use it on random instances; the engine uses it as a last safety net before answering.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from solvers.problem import Conflict, Option, Placement, Pool, Problem, Solution, nodes_cost


def cost_of(problem: Problem, solution: Solution) -> int:
    """The price of every node that holds at least one replica."""
    return nodes_cost(problem.pools, solution.placements)


def violations(problem: Problem, solution: Solution) -> list[str]:
    """Every broken rule, as readable lines; an empty list means the solution is valid.

    One check per rule family, in this order: each group whole in one allowed pool (with its
    spread), node and GPU indexes, then per GPU whole-GPU exclusivity and fit, MIG slices or
    capacity and GPU conflicts, then per node its capacity and conflicts, then the cost.
    """
    found = _group_problems(problem, solution)
    found += _index_problems(problem, solution)
    on_gpu, on_node = _occupancy(problem, solution)
    rules = _rules_by_class(problem)
    for (pool_name, node, gpu), placed in on_gpu.items():
        found += _gpu_problems(problem, rules, solution, (pool_name, node, gpu), placed)
    for (pool_name, node), placed in on_node.items():
        found += _node_capacity_problems(problem, pool_name, placed, f"{pool_name} node {node}")
        found += _conflict_problems(problem, rules, placed, "node", f"{pool_name} node {node}")
    found += _cost_problems(problem, solution)
    return found


def _group_problems(problem: Problem, solution: Solution) -> list[str]:
    """Each group is placed whole in one pool it may use, or listed as unplaced if optional."""
    found: list[str] = []
    by_group: dict[str, list[Placement]] = defaultdict(list)
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
        if len({problem.pool(name).family_name for name in pools}) != 1:
            found.append(f"{group.name}: replicas in several pools {sorted(pools)}")
            continue
        outside = sorted(name for name in pools if group.find_option(name) is None)
        if outside:
            found.append(f"{group.name}: placed in pool {outside[0]} it may not use")
            continue
        option = group.option(placed[0].pool)
        if sorted(p.replica for p in placed) != list(range(option.count)):
            found.append(f"{group.name}: replicas {sorted(p.replica for p in placed)}, "
                         f"expected 0..{option.count - 1}")
        found += _spread_problems(group.name, option, placed)
    return found


def _spread_problems(group: str, option: Option, placed: list[Placement]) -> list[str]:
    """No node holds more replicas of the group than its spread limit."""
    limit = option.max_per_node
    if limit is None:
        return []
    return [f"{group}: {n} replicas on node {node}, spread allows {limit}"
            for (_, node), n in Counter((p.pool, p.node) for p in placed).items()
            if n > limit]


def _index_problems(problem: Problem, solution: Solution) -> list[str]:
    """Each replica sits on a node the pool may buy, on as many distinct GPUs as it needs."""
    found: list[str] = []
    for p in solution.placements:
        pool = problem.pool(p.pool)
        option = problem.group(p.group).find_option(p.pool)
        if option is None:
            continue  # reported by _group_problems
        if not 0 <= p.node < pool.max_nodes:
            found.append(f"{p.group}/{p.replica}: node {p.node} beyond the pool's limit")
        if any(not 0 <= g < pool.gpus_per_node for g in p.gpus) or len(set(p.gpus)) != len(p.gpus):
            found.append(f"{p.group}/{p.replica}: bad GPU indexes {p.gpus}")
        expected = option.whole_gpus or 1
        if len(p.gpus) != expected:
            found.append(f"{p.group}/{p.replica}: {len(p.gpus)} GPUs, needs {expected}")
    return found


def _occupancy(problem: Problem, solution: Solution
               ) -> tuple[dict[tuple[str, int, int], list[Placement]],
                          dict[tuple[str, int], list[Placement]]]:
    """The replicas on each GPU and on each node, of groups allowed in their pool."""
    on_gpu: dict[tuple[str, int, int], list[Placement]] = defaultdict(list)
    on_node: dict[tuple[str, int], list[Placement]] = defaultdict(list)
    for p in solution.placements:
        if problem.group(p.group).find_option(p.pool) is None:
            continue
        for g in p.gpus:
            on_gpu[(p.pool, p.node, g)].append(p)
        on_node[(p.pool, p.node)].append(p)
    return on_gpu, on_node


def _gpu_problems(problem: Problem, rules: Rules, solution: Solution,
                  key: tuple[str, int, int], placed: list[Placement]) -> list[str]:
    """One GPU: a whole-GPU replica alone; otherwise MIG slices, or capacity and conflicts."""
    pool_name, node, gpu = key
    pool = problem.pool(pool_name)
    where = f"{pool_name} node {node} GPU {gpu}"
    options = [problem.group(p.group).option(pool_name) for p in placed]
    if any(o.whole_gpus for o in options):
        return _whole_gpu_problems(pool, options, where)
    if pool.mode == "mig":
        return _slice_problems(pool, solution.mig_layouts.get(key), placed, options, where)
    return (_capacity_problems(pool, options, where)
            + _conflict_problems(problem, rules, placed, "gpu", where))


def _whole_gpu_problems(pool: Pool, options: list[Option], where: str) -> list[str]:
    """A GPU of a whole-GPU replica holds nothing else, and the replica's demand per GPU fits."""
    if len(options) > 1:
        return [f"{where}: a whole-GPU replica shares the GPU"]
    if any(a > c for a, c in zip(options[0].size, pool.capacity, strict=True)):
        return [f"{where}: whole-GPU demand {list(options[0].size)} exceeds "
                f"capacity {list(pool.capacity)}"]
    return []


def _slice_problems(pool: Pool, layout_index: int | None, placed: list[Placement],
                    options: list[Option], where: str) -> list[str]:
    """A MIG GPU has a layout, no more replicas per slice type than it cuts, and each replica
    on a slice its group fits."""
    if layout_index is None:
        return [f"{where}: MIG GPU without a layout"]
    found: list[str] = []
    layout = pool.mig_layouts[layout_index]
    used = Counter(p.slice for p in placed)
    for slice_type, count in zip(pool.slice_types, layout, strict=True):
        if used.pop(slice_type.name, 0) > count:
            found.append(f"{where}: more {slice_type.name} replicas than slices")
    if used:
        found.append(f"{where}: replicas on slices {sorted(map(str, used))} the layout lacks")
    for p, o in zip(placed, options, strict=True):
        kind = next((s for s in pool.slice_types if s.name == p.slice), None)
        if kind and not o.fits_slice(kind):
            found.append(f"{where}: {p.group} may not use slice {p.slice}")
    return found


def _capacity_problems(pool: Pool, options: list[Option], where: str) -> list[str]:
    """A shared GPU's load stays within its capacity in every dimension."""
    load = [sum(o.size[d] for o in options) for d in range(len(pool.capacity))]
    if any(a > c for a, c in zip(load, pool.capacity, strict=True)):
        return [f"{where}: load {load} exceeds capacity {list(pool.capacity)}"]
    return []


def _node_capacity_problems(problem: Problem, pool_name: str, placed: list[Placement],
                            where: str) -> list[str]:
    """A node's replicas together stay within its capacity in every node dimension."""
    pool = problem.pool(pool_name)
    if not pool.node_capacity:
        return []
    sizes = [problem.group(p.group).option(pool_name).node_size for p in placed]
    load = [sum(s[d] for s in sizes if d < len(s)) for d in range(len(pool.node_capacity))]
    if any(a > c for a, c in zip(load, pool.node_capacity, strict=True)):
        return [f"{where}: load {load} exceeds node capacity {list(pool.node_capacity)}"]
    return []


def _conflict_problems(problem: Problem, rules: Rules, placed: list[Placement], scope: str,
                       where: str) -> list[str]:
    """No conflict rule of `scope` finds both of its classes among `placed`."""
    classes: set[str] = set().union(*(problem.group(p.group).classes for p in placed))
    broken = sorted({i for c in classes for i, rule in rules.get((scope, c), ())
                     if rule.b in classes})
    return [f"{where}: conflict rule {problem.conflicts[i].name} broken" for i in broken]


Rules = dict[tuple[str, str], list[tuple[int, Conflict]]]


def _rules_by_class(problem: Problem) -> Rules:
    """The conflict rules (with their index) by scope and first class: checking every rule
    at every GPU would cost GPUs x rules, and a fleet has thousands of each."""
    rules: Rules = defaultdict(list)
    for i, rule in enumerate(problem.conflicts):
        rules[(rule.scope, rule.a)].append((i, rule))
    return rules


def _cost_problems(problem: Problem, solution: Solution) -> list[str]:
    """The stated cost is the price of the nodes in use."""
    cost = cost_of(problem, solution)
    if cost != solution.cost:
        return [f"cost {solution.cost} differs from the open nodes' {cost}"]
    return []
