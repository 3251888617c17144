"""The CP-SAT placement model: build, solve and extract as separate steps.

Sets: pools p; nodes n < N_p of p; GPUs b < N_p * G_p (node of b = b // G_p); groups g with an
option in p; for MIG pools, layouts L and slice types s.

Variables:
  open[p,n]      node n of pool p is bought                       (bool)
  use[p,b]       GPU b hosts shared replicas (MIG: one layout)    (bool)
  layout[p,b,L]  MIG GPU b is cut by layout L                     (bool)
  put[g,p,b]     replicas of g on shared GPU b                    (int, aggregated)
  cut[g,p,b,s]   replicas of g on slices s of MIG GPU b           (int, aggregated)
  whole[g,p,n]   multi-GPU replicas of g on node n                (int)
  pick[g,f]      g goes to pool family f (a pool, or the shapes of one)  (bool)
  seen[c,p,b|n]  a group of class c sits on GPU b or node n       (bool)

Constraints: every replica of a placed group in its one pool family; capacity per GPU and dimension
(a whole-GPU replica's per-GPU demand against each of its GPUs); capacity per node and node
dimension (CPU, host memory: every replica on the node);
slices per layout; GPUs per node; spread per node; conflicting classes apart; symmetry between
identical GPUs and nodes; proven lower bounds as cuts.

Objective: lexicographic by weights: unplaced priority first (only when some group must stay
out), then cost per hour, then replicas moved against a base solution. Balance between GPUs is
left to the symmetry order (fullest GPUs first) rather than weighed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from solvers.clock import MODEL_TERM, charge, model_terms, now, solve_overhead
from solvers.problem import Group, Placement, Pool, Problem, Solution
from solvers.sat import new_solver, run


class OutOfTime(Exception):
    """The model was not built by its deadline: the caller keeps the answer it has."""


@dataclass
class _Budget:
    """Building a model of tens of thousands of variables in Python takes seconds, so the
    build checks its deadline as it goes and counts each variable and constraint written as
    work (`MODEL_TERM`) on the clock in use. It stops once the model written so far could no
    longer be loaded into CP-SAT by the deadline either."""

    deadline: float | None
    written: int = 0

    def check(self, cp: cp_model.CpModel) -> None:
        if self.deadline is None:
            return
        size = model_terms(cp)
        charge(MODEL_TERM * (size - self.written))
        self.written = size
        if now() + solve_overhead(size) > self.deadline:
            raise OutOfTime


@dataclass
class Model:
    problem: Problem
    cp: cp_model.CpModel
    nodes: dict[str, int]
    open: dict[tuple[str, int], cp_model.IntVar] = field(default_factory=dict)
    use: dict[tuple[str, int], cp_model.IntVar] = field(default_factory=dict)
    layout: dict[tuple[str, int, int], cp_model.IntVar] = field(default_factory=dict)
    put: dict[tuple[str, str, int], cp_model.IntVar] = field(default_factory=dict)
    cut: dict[tuple[str, str, int, int], cp_model.IntVar] = field(default_factory=dict)
    whole: dict[tuple[str, str, int], cp_model.IntVar] = field(default_factory=dict)
    pick: dict[tuple[str, str], cp_model.IntVar] = field(default_factory=dict)
    """By (group, pool): the group's pick of the pool's family, one variable per family."""
    in_family: dict[tuple[str, str], list] = field(default_factory=dict)
    cost_scale: int = 1
    switches: dict[tuple[str, str], cp_model.IntVar] | None = None
    budget: _Budget = field(default_factory=lambda: _Budget(None))

    def switch(self, kind: str, name: str) -> list:
        """In explain mode, the assumption literal that turns one rule on; else nothing."""
        if self.switches is None:
            return []
        key = (kind, name)
        if key not in self.switches:
            self.switches[key] = self.cp.new_bool_var(f"rule[{kind},{name}]")
        return [self.switches[key]]


def _per_gpu_bound(pool: Pool, group: Group, spread: bool) -> int:
    """Replicas of `group` one GPU can hold; the spread limit too unless it is switchable."""
    option = group.option(pool.name)
    bound = option.count
    for s, c in zip(option.size, pool.capacity, strict=True):
        if s:
            bound = min(bound, c // s)
    if spread and option.max_per_node is not None:
        bound = min(bound, option.max_per_node)
    return bound


def build(problem: Problem, nodes: dict[str, int], *, priority_stage: bool = False,
          base: Solution | None = None, lower_bound: int = 0, explain: bool = False,
          deadline: float | None = None) -> Model:
    """The CP-SAT model of `problem` with at most `nodes[p]` nodes in each pool.

    With `explain`, each rule is switched on by an assumption literal (see `Model.switch`), so
    an infeasible model yields the rules and groups that clash. With a `deadline` (on the
    clock in use) the build stops there with `OutOfTime`.
    """
    cp = cp_model.CpModel()
    m = Model(problem, cp, nodes, switches={} if explain else None, budget=_Budget(deadline))
    members: dict[str, list[Group]] = defaultdict(list)
    for group in problem.groups:
        for option in group.options:
            members[option.pool].append(group)

    # Each group goes to at most one pool; mandatory groups to exactly one.
    for group in problem.groups:
        families: dict[str, cp_model.IntVar] = {}
        for option in group.options:
            family = problem.pool(option.pool).family_name
            if family not in families:
                families[family] = cp.new_bool_var(f"pick[{group.name},{family}]")
            m.pick[(group.name, option.pool)] = families[family]
        picks = list(families.values())
        if group.optional:
            cp.add(sum(picks) <= 1)
        elif explain:
            cp.add(sum(picks) <= 1)
            cp.add(sum(picks) == 1).only_enforce_if(m.switch("group", group.name))
        else:
            cp.add_exactly_one(picks)

    m.budget.check(cp)
    for pool in problem.pools:
        _build_pool(m, pool, members[pool.name], base is not None)
    for (group_name, family), placed in m.in_family.items():
        # All replicas of a picked group over the shapes of its pool, none otherwise.
        group = problem.group(group_name)
        option = next(o for o in group.options if problem.pool(o.pool).family_name == family)
        cp.add(sum(placed) == option.count * m.pick[(group_name, option.pool)])
    _build_conflicts(m, members)
    m.budget.check(cp)

    cost = sum(pool.node_cost * m.open[(pool.name, n)]
               for pool in problem.pools for n in range(nodes[pool.name]))
    if lower_bound:
        cp.add(cost >= lower_bound)  # proven bound as a cut
    if priority_stage:
        most = sum(pool.node_cost * nodes[pool.name] for pool in problem.pools)
        cp.minimize((most + 1) * _unplaced_penalty(m) + cost)
        return m
    objective = cost
    if base is not None:
        moved = _moved(m, base)
        m.cost_scale = sum(1 for _ in base.placements) + 1
        objective = m.cost_scale * cost + moved
    cp.minimize(objective)
    return m


def _build_pool(m: Model, pool: Pool, groups: list[Group], keep_ids: bool) -> None:
    """One pool's variables and rules; `keep_ids` (with a base) drops the symmetry order so
    nodes and GPUs keep the identity they had in the base."""
    cp, name, size = m.cp, pool.name, pool.gpus_per_node
    node_count = m.nodes[name]
    for n in range(node_count):
        m.open[(name, n)] = cp.new_bool_var(f"open[{name},{n}]")
        if n and not keep_ids:
            cp.add(m.open[(name, n)] <= m.open[(name, n - 1)])  # symmetry: nodes in order
        if n >= pool.max_nodes:
            # Node limit of the pool (only reachable in explain mode, which allows more nodes).
            cp.add(m.open[(name, n)] == 0).only_enforce_if(m.switch("limit", name))
    m.budget.check(cp)
    gpus = range(node_count * size)
    for b in gpus:
        m.use[(name, b)] = cp.new_bool_var(f"use[{name},{b}]")
        cp.add(m.use[(name, b)] <= m.open[(name, b // size)])
        if b % size and not keep_ids:
            cp.add(m.use[(name, b)] <= m.use[(name, b - 1)])  # symmetry: GPUs of a node in order

    shared = [g for g in groups if not g.option(name).whole_gpus]
    whole = [g for g in groups if g.option(name).whole_gpus]
    if pool.mode == "mig":
        _build_mig(m, pool, shared)
    else:
        _build_shared(m, pool, shared, gpus, keep_ids)

    for g in whole:
        option = g.option(name)
        bound = min(option.count, size // option.whole_gpus)
        if any(a > c for a, c in zip(option.size, pool.capacity, strict=True)):
            bound = 0  # capacity per GPU: each whole GPU must hold the replica's per-GPU demand
        if m.switches is None and option.max_per_node is not None:
            bound = min(bound, option.max_per_node)
        for n in range(node_count):
            m.whole[(g.name, name, n)] = cp.new_int_var(0, bound, f"whole[{g.name},{name},{n}]")
    for n in range(node_count):
        m.budget.check(cp)
        # GPUs per node: shared GPUs plus whole GPUs of multi-GPU replicas.
        terms: list[cp_model.LinearExpr] = [m.use[(name, b)]
                                            for b in range(n * size, (n + 1) * size)]
        terms += [g.option(name).whole_gpus * m.whole[(g.name, name, n)] for g in whole]
        cp.add(sum(terms) <= size * m.open[(name, n)])
        # Node capacity in every node dimension: all replicas on the node, whatever their GPUs.
        for d, cap in enumerate(pool.node_capacity):
            node_terms = [need * v for g in groups for dim, need, _ in
                          g.option(name).node_demand(pool) if dim == d
                          for v in _replicas_on(m, pool, g, list(range(n * size, (n + 1) * size)),
                                                n, "node")]
            if node_terms:
                cp.add(sum(node_terms) <= cap * m.open[(name, n)])

    for g in groups:
        m.budget.check(cp)
        option = g.option(name)
        placed = [m.whole[(g.name, name, n)] for n in range(node_count)] if option.whole_gpus \
            else _replica_vars(m, pool, g, gpus)
        if pool.family:
            m.in_family.setdefault((g.name, pool.family), []).extend(placed)
        else:
            # All replicas of a picked group, none otherwise.
            m.cp.add(sum(placed) == option.count * m.pick[(g.name, name)])
        if option.max_per_node is not None:
            for n in range(node_count):
                # Spread: at most max_per_node replicas of the group on one node.
                on_node = [v for b in range(n * size, (n + 1) * size)
                           for v in _replica_vars(m, pool, g, [b])] if not option.whole_gpus \
                    else [m.whole[(g.name, name, n)]]
                m.cp.add(sum(on_node) <= option.max_per_node).only_enforce_if(
                    m.switch("spread", g.name))


def _build_shared(m: Model, pool: Pool, shared: list[Group], gpus: range,
                  keep_ids: bool) -> None:
    """Replicas of `shared` groups counted per GPU of a pool that is not MIG, within each
    GPU's capacity."""
    cp, name, size = m.cp, pool.name, pool.gpus_per_node
    for g in shared:
        m.budget.check(cp)
        bound = _per_gpu_bound(pool, g, spread=m.switches is None)
        for b in gpus:
            m.put[(g.name, name, b)] = cp.new_int_var(0, bound, f"put[{g.name},{name},{b}]")
    for b in gpus:
        m.budget.check(cp)
        # Capacity of every GPU in every dimension.
        for d, cap in enumerate(pool.capacity):
            terms = [g.option(name).size[d] * m.put[(g.name, name, b)] for g in shared
                     if g.option(name).size[d]]
            if terms:
                cp.add(sum(terms) <= cap * m.use[(name, b)])
        # Symmetry: within a node (or across nodes of one GPU), GPUs by decreasing load.
        if (b % size or size == 1) and not keep_ids:
            if b and shared:
                cp.add(_load(m, pool, shared, b) <= _load(m, pool, shared, b - 1))


