"""One place that configures a CP-SAT solver: time limit, seed and workers, always explicit."""

from __future__ import annotations

from ortools.sat.python import cp_model


def new_solver(time_limit_s: float, seed: int = 0, workers: int = 1) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.random_seed = seed
    solver.parameters.num_workers = workers
    return solver


def new_deterministic_solver(deterministic_time: float, seed: int = 0) -> cp_model.CpSolver:
    """A solver bounded by CP-SAT's deterministic time on one worker, with no wall-clock
    limit: it does the same work, and gives the same answer, on any machine at any load."""
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = deterministic_time
    solver.parameters.random_seed = seed
    solver.parameters.num_workers = 1
    return solver
