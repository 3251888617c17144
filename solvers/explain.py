"""Explaining infeasibility: which rules and which groups cannot all hold at once.

Every rule of the CP-SAT model gets an assumption literal (placing a mandatory group, a pool's
node limit, a spread limit, a conflict rule). CP-SAT returns a sufficient set of assumptions
for infeasibility; a deletion pass then shrinks it to a minimal set a person can act on.

Only the pools and groups linked to the groups being explained enter the model (the component
that their options reach through groups that may use several pools), so the answer names only
rules that bear on them. The work is bounded by a count of CP-SAT calls, each with a fixed
deterministic time on one worker, never by wall-clock time: the same input gives the same
explanation on any machine, however busy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from solvers.problem import Problem

DESCRIBE = {
    "group": "{name} must be placed",
    "limit": "pool {name} may use at most {max_nodes} nodes",
    "spread": "spread limit of {name}",
    "conflict": "conflict rule {name}",
}
MAX_CALLS = 48  # CP-SAT calls per explanation: the first core, then one per deletion
DETERMINISTIC_TIME_PER_CALL = 5.0  # CP-SAT's deterministic time units, on one worker


def _describe(problem: Problem, kind: str, name: str) -> str:
    fields: dict[str, object] = {"name": name}
    if kind == "limit":
        fields["max_nodes"] = problem.pool(name).max_nodes
    return DESCRIBE[kind].format(**fields)


def _infeasible_core(problem: Problem, assumed: list[tuple[str, str]] | None,
                     seed: int) -> list[tuple[str, str]] | None:
    """The assumptions CP-SAT blames, or None when the model is feasible or undecided."""
    from ortools.sat.python import cp_model

    from solvers import cpsat
    from solvers.sat import new_deterministic_solver

    total = {p.name: p.max_nodes + sum(
        o.count * max(o.whole_gpus, 1) for g in problem.groups if (o := g.find_option(p.name)))
        for p in problem.pools}
    nodes = {name: min(count, 2 * problem.pool(name).max_nodes + 4)
             for name, count in total.items()}
    model = cpsat.build(problem, nodes, explain=True)
    switches = model.switches
    assert switches is not None  # built in explain mode
    keys = list(switches)
    if assumed is not None:
        for key in keys:
            if key not in assumed:
                model.cp.add(switches[key] == 0)
    model.cp.add_assumptions([switches[k] for k in keys if assumed is None or k in assumed])
    model.cp.minimize(0)
    solver = new_deterministic_solver(DETERMINISTIC_TIME_PER_CALL, seed)
    solver.parameters.cp_model_presolve = False  # presolve can blame literals wrongly
    if solver.solve(model.cp) != cp_model.INFEASIBLE:
        return None
    blamed = set(solver.sufficient_assumptions_for_infeasibility())
    return [k for k in keys if switches[k].index in blamed]


def _fitting(problem: Problem) -> Problem:
    """Without options whose one replica fits no empty node (the greedy reason names them),
    and without groups left with none."""
    from solvers.greedy import fits_alone

    groups = []
    for group in problem.groups:
        options = tuple(o for o in group.options if fits_alone(problem.pool(o.pool), o))
        if options:
            groups.append(replace(group, options=options))
    return replace(problem, groups=tuple(groups))


def linked(problem: Problem, focus: Iterable[str]) -> Problem:
    """The part of `problem` that can bear on the groups in `focus`: the pools their options
    reach, directly or through groups that may use several pools, and the groups there."""
    pools = {o.pool for g in problem.groups if g.name in set(focus) for o in g.options}
    grown = True
    while grown:
        reach = {o.pool for g in problem.groups if any(o.pool in pools for o in g.options)
                 for o in g.options}
        grown, pools = not reach <= pools, pools | reach
    return replace(problem, pools=tuple(p for p in problem.pools if p.name in pools),
                   groups=tuple(g for g in problem.groups
                                if any(o.pool in pools for o in g.options)))


def explain(problem: Problem, *, seed: int = 0, focus: Iterable[str] | None = None,
            extra: dict[str, str] | None = None) -> list[str]:
    """Short sentences naming the clashing rules and groups that keep the groups in `focus`
    (every group when None) out; the smallest set found within the call budget."""
    reasons = [f"{name} cannot be placed: {why}" for name, why in (extra or {}).items()
               if not problem.groups or name not in {g.name for g in problem.groups}]
    problem = _fitting(problem)
    if focus is not None:
        problem = linked(problem, focus)
        if not problem.groups:
            return reasons  # a replica larger than any node: its own reason says so
    core = _infeasible_core(problem, None, seed)
    if core is None:
        return reasons or ["no placement satisfies every rule within the solver's budget"]
    calls = 1
    for key in list(core):
        if calls >= MAX_CALLS or len(core) == 1:
            break
        if key not in core:
            continue
        trial = [k for k in core if k != key]
        smaller = _infeasible_core(problem, trial, seed)
        calls += 1
        if smaller is not None:
            core = smaller if len(smaller) < len(trial) else trial
    groups = sorted(name for kind, name in core if kind == "group")
    rules = [_describe(problem, kind, name) for kind, name in core if kind != "group"]
    sentence = f"these cannot all hold: {', '.join(rules) or 'capacity of the pools'}"
    if groups:
        sentence += f"; with {', '.join(groups)} placed"
    return [*reasons, sentence]