def _load(m: Model, pool: Pool, shared: list[Group], b: int):
    return sum(g.option(pool.name).size[0] * m.put[(g.name, pool.name, b)] for g in shared)


def _replica_vars(m: Model, pool: Pool, g: Group, gpus) -> list:
    if pool.mode == "mig":
        return [v for b in gpus for s in range(len(pool.slice_types))
                if (v := m.cut.get((g.name, pool.name, b, s))) is not None]
    return [m.put[(g.name, pool.name, b)] for b in gpus]


def _build_mig(m: Model, pool: Pool, shared: list[Group]) -> None:
    cp, name = m.cp, pool.name
    fitting = {g.name: [s for s, kind in enumerate(pool.slice_types)
                        if g.option(name).fits_slice(kind)] for g in shared}
    for b in range(m.nodes[name] * pool.gpus_per_node):
        m.budget.check(cp)
        choices = []
        for index in range(len(pool.mig_layouts)):
            var = cp.new_bool_var(f"layout[{name},{b},{index}]")
            m.layout[(name, b, index)] = var
            choices.append(var)
        cp.add(sum(choices) == m.use[(name, b)])  # a used MIG GPU has exactly one layout
        for s in range(len(pool.slice_types)):
            users = []
            for g in shared:
                if s in fitting[g.name]:
                    bound = min(g.option(name).count, max(L[s] for L in pool.mig_layouts))
                    var = cp.new_int_var(0, bound, f"cut[{g.name},{name},{b},{s}]")
                    m.cut[(g.name, name, b, s)] = var
                    users.append(var)
            if users:
                # Slices: no more replicas on slice type s than the layout cuts.
                cp.add(sum(users) <= sum(L[s] * m.layout[(name, b, i)]
                                         for i, L in enumerate(pool.mig_layouts)))


