"""The engine's entry point: greedy first, then CP-SAT per independent component.

Components are sets of pools linked by groups that may use either; they share nothing else, so
each is solved on its own with a share of the time limit. A component whose greedy cost meets
its lower bound is already optimal and skips CP-SAT.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from solvers.bounds import cost_bound, shared_gpus_bound
from solvers.clock import STEP, Clock, WorkClock, charge, now, using
from solvers.greedy import fits_alone, greedy, unplaced_reason
from solvers.problem import Group, Option, Placement, Pool, Problem, Solution, nodes_cost
from solvers.verify import violations

# Beyond this many placement variables a component fixes each group to its greedy pool.
MAX_JOINT_VARIABLES = 150_000
# The share of the time limit the consistent neighbourhood search (items of one dimension or
# several) gets at first (where a local search soon reaches the bound, before the costlier
# phases), and its share of the local search's time after column generation (the drain has
# the rest).
EARLY_SEARCH_SHARE = 1 / 20
PARTIAL_SEARCH_SHARE = 0.75
# The share of the time kept for the proof (`_pack_from_bound`) after a diving search that
# ran to its end: what the proof had when the search stopped at a sixth of the time left and
# the neighbourhood search after it took a tenth (on hard-28 that search found no packing
# after the diving search, where the diving search's misses needed more of its time).
DIVED_PROOF_SHARE = 1 / 6 - 1 / 10
# The share of the time limit that the packing at the bound over the patterns reduced costs
# allow may take (`_by_reduced_cost`), the LP's convergence included.
REDUCED_COST_SHARE = 1 / 4
# Most of the time for full bins only where the items fill the bound's GPUs exactly
# (`_full_bins`): the root LP of augmented IRUP's 600 sizes takes 1.4 to 2.9 counted seconds
# (it may take three quarters of the phase's time, `full_bins.ROOT_SHARE`).
FULL_BINS_SHARE = 2 / 5



@dataclass(frozen=True)
class Step:
    """Where a solve stands, for a progress display: the phase, the cheapest answer so far and
    the proven lower bound (engine cost units; None before the first answer or bound), and the
    share of the time limit spent."""

    phase: str
    best_cost: int | None = None
    lower_bound: int | None = None
    time_spent: float = 0.0  # 0..1 of the time limit


Progress = Callable[[Step], None]


class InfeasibleError(Exception):
    """Mandatory groups cannot all be placed; `reasons` says which rules and groups clash."""

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__("; ".join(reasons))


def _without_impossible(problem: Problem) -> tuple[Problem, dict[str, str]]:
    """Drop options that can never fit; a group left with none is unplaced with the reason."""
    groups, unplaced = [], {}
    for group in problem.groups:
        options = tuple(o for o in group.options if fits_alone(problem.pool(o.pool), o))
        if options:
            groups.append(replace(group, options=options))
        else:
            unplaced[group.name] = unplaced_reason(problem, group)
    return replace(problem, groups=tuple(groups)), unplaced


def _better(a: Solution, b: Solution, problem: Problem) -> Solution:
    def key(s: Solution):
        # Fewer unplaced at the highest priority wins, then fewer below it, then cost.
        return (sorted((problem.group(g).priority for g in s.unplaced), reverse=True), s.cost)
    return min(a, b, key=key)


def _components(problem: Problem) -> list[Problem]:
    """Split into sub-problems whose pools share no group."""
    parent = {p.name: p.name for p in problem.pools}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for group in problem.groups:
        first = group.options[0].pool
        for option in group.options[1:]:
            parent[root(option.pool)] = root(first)
    result = []
    for r in dict.fromkeys(root(p.name) for p in problem.pools):
        pools = tuple(p for p in problem.pools if root(p.name) == r)
        names = {p.name for p in pools}
        groups = tuple(g for g in problem.groups if g.options[0].pool in names)
        if groups:
            result.append(replace(problem, pools=pools, groups=groups))
    return result


def _restrict(solution: Solution, problem: Problem) -> Solution:
    names = {p.name for p in problem.pools}
    groups = {g.name for g in problem.groups}
    placements = tuple(p for p in solution.placements if p.pool in names and p.group in groups)
    layouts = {k: v for k, v in solution.mig_layouts.items() if k[0] in names}
    cost = nodes_cost(problem.pools, placements)
    return Solution("greedy", cost, 0, placements, {}, layouts)


def _node_limits(problem: Problem, hint: Solution) -> dict[str, int]:
    """Nodes per pool in the model: what the hint uses plus room for groups that may move in."""
    limits = {}
    placed = {(p.group, p.pool) for p in hint.placements}
    for pool in problem.pools:
        used = len(hint.nodes(pool.name))
        incoming = sum(o.count * max(o.whole_gpus, 1) for g in problem.groups
                       if (o := g.find_option(pool.name)) is not None
                       and (g.name, pool.name) not in placed)
        limits[pool.name] = min(pool.max_nodes, used + math.ceil(incoming / pool.gpus_per_node))
    return limits


def _variables(problem: Problem, nodes: dict[str, int]) -> int:
    count = 0
    for group in problem.groups:
        for option in group.options:
            pool = problem.pool(option.pool)
            per_gpu = len(pool.slice_types) if pool.mode == "mig" else 1
            count += nodes[pool.name] * (1 if option.whole_gpus else pool.gpus_per_node * per_gpu)
    return count


def _fix_to_hint(problem: Problem, hint: Solution) -> Problem:
    """Each group in the pool greedy chose for it (or, for one shape of a pool, that shape)."""
    chosen = {p.group: p.pool for p in hint.placements}
    groups = tuple(replace(g, options=(g.option(chosen[g.name]),)) for g in problem.groups)
    return replace(problem, groups=groups)


def _solve_component(problem: Problem, hint: Solution, *, time_limit_s: float, seed: int,
                     workers: int, base: Solution | None) -> Solution:
    from solvers import cpsat

    deadline = now() + time_limit_s
    lower = cost_bound(problem, list(problem.groups))
    if hint.cost <= lower and base is None:
        return replace(hint, status="optimal", lower_bound=hint.cost)
    patterns = _patterns_raced(problem, hint, time_limit_s=time_limit_s, seed=seed,
                               workers=workers) if base is None else None
    if patterns is not None:
        return patterns
    nodes = _node_limits(problem, hint)
    if _variables(problem, nodes) > MAX_JOINT_VARIABLES:
        return replace(hint, status="greedy", lower_bound=min(lower, hint.cost))
    for p in base.placements if base else ():
        # Room for every node the base used, so its replicas can stay where they are.
        nodes[p.pool] = min(problem.pool(p.pool).max_nodes, max(nodes[p.pool], p.node + 1))
    try:
        model = cpsat.build(problem, nodes, base=base, lower_bound=lower, deadline=deadline)
    except cpsat.OutOfTime:
        return replace(hint, status="greedy", lower_bound=min(lower, hint.cost))
    starting_point = base if base is not None and not violations(problem, base) else hint
    cpsat.add_hint(model, starting_point, as_is=base is not None)
    # Building the model took part of the time: CP-SAT gets what is left.
    solver, status = cpsat.solve(model, time_limit_s=deadline - now(), seed=seed,
                                 workers=workers)
    base_count = len(base.placements) if base else 0
    lower = max(lower, cpsat.objective_cost_bound(model, solver, base_count))
    if status not in ("OPTIMAL", "FEASIBLE"):
        return replace(hint, status="greedy", lower_bound=lower)
    placements, layouts = cpsat.extract(model, solver)
    cost = nodes_cost(problem.pools, placements)
    found = Solution("optimal" if status == "OPTIMAL" else "feasible", cost,
                     min(lower, cost) if status != "OPTIMAL" else cost, tuple(placements), {},
                     layouts)
    if base is None and found.cost > hint.cost:
        return replace(hint, status="greedy", lower_bound=lower)
    return found


def _improve_by_windows(problem: Problem, solution: Solution, *, time_limit_s: float,
                        seed: int, workers: int, window: int = 6) -> Solution:
    """Large neighbourhood search for problems too large for one model: free the replicas of
    a few nodes of one pool (the emptiest and some at random) and ask the engine to pack them
    into one node fewer. Every group must have a single option (pools fixed)."""
    deadline = now() + time_limit_s
    rng = random.Random(seed)
    current = solution
    while now() < deadline - 0.2:
        charge(STEP)
        costs = [(p, p.node_cost * len(current.nodes(p.name))) for p in problem.pools]
        costs = [(p, c) for p, c in costs if len(current.nodes(p.name)) >= 2]
        if not costs:
            break
        pool = rng.choices([p for p, _ in costs], [c for _, c in costs])[0]
        nodes = sorted(current.nodes(pool.name))
        load: dict[int, int] = defaultdict(int)
        for p in current.placements:
            if p.pool == pool.name:
                load[p.node] += len(p.gpus)
        size = min(window, len(nodes))
        chosen = sorted(nodes, key=lambda n: load[n])[: size // 2]
        chosen += rng.sample([n for n in nodes if n not in chosen], size - len(chosen))
        inside = [p for p in current.placements if p.pool == pool.name and p.node in chosen]
        counts: dict[str, int] = defaultdict(int)
        for p in inside:
            counts[p.group] += 1
        groups = tuple(replace(problem.group(g), optional=True, options=(replace(
            problem.group(g).option(pool.name), count=c),)) for g, c in counts.items())
        sub = replace(problem, pools=(replace(pool, max_nodes=size - 1),), groups=groups)
        left = deadline - now()
        found = _solve(sub, time_limit_s=min(2.0, max(left - 0.1, 0.1)),
                       seed=rng.randrange(1 << 30), workers=workers)
        if found.unplaced or len(found.nodes(pool.name)) >= size:
            continue
        ids = sorted(chosen)
        kept = [p for p in current.placements if not (p.pool == pool.name and p.node in chosen)]
        moved = [replace(p, node=ids[p.node]) for p in found.placements]
        layouts = {k: v for k, v in current.mig_layouts.items()
                   if not (k[0] == pool.name and k[1] in chosen)}
        layouts.update({(k[0], ids[k[1]], k[2]): v for k, v in found.mig_layouts.items()})
        current = _renumbered(problem, kept + moved, layouts, current.status)
    return current


def _renumbered(problem: Problem, placements: list[Placement], layouts: dict,
                status: str) -> Solution:
    """Replica numbers 0..n-1 per group again, and the cost of the nodes in use."""
    counter: dict[str, int] = defaultdict(int)
    numbered = []
    for p in sorted(placements, key=lambda p: (p.group, p.pool, p.node, p.gpus)):
        numbered.append(replace(p, replica=counter[p.group]))
        counter[p.group] += 1
    cost = nodes_cost(problem.pools, numbered)
    return Solution(status, cost, 0, tuple(numbered), {}, layouts)


def _nodes_may_bind(pool: Pool, options: list[Option]) -> bool:
    """Whether a node dimension could run out before the node's GPUs do. A GPU draws at most
    max(node_size / size[k]) * capacity[k] from its node in a GPU dimension k that every option
    needs (the best such k); a node holds `gpus_per_node` such GPUs."""
    for d, cap in enumerate(pool.node_capacity):
        needs = [(need, o) for o in options for dim, need, _ in o.node_demand(pool) if dim == d]
        if not needs:
            continue
        per_gpu = min((max(need * pool.capacity[k] / o.size[k] for need, o in needs)
                       for k in range(len(pool.capacity)) if all(o.size[k] for _, o in needs)),
                      default=math.inf)
        if per_gpu * pool.gpus_per_node > cap:
            return True
    return False


def _is_plain_packing(problem: Problem) -> bool:
    """One shared pool, no whole-GPU replicas, no spread, no conflicts and no node capacity
    that could bite."""
    if len(problem.pools) != 1 or problem.pools[0].mode != "shared":
        return False
    if _nodes_may_bind(problem.pools[0], [g.options[0] for g in problem.groups]):
        return False
    classes = [c for g in problem.groups for c in g.classes]
    return all(g.options[0].max_per_node is None and not g.options[0].whole_gpus
               for g in problem.groups) \
        and not any(c.a in classes and c.b in classes for c in problem.conflicts)


def _patterns_raced(problem: Problem, hint: Solution, *, time_limit_s: float, seed: int,
                    workers: int) -> Solution | None:
    """`_solve_as_patterns`, on the wall clock with two workers or more raced by a second
    search on a core of its own (`solvers.race`): the `rival`, from the next seed, on one
    worker, leaves the fills to the brim to the search it races (on augmented IRUP's 600
    sizes they find nothing in a second, which its dives then have) and dives its own way
    (`_dived`). On augmented IRUP's 600 sizes, wall mode, 20 of 22 at the optimum in each of
    two runs raced so; 17 to 19 with a rival that dives rounded down only, 11 to 14 alone,
    and 15 with a rival that differs by its seed only (scripts/BENCHMARKS.md, `#restarts`)."""
    from solvers import race

    if not (race.can_race(workers) and _is_plain_packing(problem)):
        return _solve_as_patterns(problem, hint, time_limit_s=time_limit_s, seed=seed,
                                  workers=workers)
    return race.race(
        lambda: _solve_as_patterns(problem, hint, time_limit_s=time_limit_s, seed=seed,
                                   workers=workers - 1),
        lambda: _solve_as_patterns(problem, hint, time_limit_s=time_limit_s, seed=seed + 1,
                                   workers=1, rival=True),
        deadline_s=now() + time_limit_s,
        done=lambda s: s is not None and s.cost <= s.lower_bound, better=_better_of_two)


def _better_of_two(own: Solution | None, rival: Solution | None) -> Solution | None:
    """The cheaper of two searches' answers for the same packing (`own` on a tie), with the
    higher of their bounds: each proved its own."""
    if own is None or rival is None:
        return own or rival
    best = rival if rival.cost < own.cost else own
    bound = min(max(own.lower_bound, rival.lower_bound), best.cost)
    return replace(best, lower_bound=bound,
                   status="optimal" if best.cost <= bound else best.status)


def _solve_as_patterns(problem: Problem, hint: Solution, *, time_limit_s: float, seed: int,
                       workers: int, rival: bool = False) -> Solution | None:
    """Solve a plain packing component: list patterns when few exist; otherwise a short
    consistent neighbourhood search, (items of one dimension) bins filled to the brim and,
    where the items fill the bound's exactly, full bins only (`_full_bins`), column
    generation for the bound (items of several dimensions: from fit-decreasing packings
    too), its LP rounded into a packing, (one dimension, once the LP reached its bound) the
    packing at the bound over the patterns reduced costs allow (`_by_reduced_cost`), a dive
    (`_dived`), the local searches (`_fewer_bins`, unless the diving search ran to its end),
    and `patterns.pack_exactly` for k GPUs from the lower bound up to prove it (`rival`: see
    `_patterns_raced`). None if the component is not plain packing."""
    from solvers.exact_fill import one_dimension
    from solvers.patterns import round_columns

    if not _is_plain_packing(problem):
        return None
    deadline = now() + time_limit_s
    pool = problem.pools[0]
    groups = list(problem.groups)
    sizes, demand = [g.options[0].size for g in groups], [g.options[0].count for g in groups]
    lower_gpus = shared_gpus_bound(pool, [g.options[0] for g in groups])
    hint_bins = _hint_bins(hint, groups)
    bins = [list(c.elements()) for c in hint_bins]  # the best packing so far, greedy's first
    listed, lower_gpus, too_many_patterns = _list_tight(
        pool.capacity, sizes, demand, lower_gpus, len(bins),
        deadline=now() + time_limit_s / 5, seed=seed, workers=workers)
    if listed is not None:
        return _packing_solution(pool, groups, listed, lower_gpus)
    bins = _partial_search(pool.capacity, sizes, bins, lower_gpus, seed=seed,
                           deadline=min(deadline, now() + time_limit_s * EARLY_SEARCH_SHARE))
    if len(bins) <= lower_gpus:  # at the bound: optimal
        return _packing_solution(pool, groups, bins, lower_gpus)
    filled_at = lower_gpus  # filled to the brim before column generation: often quick
    full: list[tuple[int, ...]] = []  # the full patterns priced, column generation's start
    if rival or (filled := _filled(pool, groups, lower_gpus, len(bins),
                                   min(deadline, now() + time_limit_s / 5), seed)) is None:
        filled, full = _full_bins(pool, groups, lower_gpus, seed=seed, deadline=min(
            deadline, now() + time_limit_s * FULL_BINS_SHARE))
    if filled is not None:
        return filled
    columns, priced = [], []  # priced: the LP's own columns, without those read back
    settled = False  # whether column generation reached its LP bound
    vector = one_dimension(pool.capacity, sizes) is None
    if lower_gpus < len(bins):
        bins, generated = _generate(pool.capacity, sizes, demand, hint_bins, bins, lower_gpus,
                                    full, vector=vector, deadline=deadline,
                                    seconds=time_limit_s * (1 / 2 if vector else 2 / 5))
        columns, priced = generated.patterns, generated.patterns[:generated.priced]
        lower_gpus = max(lower_gpus, generated.lower_bound)
        settled = generated.lower_bound >= math.ceil(sum(generated.values) - 1e-6)
    # Round the LP at once; if that leaves a gap to the bound, round it pattern by pattern
    # (which finishes on small instances only, and there often closes the last GPU).
    if lower_gpus < len(bins) and columns:
        rounded = round_columns(pool.capacity, sizes, demand, columns, generated.values)
        if len(rounded) < len(bins):
            bins = rounded
    if filled_at < lower_gpus and not rival:  # again at the LP's bound: more waste allowed
        filled = _filled(pool, groups, lower_gpus, len(bins),
                         min(deadline, now() + time_limit_s / 8), seed)
        if filled is not None:
            return filled
    if lower_gpus < len(bins) and not vector and settled and not full:
        bins, lower_gpus = _by_reduced_cost(
            pool.capacity, sizes, demand, columns, bins, lower_gpus,
            lp_value=sum(generated.values), seed=seed,
            deadline=min(deadline, now() + time_limit_s * REDUCED_COST_SHARE))
    searched = False  # whether the diving search ran to its end
    if lower_gpus < len(bins):
        bins, searched = _dived(pool.capacity, sizes, demand, _diving_columns(
            pool.capacity, sizes, demand, columns, priced), bins, lower_gpus,
                                vector=vector, deadline=deadline,
                                time_limit_s=time_limit_s, rival_seed=seed if rival else None)
    if lower_gpus < len(bins) and not searched:
        bins = _fewer_bins(pool.capacity, sizes, bins, lower_gpus, deadline=deadline,
                           time_limit_s=time_limit_s, seed=seed)
    bins, lower_gpus = _pack_from_bound(pool.capacity, sizes, demand, lower_gpus, bins,
                                        columns, deadline=deadline, seed=seed,
                                        workers=workers,
                                        listing=not (vector and too_many_patterns))
    return _answer(pool, groups, hint, len(hint_bins), bins, lower_gpus)


def _generate(capacity: tuple[int, ...], sizes: list, demand: list[int], hint_bins: list[Counter],
              bins: list[list[int]], lower_gpus: int, full: list[tuple[int, ...]], *,
              vector: bool, deadline: float, seconds: float):
    """Column generation for the bound from greedy's bins and the `full` patterns the full
    bins' phase priced (items of several dimensions: and from fit-decreasing packings, a
    better start too, and columns to start from), for `seconds` once started (the caller
    gives several dimensions half the time limit, one two fifths: what their LP leaves open
    the searches after rarely close); the best packing so far and the columns
    (`patterns.Columns`). From the full patterns, where the full bins' LP reached the items'
    size, the LP starts at its bound and stops at once: on augmented IRUP's 402_10000_DI_6,
    0.07 counted seconds against 3.1 from greedy's bins alone."""
    from solvers.patterns import generate_columns
    from solvers.vector_fit import packings

    start = _as_vectors(hint_bins, len(demand)) + full
    if vector:
        fitted = packings(capacity, sizes, demand)
        bins = min([bins, *fitted], key=len)
        start += [c for f in fitted for c in _as_vectors(list(map(Counter, f)), len(demand))]
    return bins, generate_columns(capacity, sizes, demand, start,
                                  min(deadline, now() + seconds), known_bins=lower_gpus)


