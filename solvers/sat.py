"""One place that configures a CP-SAT solver: time limit, seed and workers, always explicit.

`new_solver` and `run` go through the clock in use (`solvers.clock`): on the wall clock the
limit is seconds, on the deterministic clock it is deterministic time on one worker, and `run`
charges what the solve spent.
"""

from __future__ import annotations

from ortools.sat.python import cp_model

from solvers.clock import current


def new_solver(time_limit_s: float, seed: int = 0, workers: int = 1) -> cp_model.CpSolver:
    return current().solver(time_limit_s, seed, workers)


def run(solver: cp_model.CpSolver, model: cp_model.CpModel,
        callback: cp_model.CpSolverSolutionCallback | None = None):
    """Solve `model` with `solver`, counting the work on the clock in use; the status code."""
    return current().solve(solver, model, callback)


def new_deterministic_solver(deterministic_time: float, seed: int = 0) -> cp_model.CpSolver:
    """A solver bounded by CP-SAT's deterministic time on one worker, with no wall-clock
    limit: it does the same work, and gives the same answer, on any machine at any load."""
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = deterministic_time
    solver.parameters.random_seed = seed
    solver.parameters.num_workers = 1
    return solver
