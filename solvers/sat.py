"""One place that configures a CP-SAT solver: time limit, seed and workers, always explicit.

`new_solver` and `run` go through the clock in use (`solvers.clock`): on the wall clock the
limit is seconds, on the deterministic clock it is deterministic time on one worker, and `run`
charges what the solve spent.
"""

from __future__ import annotations

from ortools.sat.python import cp_model

from solvers.clock import current, new_deterministic_solver

__all__ = ["new_deterministic_solver", "new_solver", "run"]


def new_solver(time_limit_s: float, seed: int = 0, workers: int = 1) -> cp_model.CpSolver:
    return current().solver(time_limit_s, seed, workers)


def run(solver: cp_model.CpSolver, model: cp_model.CpModel,
        callback: cp_model.CpSolverSolutionCallback | None = None):
    """Solve `model` with `solver`, counting the work on the clock in use; the status code."""
    return current().solve(solver, model, callback)