def _answer(pool: Pool, groups: list[Group], hint: Solution, greedy_gpus: int,
            bins: list[list[int]], lower_gpus: int) -> Solution:
    """The solution for the packing `bins`: greedy's placement as it is when nothing beat
    its `greedy_gpus`."""
    bound = pool.node_cost * math.ceil(lower_gpus / pool.gpus_per_node)
    if len(bins) == greedy_gpus:
        status = "optimal" if hint.cost <= bound else "greedy"
        return replace(hint, status=status, lower_bound=min(bound, hint.cost))
    return _packing_solution(pool, groups, bins, lower_gpus)


def _by_reduced_cost(capacity: tuple[int, ...], sizes: list, demand: list[int], columns: list,
                     bins: list[list[int]], lower_gpus: int, *, lp_value: float,
                     deadline: float, seed: int) -> tuple[list[list[int]], int]:
    """The best packing and bound after column generation's LP is taken to its optimum and
    CP-SAT looks for a packing at the bound over the patterns its reduced costs allow
    (`solvers.reduced_cost`): a packing there, the proof that the bound is one short, or
    nothing new. Not tried where the LP's value (at least its optimum) already lies further
    under the bound than `reduced_cost.MAX_GAP`, nor where pricing needs more than the
    knapsack table (large capacities): there the LP takes longer than the time this has to
    reach its optimum (GI's csAB250_1 settles at 892.997 of a bound of 893 and was still
    short of its optimum after a quarter of the time, which the diving search then lacked).
    The caller does not try it after the full bins' phase found no packing (`full`): there
    the items fill the bound's bins exactly and the LP is at their size, so the duals
    proportional to the sizes are optimal and every full pattern fits within the gap of 0;
    their listing ran to `reduced_cost.MAX_VISITS` on augmented IRUP's 402_10000_DI_6 and
    DI_15 and 600_20000_DI_0 and DI_5, after taking the LP to its optimum: time the diving
    search after it packs more with."""
    from solvers import reduced_cost
    from solvers.exact_fill import one_dimension
    from solvers.patterns import fits_table, generate_columns

    d = one_dimension(capacity, sizes)
    assert d is not None  # one dimension only
    if lower_gpus - lp_value > reduced_cost.MAX_GAP or not fits_table(
            capacity[d], [(s[d],) for s in sizes], demand):
        return bins, lower_gpus
    converged = generate_columns(capacity, sizes, demand, columns, deadline, converge=True)
    if now() >= deadline:
        return bins, lower_gpus
    outcome = reduced_cost.pack_at_bound(capacity[d], [s[d] for s in sizes], demand,
                                         converged.duals, lower_gpus, deadline=deadline,
                                         seed=seed)
    if outcome.status == "found" and len(outcome.bins) < len(bins):
        return outcome.bins, lower_gpus
    return bins, max(lower_gpus, outcome.lower_bound)


