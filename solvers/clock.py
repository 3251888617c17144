"""Where the engine's phases read the time: the wall clock, or counted work.

Every phase of a solve (greedy's repair, pattern listing, column generation, graph building,
CP-SAT, the local searches) checks a deadline, and every deadline is read from the clock in
use. By default that is the wall clock, so a time limit is seconds. The deterministic clock
counts work instead, the same on any machine at any load: each CP-SAT call runs on one worker
under `max_deterministic_time` and charges the deterministic time it reports plus what the
solve costs around its search (by the model's size), and the engine's own loops charge fixed
amounts per unit of work (a pattern listed, an LP solved, an arc built), each set to what the
unit costs relative to CP-SAT's deterministic second. With that clock the same input, seed and
budget take the same path through every phase and give the same answer byte for byte; the
budget is in counted seconds, each CP-SAT's deterministic second over `SAT_SECOND`: about a
CPU second on the development machine, alike in every phase. Work that a library would run on
threads of its own, uncounted, stays on the solve's thread (BLAS: `patterns._worth`).

The clock in use is a context variable set by `engine.solve` (`using`), so the phases need not
pass it along; outside a solve it is the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ortools.sat.python import cp_model

# Deterministic seconds charged per unit of the engine's own work: what each unit costs on one
# core, as a share of what CP-SAT's deterministic second costs on the same core, so that a
# counted second is worth about as much CPU in every phase. They need only be fixed, not
# exact; `scripts/calibrate_clock.py` measures them (the table and the command are in
# scripts/BENCHMARKS.md). Where one unit cannot fit small and large instances alike, the work
# is charged by what scales (cells, words, entries) plus a fixed cost per call or round.
PATTERN_STEP = 2e-6  # one type tried in the depth-first pattern listing
PATTERN_VISIT = 3e-7  # one type tried in `reduced_cost`'s search of patterns by value
ARC = 3e-7  # one arc of an arc-flow graph
LP_ROUND = 5e-4  # one solve of column generation's LP and the reading of its values and duals
LP_ENTRY = 7e-7  # one non-zero, column or row of that LP, each time it is solved and read
# The diving search's LP, solved again from the last basis by the dual simplex after each
# node changes its rows' bounds (`diving._Master`): besides `LP_ROUND` and its pivots, a
# solve's cost grows with the LP's size (handing the bounds over, reading the answer back).
LP_WARM_ENTRY = 4e-8  # one non-zero, column or row of that LP, each time it is solved
# One row or column of the full bins' LP, or of column generation's after new columns, each
# simplex iteration HiGHS reports: their degenerate LPs may take thousands of pivots a solve
# (column generation's: 43,000 in 29 solves over up to 11,000 columns on Panigrahy's
# class1_500_3_0).
LP_PIVOT = 5e-9
# The same for the diving search's LP after a node changes its rows' bounds: the dual simplex
# from a basis no longer primal feasible, about twice the cost of a pivot after new columns
# (10 to 15 ns a pivot, column or row on augmented IRUP, 9 on GI, per-solve trace).
LP_DUAL_PIVOT = 9e-9
# The same from no basis, the first solve of column generation's or the diving search's LP:
# the dual simplex from the slack basis, three times the cost of a pivot (thousands of columns
# handed on at once: augmented IRUP's 801 and 1,002 sizes, 21,000 to 34,000 pivots, 1.5 to
# 3 s in column generation; the diving search's root on 801_40000_DI_0, 1.1 s).
LP_COLD_PIVOT = 1.5e-8
MAX_PIVOTS = 2**31 - 1  # HiGHS's limit on a solve's iterations is a 32-bit integer
PRICE_ENTRY = 6.5e-9  # one (pattern, type, dimension) entry in a round of quick pricing
ITEM_FIT = 6e-6  # one item placed by a fit rule, besides the bins it is checked against
COLUMN_ENTRY = 3e-8  # one type's count in a column added to column generation's LP
MODEL_TERM = 2e-6  # one term of a CP-SAT model written in Python
STEP = 1e-3  # one round of a search loop, besides the CP-SAT work inside it
BIT_WORD = 1e-9  # one 64-bit word of a bitset shifted or combined (subset sums, graph size)
TABLE_CELL = 7e-10  # one cell of a dynamic-programming table swept in numpy (knapsack pricing)
TABLE_PIECE = 3e-6  # one sweep of such a table, besides its cells (numpy's cost per call)
PARETO_STATE = 2.5e-8  # one state of the undominated knapsack list merged (sorted, filtered)
PAIR_WEIGHED = 1e-8  # one pair of item types listed, or weighed at the duals, for pair exchanges
# CP-SAT's deterministic time leaves out what a solve costs around its search: handing the
# model over, loading and presolving it, reading the answer back. On the drain's models of
# fifty variables that is three times the deterministic time reported.
SOLVE_CALL = 1.2e-3  # one CP-SAT solve
SOLVE_TERM = 1e-5  # one variable or constraint of the model solved
# Every constant above is in CP-SAT's deterministic seconds. A counted second is worth less:
# the clock counts each of them, and each deterministic second CP-SAT reports, times
# SAT_SECOND, what CP-SAT's deterministic second takes in CPU seconds on the development
# machine (the reference model of `scripts/calibrate_clock.py`: 1.14 to 1.27 CPU seconds).
# There a budget of counted seconds is then about as many CPU seconds, so a 10 s limit ends
# within 11; the phases keep their shares of it, being scaled alike.
SAT_SECOND = 1.2


def new_deterministic_solver(deterministic_time: float, seed: int = 0) -> cp_model.CpSolver:
    """A solver bounded by CP-SAT's deterministic time on one worker, with no wall-clock
    limit: it does the same work, and gives the same answer, on any machine at any load."""
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = deterministic_time
    solver.parameters.random_seed = seed
    solver.parameters.num_workers = 1
    return solver


MIN_SEARCH = 0.1  # the least share of its limit a solve keeps for the search


def model_terms(model: cp_model.CpModel) -> int:
    """The variables and constraints of `model`: what loading it into CP-SAT scales with."""
    return len(model.proto.variables) + len(model.proto.constraints)


class Clock:
    """The wall clock: time limits are seconds, CP-SAT runs on the requested workers."""

    deterministic = False

    def now(self) -> float:
        return time.perf_counter()

    def charge(self, work: float) -> None:
        """Count work done outside CP-SAT (nothing to do on the wall clock)."""

    def solve_overhead(self, terms: int) -> float:
        """What a CP-SAT solve of a model of `terms` variables and constraints costs besides
        its search, on this clock: nothing on the wall clock, where CP-SAT's time limit
        covers loading and presolve too."""
        return 0.0

    def cost(self, work: float) -> float:
        """What `work` deterministic seconds of the engine's own loops (an estimate made with
        the constants above, before the work is done) take on this clock: about as many
        seconds on the wall clock."""
        return work

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

    def limit_lp(self, lp, deadline: float) -> None:
        """Stop the next solves of `lp` (a `solvers.lp.CoverLP`) at `deadline`: a solve cut
        short is not optimal, which callers take as unsolved. One cold solve of a degenerate
        LP can take seconds (the diving search's root on augmented IRUP's 1,002 sizes: 3.5 s
        of GLOP, past the time limit by 2.6 s)."""
        lp.set_time_limit(deadline - self.now())


class WorkClock(Clock):
    """Counted work: CP-SAT's deterministic time on one worker plus fixed charges."""

    deterministic = True

    def __init__(self) -> None:
        self.spent = 0.0

    def now(self) -> float:
        return self.spent

    def charge(self, work: float) -> None:
        self.spent += work * SAT_SECOND

    def solve_overhead(self, terms: int) -> float:
        return (SOLVE_CALL + SOLVE_TERM * terms) * SAT_SECOND

    def cost(self, work: float) -> float:
        return work * SAT_SECOND

    def solver(self, time_limit_s: float, seed: int = 0, workers: int = 1) -> cp_model.CpSolver:
        # One worker whatever was asked: several workers race, and which wins depends on the
        # machine. No wall-clock limit, which would make the answer depend on the load.
        return new_deterministic_solver(max(time_limit_s, 0.0) / SAT_SECOND, seed)

    def limit_lp(self, lp, deadline: float) -> None:
        """Stop the next solve of `lp` after the pivots the counted time left pays for at the
        dearest rate, `LP_COLD_PIVOT`: a count, so where it stops does not depend on the
        machine. Without it one solve could run past its deadline by seconds (the vector
        dive's cold solves on Panigrahy's class1_500_3_0 took its row to 12.5 counted seconds
        of 10)."""
        left = max(deadline - self.spent, 0.0) / SAT_SECOND
        pivots = left / (LP_COLD_PIVOT * max(lp.width(), 1))
        lp.set_iteration_limit(max(1, int(min(pivots, MAX_PIVOTS))))

    def solve(self, solver: cp_model.CpSolver, model: cp_model.CpModel,
              callback: cp_model.CpSolverSolutionCallback | None = None):
        # The cost around the search is charged first and taken from the search's limit, so
        # a solve spends what it was given, no more, unless that cost would leave the search
        # less than MIN_SEARCH of it: then it spends more, so a caller that must not pass its
        # deadline checks `solve_overhead` before it builds the model (as cpsat, arcflow and
        # patterns.pack_with_patterns do).
        around = SOLVE_CALL + SOLVE_TERM * model_terms(model)  # deterministic seconds
        self.spent += around * SAT_SECOND
        limit = solver.parameters.max_deterministic_time
        solver.parameters.max_deterministic_time = max(limit - around, limit * MIN_SEARCH)
        status = solver.solve(model, callback)
        self.spent += solver.deterministic_time * SAT_SECOND
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
    """The current clock's reading: seconds, or counted seconds of work (`SAT_SECOND`)."""
    return current().now()


def charge(work: float) -> None:
    """Count `work` deterministic seconds on the current clock (nothing on the wall clock)."""
    current().charge(work)


def limit_lp(lp, deadline: float) -> None:
    """Stop the linear solver `lp`'s solves at `deadline`: on the wall clock by time, on the
    counted clock by pivots (`Clock.limit_lp`, `WorkClock.limit_lp`)."""
    current().limit_lp(lp, deadline)


def cost(work: float) -> float:
    """What `work` deterministic seconds of the engine's own loops take on the current clock:
    what a phase compares with the time it has left before it starts that work."""
    return current().cost(work)


def solve_overhead(terms: int) -> float:
    """What solving a model of `terms` variables and constraints will cost on the current
    clock besides its search, so that a builder can stop before a model it cannot afford."""
    return current().solve_overhead(terms)