def _build_conflicts(m: Model, members: dict[str, list[Group]]) -> None:
    """One flag per class and GPU (or node) that says the class is there, shared by every rule
    that names the class; each rule then forbids two flags at once."""
    problem, cp = m.problem, m.cp
    for pool in problem.pools:
        groups = members[pool.name]
        present = {c for g in groups for c in g.classes}
        size = pool.gpus_per_node
        for scope in ("gpu", "node"):
            rules = [c for c in problem.conflicts if c.scope == scope and c.a in present
                     and c.b in present]
            if not rules or (scope == "gpu" and pool.mode == "mig"):
                continue  # MIG slices are hardware-isolated partitions
            classes = {c.a for c in rules} | {c.b for c in rules}
            if scope == "gpu":
                places = [[b] for b in range(m.nodes[pool.name] * size)]
            else:
                places = [list(range(n * size, (n + 1) * size))
                          for n in range(m.nodes[pool.name])]
            holders = {c: [g for g in groups if c in g.classes] for c in sorted(classes)}
            for index, gpus in enumerate(places):
                m.budget.check(cp)
                seen = {}
                for c, holding in holders.items():
                    seen[c] = cp.new_bool_var(f"seen[{c},{pool.name},{scope},{index}]")
                    for g in holding:
                        replicas = _replicas_on(m, pool, g, gpus, index, scope)
                        if replicas:
                            cp.add(sum(replicas) <= g.option(pool.name).count * seen[c])
                for rule in rules:
                    # Conflict: the two classes never meet on this GPU or node.
                    cp.add(seen[rule.a] + seen[rule.b] <= 1).only_enforce_if(
                        m.switch("conflict", rule.name))