def _diving_columns(capacity: tuple[int, ...], sizes: list, demand: list[int], columns: list,
                    priced: list) -> list:
    """The columns the dive starts from: the LP's own (`priced`) where pricing's knapsack
    table fits; on larger capacities all of `columns`, those read back from the dual-optimal
    inequalities too. The dive's LP has no inequalities, so over the LP's own columns alone
    its root lies above column generation's value and must price its way back down, and there
    the undominated list at its unordered duals grows past its limit: the dive on GI's
    csBB500_1 ended at its root; from the read-back columns too (column generation's solution,
    over patterns) it reaches 1,821 GPUs, the optimum (scripts/BENCHMARKS.md)."""
    from solvers.exact_fill import one_dimension
    from solvers.patterns import fits_table

    d = one_dimension(capacity, sizes)
    if d is None or fits_table(capacity[d], [(s[d],) for s in sizes], demand):
        return priced
    return columns


def _dived(capacity: tuple[int, ...], sizes: list, demand: list[int], columns: list,
           bins: list[list[int]], lower_gpus: int, *, vector: bool,
           deadline: float, time_limit_s: float, rival_seed: int | None = None
           ) -> tuple[list[list[int]], bool]:
    """The best of `bins` and a dive from column generation's `columns`, and whether the
    diving search ran to its end: in several dimensions a dive that fixes every pattern the
    LP uses at least half; in one dimension diving with limited discrepancy search (priced
    by table or, on large capacities, by the undominated list; for the raced search's rival,
    `rival_seed`, its columns in an order shuffled from that seed, its children fixing the
    columns used rounded down and, priced by table, its dives restarted from the root rather
    than backtracking), which takes the local searches' time too, up to `DIVED_PROOF_SHARE`
    kept for the proof (when it runs to that end, the local searches do not run after it).
    Also where column generation did not settle in its time: the search's root prices on
    from its columns, then dives; a dive that fixed the most used pattern a step, each LP
    priced to the end, and the local searches after it left 12 of GI's 500 sizes a GPU
    over that the search packs at their optimum (deterministic mode, scripts/BENCHMARKS.md)."""
    from solvers import diving
    from solvers.patterns import dive

    if not vector:
        end = deadline - time_limit_s * DIVED_PROOF_SHARE
        found = diving.search(capacity, sizes, demand, columns, end, most=len(bins),
                              goal=lower_gpus, round_down=rival_seed is not None,
                              restart_seed=rival_seed)
        return bins if found is None else found, now() >= end
    found = dive(capacity, sizes, demand, columns, min(deadline, now() + time_limit_s / 6),
                 rounds=3, fix=0.5)
    return (found if len(found) < len(bins) else bins), False


