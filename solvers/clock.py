"""Where the engine's phases read the time: the wall clock, or counted work.

Every phase of a solve (greedy's repair, pattern listing, column generation, graph building,
CP-SAT, the local searches) checks a deadline, and every deadline is read from the clock in
use. By default that is the wall clock, so a time limit is seconds. The deterministic clock
counts work instead, the same on any machine at any load: each CP-SAT call runs on one worker
under `max_deterministic_time` and charges the deterministic time it reports, and the engine's
own loops charge fixed amounts per unit of work (a pattern listed, an LP solved, an arc built).
With that clock the same input, seed and budget take the same path through every phase and
give the same answer byte for byte; the budget is in CP-SAT's deterministic seconds, which on
a typical core are of the order of real seconds.

The clock in use is a context variable set by `engine.solve` (`using`), so the phases need not
pass it along; outside a solve it is the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ortools.sat.python import cp_model

# Deterministic seconds charged per unit of the engine's own work, of the order of what each
# costs on one core; they need only be fixed, not exact.
PATTERN_STEP = 1e-5  # one type tried in the depth-first pattern listing
ARC = 2e-6  # one arc of an arc-flow graph
LP_ENTRY = 3e-6  # one non-zero or column of an LP, each time GLOP solves it and it is read
PRICE_ENTRY = 5e-8  # one (pattern, type, dimension) entry in a round of quick pricing
MODEL_TERM = 2e-6  # one term of a CP-SAT model written in Python
STEP = 1e-3  # one round of a search loop, besides the CP-SAT work inside it
BIT_WORD = 3e-9  # one 64-bit word of a bitset shifted or combined (subset sums, graph size)
TABLE_CELL = 1e-9  # one cell of a dynamic-programming table swept in numpy (knapsack pricing)


def new_deterministic_solver(deterministic_time: float, seed: int = 0) -> cp_model.CpSolver:
    """A solver bounded by CP-SAT's deterministic time on one worker, with no wall-clock
    limit: it does the same work, and gives the same answer, on any machine at any load."""
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = deterministic_time
    solver.parameters.random_seed = seed
    solver.parameters.num_workers = 1
    return solver


class Clock:
    """The wall clock: time limits are seconds, CP-SAT runs on the requested workers."""

    deterministic = False

    def now(self) -> float:
        return time.perf_counter()

    def charge(self, work: float) -> None:
        """Count work done outside CP-SAT (nothing to do on the wall clock)."""

    def solver(self, time_limit_s: float, seed: int = 0, workers: int = 1) -> cp_model.CpSolver:
        """A CP-SAT solver limited to `time_limit_s` of this clock."""
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(time_limit_s, 0.0)
        solver.parameters.random_seed = seed
        solver.parameters.num_workers = workers
        return solver

    def solve(self, solver: cp_model.CpSolver, model: cp_model.CpModel,
              callback: cp_model.CpSolverSolutionCallback | None = None):
        """Run `solver` on `model`; the status code."""
        return solver.solve(model, callback)


class WorkClock(Clock):
    """Counted work: CP-SAT's deterministic time on one worker plus fixed charges."""

    deterministic = True

    def __init__(self) -> None:
        self.spent = 0.0

    def now(self) -> float:
        return self.spent

    def charge(self, work: float) -> None:
        self.spent += work

    def solver(self, time_limit_s: float, seed: int = 0, workers: int = 1) -> cp_model.CpSolver:
        # One worker whatever was asked: several workers race, and which wins depends on the
        # machine. No wall-clock limit, which would make the answer depend on the load.
        return new_deterministic_solver(max(time_limit_s, 0.0), seed)

    def solve(self, solver: cp_model.CpSolver, model: cp_model.CpModel,
              callback: cp_model.CpSolverSolutionCallback | None = None):
        status = solver.solve(model, callback)
        self.spent += solver.deterministic_time
        return status


WALL = Clock()  # it holds no state, so one serves every solve
_CURRENT: ContextVar[Clock | None] = ContextVar("clock", default=None)


def current() -> Clock:
    """The clock of the solve in progress (the wall clock outside one)."""
    return _CURRENT.get() or WALL


@contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    """Make `clock` the one every phase reads until the block ends."""
    token = _CURRENT.set(clock)
    try:
        yield clock
    finally:
        _CURRENT.reset(token)


def now() -> float:
    """The current clock's reading: seconds, or deterministic seconds of work."""
    return current().now()


def charge(work: float) -> None:
    """Count `work` deterministic seconds on the current clock (nothing on the wall clock)."""
    current().charge(work)