def _replicas_on(m: Model, pool: Pool, g: Group, gpus: list[int], node: int, scope: str):
    if g.option(pool.name).whole_gpus:
        return [m.whole[(g.name, pool.name, node)]] if scope == "node" else []
    return _replica_vars(m, pool, g, gpus)


def _unplaced_penalty(m: Model):
    """Weights that make one unplaced group of a priority outweigh all lower ones together."""
    levels = sorted({g.priority for g in m.problem.groups})
    weight, weights = 1, {}
    for level in levels:
        weights[level] = weight
        weight *= sum(1 for g in m.problem.groups if g.priority == level) + 1
    return sum(weights[g.priority] * (1 - sum(_picks(m, g))) for g in m.problem.groups
               if g.optional)


def _picks(m: Model, group: Group) -> list:
    """The group's pick variables, one per pool family it may use."""
    return list({id(v): v for v in (m.pick[(group.name, o.pool)] for o in group.options)
                 }.values())


def _moved(m: Model, base: Solution):
    """Replicas of the base solution that are not where they were: same GPU for replicas that
    share GPUs, same node for whole-GPU replicas (the device plugin picks their GPUs)."""
    counts: dict[tuple[str, str, int, int | None], int] = defaultdict(int)
    names = {g.name: g for g in m.problem.groups}
    for p in base.placements:
        group = names.get(p.group)
        option = group.find_option(p.pool) if group else None
        gpu = None if option is None or option.whole_gpus else p.gpus[0]
        counts[(p.group, p.pool, p.node, gpu)] += 1
    kept = []
    for (group_name, pool_name, node, gpu), count in counts.items():
        group = names.get(group_name)
        if group is None or group.find_option(pool_name) is None or node >= m.nodes[pool_name]:
            continue
        pool = m.problem.pool(pool_name)
        size = pool.gpus_per_node
        if gpu is None:
            here = _replicas_on(m, pool, group, list(range(node * size, (node + 1) * size)),
                                node, "node")
        else:
            here = _replica_vars(m, pool, group, [node * size + gpu])
        var = m.cp.new_int_var(0, count, f"kept[{group_name},{pool_name},{node},{gpu}]")
        m.cp.add(var <= sum(here))
        kept.append(var)
    return len(base.placements) - sum(kept)