def _fewer_bins(capacity: tuple[int, ...], sizes: list, bins: list[list[int]],
                lower_gpus: int, *, deadline: float, time_limit_s: float,
                seed: int) -> list[list[int]]:
    """Local search for fewer bins until a sixth of the time is left for proving the lower
    bound (a fifth in several dimensions, where the model over the LP's patterns needs longer,
    but at least a tenth of the time there, within the deadline): the consistent
    neighbourhood search first (at least a tenth of the time: it finds packings at the bound
    where the drain and the proving steps stop a bin over), then the drain
    (`solvers.repack`)."""
    from solvers.exact_fill import one_dimension
    from solvers.repack import empty_bins

    vector = one_dimension(capacity, sizes) is None
    end = deadline - time_limit_s / (5 if vector else 6)
    searched = max(now() + (end - now()) * PARTIAL_SEARCH_SHARE, now() + time_limit_s / 10)
    bins = _partial_search(capacity, sizes, bins, lower_gpus, seed=seed,
                           deadline=min(searched, deadline))
    if lower_gpus < len(bins):
        drained = empty_bins(capacity, sizes, bins, goal=lower_gpus, seed=seed, deadline=min(
            deadline, max(end, now() + time_limit_s / 10)) if vector else end)
        bins = drained if len(drained) < len(bins) else bins
    return bins


