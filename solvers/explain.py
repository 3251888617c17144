"""Explaining infeasibility: which rules and which groups cannot all hold at once.

Every rule of the CP-SAT model gets an assumption literal (placing a mandatory group, a pool's
node limit, a spread limit, a conflict rule). CP-SAT returns a sufficient set of assumptions
for infeasibility; a deletion pass then shrinks it to a minimal set a person can act on.
"""

from __future__ import annotations

import time

from solvers.problem import Problem

DESCRIBE = {
    "group": "{name} must be placed",
    "limit": "pool {name} may use at most {max_nodes} nodes",
    "spread": "spread limit of {name}",
    "conflict": "conflict rule {name}",
}


def _describe(problem: Problem, kind: str, name: str) -> str:
    fields: dict[str, object] = {"name": name}
    if kind == "limit":
        fields["max_nodes"] = problem.pool(name).max_nodes
    return DESCRIBE[kind].format(**fields)


def _infeasible_core(problem: Problem, assumed: list[tuple[str, str]] | None,
                     time_limit_s: float, seed: int) -> list[tuple[str, str]] | None:
    """The assumptions CP-SAT blames, or None when the model is feasible or undecided."""
    from solvers import cpsat

    total = {p.name: p.max_nodes + sum(
        o.count * max(o.whole_gpus, 1) for g in problem.groups if (o := g.find_option(p.name)))
        for p in problem.pools}
    nodes = {name: min(count, 2 * problem.pool(name).max_nodes + 4)
             for name, count in total.items()}
    model = cpsat.build(problem, nodes, explain=True)
    assert model.switches is not None  # built in explain mode
    keys = list(model.switches)
    if assumed is not None:
        for key in keys:
            if key not in assumed:
                model.cp.add(model.switches[key] == 0)
    model.cp.add_assumptions([model.switches[k] for k in keys
                              if assumed is None or k in assumed])
    model.cp.minimize(0)
    from ortools.sat.python import cp_model

    from solvers.sat import new_solver

    solver = new_solver(max(time_limit_s, 0.1), seed)
    solver.parameters.cp_model_presolve = False  # presolve can blame literals wrongly
    if solver.solve(model.cp) != cp_model.INFEASIBLE:
        return None
    blamed = set(solver.sufficient_assumptions_for_infeasibility())
    return [k for k in keys if model.switches[k].index in blamed]


def explain(problem: Problem, *, time_limit_s: float = 10.0, seed: int = 0, workers: int = 1,
            extra: dict[str, str] | None = None) -> list[str]:
    """Short sentences naming the clashing rules and groups, smallest set found in time."""
    reasons = [f"{name} cannot be placed: {why}" for name, why in (extra or {}).items()
               if not problem.groups or name not in {g.name for g in problem.groups}]
    deadline = time.perf_counter() + time_limit_s
    core = _infeasible_core(problem, None, time_limit_s / 2, seed)
    if core is None:
        return reasons or ["no placement satisfies every rule within the time limit"]
    for key in list(core):
        left = deadline - time.perf_counter()
        if left <= 0 or len(core) == 1:
            break
        trial = [k for k in core if k != key]
        smaller = _infeasible_core(problem, trial, left / 2, seed)
        if smaller is not None:
            core = smaller if len(smaller) < len(trial) else trial
    groups = sorted(name for kind, name in core if kind == "group")
    rules = [_describe(problem, kind, name) for kind, name in core if kind != "group"]
    sentence = f"these cannot all hold: {', '.join(rules) or 'capacity of the pools'}"
    if groups:
        sentence += f"; with {', '.join(groups)} placed"
    return [*reasons, sentence]