def add_hint(m: Model, solution: Solution, *, as_is: bool = False) -> None:
    """Give CP-SAT a full starting point, laid out the way the symmetry constraints expect
    (or, `as_is`, exactly where the solution put everything, for a model kept in base ids)."""
    problem = m.problem
    placed = {(p.group, problem.pool(p.pool).family_name) for p in solution.placements}
    for group in problem.groups:
        hinted: set[str] = set()
        for option in group.options:
            family = problem.pool(option.pool).family_name
            if family not in hinted:
                hinted.add(family)
                m.cp.add_hint(m.pick[(group.name, option.pool)], (group.name, family) in placed)
    layout = (_layout_as_is if as_is else canonical_layout)(problem, solution)
    for pool in problem.pools:
        size = pool.gpus_per_node
        name = pool.name
        values: dict = defaultdict(int)
        for (pool_name, node, local), (kind, content) in layout.items():
            if pool_name != name or node >= m.nodes[name]:
                continue
            values[("open", node)] = 1
            b = node * size + local
            if kind == "whole":
                for group_name in content:
                    values[("whole", group_name, node)] += 1
                continue
            values[("use", b)] = 1
            if pool.mode == "mig":
                values[("layout", b, content["layout"])] = 1
                for group_name, s in content["replicas"]:
                    values[("cut", group_name, b, s)] += 1
            else:
                for group_name in content:
                    values[("put", group_name, b)] += 1
        for (pool_name, n), var in m.open.items():
            if pool_name == name:
                m.cp.add_hint(var, values[("open", n)])
        for (pool_name, b), var in m.use.items():
            if pool_name == name:
                m.cp.add_hint(var, values[("use", b)])
        for (pool_name, b, i), var in m.layout.items():
            if pool_name == name:
                m.cp.add_hint(var, values[("layout", b, i)])
        for (g, pool_name, b), var in m.put.items():
            if pool_name == name:
                m.cp.add_hint(var, values[("put", g, b)])
        for (g, pool_name, b, s), var in m.cut.items():
            if pool_name == name:
                m.cp.add_hint(var, values[("cut", g, b, s)])
        for (g, pool_name, n), var in m.whole.items():
            if pool_name == name:
                # A k-GPU replica was counted once per GPU above.
                m.cp.add_hint(var, values[("whole", g, n)] // problem.group(g).option(
                    name).whole_gpus)


def _layout_as_is(problem: Problem, solution: Solution) -> dict:
    """Each used GPU as (pool, node, local index) -> contents, where the solution has it."""
    result: dict = {}
    kinds = {pool.name: [s.name for s in pool.slice_types] for pool in problem.pools}
    for p in solution.placements:
        option = problem.group(p.group).option(p.pool)
        for g in p.gpus:
            key = (p.pool, p.node, g)
            if option.whole_gpus:
                result.setdefault(key, ("whole", []))[1].append(p.group)
            elif p.slice is not None:
                entry = result.setdefault(key, ("shared", {
                    "layout": solution.mig_layouts[key], "replicas": []}))
                entry[1]["replicas"].append((p.group, kinds[p.pool].index(p.slice)))
            else:
                result.setdefault(key, ("shared", []))[1].append(p.group)
    return result