def _partial_search(capacity: tuple[int, ...], sizes: list, bins: list[list[int]],
                    lower_gpus: int, *, deadline: float, seed: int) -> list[list[int]]:
    """Fewer bins by the consistent neighbourhood search (`solvers.partial_search` for items
    of one dimension, `solvers.vector_search` for several) when it finds them by `deadline`;
    else `bins`."""
    from solvers import partial_search, vector_search
    from solvers.exact_fill import one_dimension

    if lower_gpus >= len(bins):
        return bins
    d = one_dimension(capacity, sizes)
    if d is None:
        return vector_search.fewer_bins(capacity, sizes, bins, goal=lower_gpus,
                                        deadline=deadline, seed=seed)
    return partial_search.fewer_bins(capacity[d], [s[d] for s in sizes], bins,
                                     goal=lower_gpus, deadline=deadline, seed=seed)


def _list_tight(capacity: tuple[int, ...], sizes: list, demand: list[int], lower_gpus: int,
                most: int, *, deadline: float, seed: int, workers: int
                ) -> tuple[list[list[int]] | None, int, bool]:
    """Tight instances first: when few patterns waste little enough, list them all for k GPUs
    from the lower bound up to `most`, each k proven impossible lifting the bound by one. The
    bins found (optimal) or None, the bound, and whether the patterns were too many to list
    (then they are for any more GPUs too)."""
    from solvers.patterns import pack_listed

    while lower_gpus < most and now() < deadline:
        listed = pack_listed(capacity, sizes, demand, lower_gpus,
                             time_limit_s=deadline - now(), seed=seed, workers=workers)
        if listed is None or listed.status == "unknown":
            return None, lower_gpus, listed is None
        if listed.status == "found":
            return listed.bins, lower_gpus, False
        lower_gpus += 1
    return None, lower_gpus, False


def _pack_from_bound(capacity: tuple[int, ...], sizes: list, demand: list[int],
                     lower_gpus: int, bins: list[list[int]], columns: list, *,
                     deadline: float, seed: int, workers: int,
                     listing: bool) -> tuple[list[list[int]], int]:
    """Ask for k GPUs from the lower bound up (`patterns.pack_exactly`): the first k found is
    optimal. The best bins and the bound."""
    from solvers.patterns import pack_exactly

    while lower_gpus < len(bins) and now() < deadline:
        outcome = pack_exactly(capacity, sizes, demand, lower_gpus,
                               time_limit_s=deadline - now(), seed=seed, workers=workers,
                               columns=columns, incumbent=bins, listing=listing)
        impossible = outcome.status == "impossible"  # k GPUs are not enough
        lower_gpus = max(lower_gpus + int(impossible), outcome.lower_bound)
        if outcome.status == "found":
            bins = outcome.bins
        if not impossible:
            break
    return bins, lower_gpus


def _filled(pool: Pool, groups: list[Group], lower_gpus: int, found_gpus: int,
            deadline: float, seed: int) -> Solution | None:
    """Bins filled to the brim within the waste that `lower_gpus` bins allow (items of one
    dimension, `solvers.exact_fill`): an optimal packing when found. None when not found by
    `deadline`, or when the bound is already met (`found_gpus`)."""
    from solvers.exact_fill import fill

    if lower_gpus >= found_gpus:
        return None
    options = [g.options[0] for g in groups]
    found = fill(pool.capacity, [o.size for o in options], [o.count for o in options],
                 lower_gpus, deadline=deadline, seed=seed)
    return None if found is None else _packing_solution(pool, groups, found, lower_gpus)


def _full_bins(pool: Pool, groups: list[Group], lower_gpus: int, *, deadline: float,
               seed: int) -> tuple[Solution | None, list[tuple[int, ...]]]:
    """Where the items fill `lower_gpus` GPUs exactly (items of one dimension), a packing of
    full GPUs only by column generation over them and a dive (`solvers.full_bins`): an
    optimal packing when found, else None; and the full patterns priced, as counts by group
    index."""
    from solvers import full_bins

    options = [g.options[0] for g in groups]
    found, columns = full_bins.fill(pool.capacity, [o.size for o in options],
                                    [o.count for o in options], lower_gpus, deadline=deadline,
                                    seed=seed)
    return None if found is None else _packing_solution(pool, groups, found, lower_gpus), columns