def canonical_layout(problem: Problem, solution: Solution) -> dict:
    """Each used GPU as (pool, node, local index) -> contents, ordered as the model orders them:
    shared GPUs first by decreasing load, whole GPUs last; single-GPU nodes by decreasing load.
    """
    gpus: dict[tuple[str, int, int], list[Placement]] = defaultdict(list)
    for p in solution.placements:
        for g in p.gpus:
            gpus[(p.pool, p.node, g)].append(p)
    by_node: dict[tuple[str, int], list[tuple[str, int, int]]] = defaultdict(list)
    for key in gpus:
        by_node[key[:2]].append(key)
    result = {}
    for pool in problem.pools:
        nodes = sorted(node for (name, node) in by_node if name == pool.name)

        def load(key, pool=pool):
            return sum(problem.group(p.group).option(pool.name).size[0] for p in gpus[key]
                       if not problem.group(p.group).option(pool.name).whole_gpus)

        entries = []
        for node in nodes:
            keys = by_node[(pool.name, node)]
            whole = [k for k in keys if problem.group(gpus[k][0].group).option(pool.name)
                     .whole_gpus]
            shared = sorted((k for k in keys if k not in whole), key=load, reverse=True)
            entries.append((node, shared, whole))
        if pool.gpus_per_node == 1:
            entries.sort(key=lambda e: -load(e[1][0]) if e[1] else 1)
        for new_node, (_, shared, whole) in enumerate(entries):
            for local, key in enumerate(shared):
                content: dict[str, object] | list[str]
                if pool.mode == "mig":
                    layout = solution.mig_layouts[key]
                    kinds = [s.name for s in pool.slice_types]
                    replicas = []
                    for p in gpus[key]:
                        assert p.slice is not None  # a replica in a MIG pool sits on a slice
                        replicas.append((p.group, kinds.index(p.slice)))
                    content = {"layout": layout, "replicas": replicas}
                else:
                    content = [p.group for p in gpus[key]]
                result[(pool.name, new_node, local)] = ("shared", content)
            for local, key in enumerate(whole, start=len(shared)):
                result[(pool.name, new_node, local)] = ("whole", [p.group for p in gpus[key]])
    return result


def solve(m: Model, *, time_limit_s: float, seed: int, workers: int,
) -> tuple[cp_model.CpSolver, str]:
    """Run CP-SAT with explicit limits; returns the solver and its status name."""
    solver = new_solver(max(time_limit_s, 0.05), seed, workers)
    status = run(solver, m.cp)
    return solver, solver.status_name(status)


def extract(m: Model, solver: cp_model.CpSolver) -> tuple[list[Placement], dict]:
    """Read the assignment back as one placement per replica, plus the MIG layouts."""
    problem = m.problem
    placements: list[Placement] = []
    layouts: dict[tuple[str, int, int], int] = {}
    next_replica: dict[str, int] = defaultdict(int)

    def add(group: str, pool: str, node: int, gpus: tuple[int, ...], slice_name=None):
        placements.append(Placement(group, next_replica[group], pool, node, gpus, slice_name))
        next_replica[group] += 1

    on_gpu: dict[tuple[str, int], list] = defaultdict(list)
    for (g, p, b), var in m.put.items():
        on_gpu[(p, b)].append((g, var, None))
    for (g, p, b, s), var in m.cut.items():
        on_gpu[(p, b)].append((g, var, s))
    on_node: dict[tuple[str, int], list] = defaultdict(list)
    for (g, p, n), var in m.whole.items():
        on_node[(p, n)].append((g, var))

    for pool in problem.pools:
        size, name = pool.gpus_per_node, pool.name
        for n in range(m.nodes[name]):
            free = []
            for local in range(size):
                b = n * size + local
                if not solver.value(m.use[(name, b)]):
                    free.append(local)
                    continue
                if pool.mode == "mig":
                    layouts[(name, n, local)] = next(
                        i for i in range(len(pool.mig_layouts))
                        if solver.value(m.layout[(name, b, i)]))
                for g, var, s in on_gpu[(name, b)]:
                    slice_name = pool.slice_types[s].name if s is not None else None
                    for _ in range(solver.value(var)):
                        add(g, name, n, (local,), slice_name)
            for g, var in on_node[(name, n)]:
                k = problem.group(g).option(name).whole_gpus
                for _ in range(solver.value(var)):
                    add(g, name, n, tuple(free[:k]))
                    free = free[k:]
    return placements, layouts


def objective_cost_bound(m: Model, solver: cp_model.CpSolver, base_replicas: int) -> int:
    """A lower bound on cost implied by CP-SAT's bound on the objective."""
    bound = solver.best_objective_bound
    if m.cost_scale > 1:
        return max(0, math.ceil((bound - base_replicas) / m.cost_scale))
    return math.ceil(bound - 1e-6)