def _as_vectors(bins: list[Counter], types: int) -> list[tuple[int, ...]]:
    """Bins of counts by type index as dense count vectors, built in numpy: with thousands
    of types and bins a Python loop over both would take seconds."""
    dense = np.zeros((len(bins), types), dtype=np.int64)
    for b, contents in enumerate(bins):
        dense[b, list(contents)] = list(contents.values())
    return [tuple(row) for row in dense.tolist()]


def _hint_bins(hint: Solution, groups: list[Group]) -> list[Counter]:
    """The hint's GPUs as counts of group indexes."""
    index = {g.name: t for t, g in enumerate(groups)}
    bins: dict[tuple, Counter] = defaultdict(Counter)
    for p in hint.placements:
        bins[(p.node, p.gpus)][index[p.group]] += 1
    return list(bins.values())


def _packing_solution(pool, groups: list[Group], bins: list[list[int]],
                      lower_gpus: int) -> Solution:
    """Bins of item-type indexes as placements, GPUs filling nodes in order."""
    placements: list[Placement] = []
    replica: dict[str, int] = defaultdict(int)
    for b, contents in enumerate(bins):
        for t in contents:
            name = groups[t].name
            placements.append(Placement(name, replica[name], pool.name,
                                        b // pool.gpus_per_node, (b % pool.gpus_per_node,)))
            replica[name] += 1
    bound = pool.node_cost * math.ceil(lower_gpus / pool.gpus_per_node)
    cost = pool.node_cost * math.ceil(len(bins) / pool.gpus_per_node)
    return Solution("optimal" if cost <= bound else "feasible", cost, min(bound, cost),
                    tuple(placements))


def _choose_placed(problem: Problem, hint: Solution, *, time_limit_s: float, seed: int,
                   workers: int) -> Solution:
    """When greedy leaves groups out, let CP-SAT place as many as priorities allow."""
    from solvers import cpsat

    deadline = now() + time_limit_s
    nodes = {p.name: p.max_nodes for p in problem.pools}
    if _variables(problem, nodes) > MAX_JOINT_VARIABLES:
        return hint
    try:
        model = cpsat.build(problem, nodes, priority_stage=True, deadline=deadline)
    except cpsat.OutOfTime:
        return hint
    cpsat.add_hint(model, hint)
    solver, status = cpsat.solve(model, time_limit_s=deadline - now(), seed=seed,
                                 workers=workers)
    if status not in ("OPTIMAL", "FEASIBLE"):
        mandatory = [g.name for g in problem.groups if not g.optional]
        if any(g in hint.unplaced for g in mandatory) and status == "INFEASIBLE":
            from solvers.explain import explain

            raise InfeasibleError(explain(problem, seed=seed, focus=[
                g for g in mandatory if g in hint.unplaced]))
        return hint
    placements, layouts = cpsat.extract(model, solver)
    placed = {p.group for p in placements}
    unplaced = {g.name: hint.unplaced.get(g.name) or unplaced_reason(problem, g)
                for g in problem.groups if g.name not in placed}
    cost = nodes_cost(problem.pools, placements)
    return _better(hint, Solution("feasible", cost, 0, tuple(placements), unplaced, layouts),
                   problem)


def _choose_placed_by_component(problem: Problem, hint: Solution, *, time_limit_s: float,
                                seed: int, workers: int) -> Solution:
    """`_choose_placed` on each component that holds an unplaced group, the rest kept as
    greedy placed it: a component shares no pool with the others, so its model is all that
    decides whether its groups fit, and a small model is solved within its time."""
    stuck = [c for c in _components(problem) if any(g.name in hint.unplaced for g in c.groups)]
    sizes = [_variables(c, {p.name: p.max_nodes for p in c.pools}) for c in stuck]
    placements, layouts = list(hint.placements), dict(hint.mig_layouts)
    unplaced = dict(hint.unplaced)
    for index, component in enumerate(stuck):
        pools = {p.name for p in component.pools}
        groups = {g.name for g in component.groups}
        sub_hint = replace(_restrict(hint, component),
                           unplaced={g: r for g, r in hint.unplaced.items() if g in groups})
        share = time_limit_s * sizes[index] / max(sum(sizes), 1)
        found = _choose_placed(component, sub_hint, time_limit_s=share, seed=seed,
                               workers=workers)
        placements = [p for p in placements if p.pool not in pools] + list(found.placements)
        layouts = {k: v for k, v in layouts.items() if k[0] not in pools} | found.mig_layouts
        unplaced = {g: r for g, r in unplaced.items() if g not in groups} | found.unplaced
    return Solution(hint.status, nodes_cost(problem.pools, placements), 0, tuple(placements),
                    unplaced, layouts)


def solve(problem: Problem, *, method: str = "cpsat", time_limit_s: float = 10.0,
          seed: int = 0, workers: int = 2, base: Solution | None = None,
          progress: Progress | None = None, deterministic: bool = False) -> Solution:
    """Place `problem` as cheaply as its rules allow; see the module docstring for the steps.

    `deterministic` counts work instead of seconds (`solvers.clock.WorkClock`): the time limit
    is then a budget of deterministic seconds, CP-SAT runs on one worker, and the same problem,
    seed and budget give the same solution on any machine at any load. The solution's
    `seconds` are read from the same clock.
    """
    with using(WorkClock() if deterministic else Clock()):
        return _solve(problem, method=method, time_limit_s=time_limit_s, seed=seed,
                      workers=workers, base=base, progress=progress)


def _solve(problem: Problem, *, method: str = "cpsat", time_limit_s: float = 10.0,
           seed: int = 0, workers: int = 2, base: Solution | None = None,
           progress: Progress | None = None) -> Solution:
    """`solve` on the clock in use."""
    start = now()
    time_limit_s *= 0.95  # leave room for checking and assembling the answer
    limit_s = time_limit_s

    def say(phase: str, best_cost: int | None = None, lower_bound: int | None = None) -> None:
        if progress is not None:
            spent = min(1.0, (now() - start) / limit_s) if limit_s > 0 else 1.0
            progress(Step(phase, best_cost, lower_bound, spent))

    reduced, impossible = _without_impossible(problem)
    say("greedy")
    hint = _better(greedy(reduced, "first"), greedy(reduced, "best"), reduced)
    if method == "cpsat" and hint.unplaced:
        say("placing by priority", hint.cost)
        hint = _choose_placed_by_component(reduced, hint, time_limit_s=time_limit_s / 3,
                                           seed=seed, workers=workers)
    mandatory = [g.name for g in reduced.groups if not g.optional and g.name in hint.unplaced]
    if mandatory or any(not problem.group(g).optional for g in impossible):
        from solvers.explain import explain

        raise InfeasibleError(explain(reduced, seed=seed, focus=mandatory or None,
                                      extra=impossible))
    placed = replace(reduced, groups=tuple(replace(g, optional=False) for g in reduced.groups
                                           if g.name not in hint.unplaced))
    unplaced = {**impossible, **hint.unplaced}
    if method == "greedy":
        lower = sum(cost_bound(c, list(c.groups)) for c in _components(placed))
        return _finish(problem, replace(hint, status="greedy", lower_bound=min(lower, hint.cost),
                                        unplaced=unplaced), start, base)

    components = _components(placed)
    sizes: list[int] = []
    fixed_bounds: list[int | None] = []
    for index, component in enumerate(components):
        sub_hint = _restrict(hint, component)
        fixed_bounds.append(None)
        if not _is_plain_packing(component) and \
                _variables(component, _node_limits(component, sub_hint)) > MAX_JOINT_VARIABLES:
            # Too large to choose pools jointly: keep greedy's choice, and keep the bound of
            # the free choice, since the fixed problem's own bound does not hold for it.
            fixed_bounds[index] = cost_bound(component, list(component.groups),
                                             time_limit_s=max(1.0, time_limit_s / 20))
            components[index] = component = _fix_to_hint(component, sub_hint)
        sizes.append(_variables(component, _node_limits(component, sub_hint)))
    parts: list[Solution] = []
    remaining = time_limit_s - (now() - start)
    hint_costs = [_restrict(hint, component).cost for component in components]
    for index, component in enumerate(components):
        best = sum(p.cost for p in parts) + sum(hint_costs[index:])
        bound = sum(p.lower_bound for p in parts) if parts else None
        say(f"solving part {index + 1} of {len(components)}", best, bound)
        share = remaining * sizes[index] / max(sum(sizes[index:]), 1)
        began = now()
        sub_base = _restrict(base, component) if base else None
        if fixed_bounds[index] is not None and base is None:
            part = _improve_by_windows(component, _restrict(hint, component),
                                       time_limit_s=share, seed=seed, workers=workers)
        else:
            part = _solve_component(component, _restrict(hint, component),
                                    time_limit_s=share, seed=seed, workers=workers,
                                    base=sub_base)
        fixed_bound = fixed_bounds[index]
        if fixed_bound is not None:
            bound = min(fixed_bound, part.cost)
            part = replace(part, lower_bound=bound, status="optimal" if part.cost <= bound
                           else ("feasible" if part.status == "optimal" else part.status))
        parts.append(part)
        remaining -= now() - began
    statuses = {p.status for p in parts} or {"optimal"}
    status = "optimal" if statuses == {"optimal"} else (
        "greedy" if statuses == {"greedy"} else "feasible")
    merged = Solution(status, sum(p.cost for p in parts), sum(p.lower_bound for p in parts),
                      tuple(pl for p in parts for pl in p.placements), unplaced,
                      {k: v for p in parts for k, v in p.mig_layouts.items()})
    say("checking the answer", merged.cost, merged.lower_bound)
    return _finish(problem, merged, start, base)


def _finish(problem: Problem, solution: Solution, start: float, base: Solution | None):
    broken = violations(problem, solution)
    if broken:
        raise AssertionError("engine produced an invalid solution: " + "; ".join(broken[:5]))
    moved = _moved_count(solution, base) if base else 0
    return replace(solution, seconds=now() - start, moved=moved)


def _moved_count(solution: Solution, base: Solution) -> int:
    """Replicas no longer on their base node, the moves Kubernetes would make."""
    before = Counter((p.group, p.pool, p.node) for p in base.placements)
    after = Counter((p.group, p.pool, p.node) for p in solution.placements)
    return sum((before - after).values())

