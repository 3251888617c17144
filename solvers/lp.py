"""The covering LPs of column generation, diving and the full bins, in HiGHS's simplex (`highspy`).

Column generation solves its LP a hundred times or more, each time after adding a few
columns, and the diving search solves one LP per node after changing a few bounds. HiGHS
keeps the model, its basis and its factorization between solves, so a solve costs the
pivots it takes; OR-Tools' linear solver wrapper handed GLOP the whole model again each
time. On GI's csBB500_5 (deterministic mode, 10 s) column generation's 117 solves took
4.3 s of GLOP, its 123 here 3.6 s, and the diving search's 86 nodes 4.1 s, its 79 here 2.1 s.

The solver object is highspy's core class rather than its `Highs` wrapper: the wrapper sets
a logging callback on construction, which prints HiGHS's banner on the process's standard
output before the output can be switched off, and the CLI's standard output is its reports'.
"""

from __future__ import annotations

import numpy as np
from highspy._core import HighsModelStatus, _Highs

from solvers.clock import limit_lp

INFINITY = float("inf")
# HiGHS's serial dual simplex: deterministic, and at home with the changed bounds of a dive's
# nodes, which the diving search's LP keeps.
DUAL_SIMPLEX = 1
# HiGHS's choice at each solve, serial too: the primal simplex where the last basis is still
# primal feasible (new columns), the dual where it is not. For the LPs only ever extended by
# columns, the full bins' and column generation's: the full bins' root on augmented IRUP's
# 600_20000_DI_15 took the dual 69,476 pivots in 5.3 s, chosen so 23,151 in 1.0 s; column
# generation on Panigrahy's class1_500_3_0 (400 new columns a round) 304,000 pivots in 34 s,
# chosen 82,000 in 11 s. Chosen for the diving search too, GI's 500 sizes fell from 73 and
# 72 of 80 to 70 in wall mode (scripts/BENCHMARKS.md, `#choose-simplex`, `#cg-simplex`).
CHOOSE_SIMPLEX = 0


class CoverLP:
    """min c·y subject to A y >= lower, y >= 0 (each column's upper bound may be set), one
    row per item type, columns added as they are priced. Every solve starts from the last
    basis: new columns keep it primal feasible, changed bounds keep it dual feasible. The
    dual simplex solves it, or (`choose_simplex`) whichever simplex suits the last basis."""

    def __init__(self, lower: list[int] | tuple[int, ...], *, choose_simplex: bool = False):
        self.solver = _Highs()
        strategy = CHOOSE_SIMPLEX if choose_simplex else DUAL_SIMPLEX
        for name, value in (("output_flag", False), ("presolve", "off"),
                            ("solver", "simplex"), ("simplex_strategy", strategy),
                            ("parallel", "off"),
                            ("time_limit", INFINITY)):
            self.solver.setOptionValue(name, value)
        self.lower = np.asarray(lower, dtype=np.float64)
        self.solver.addRows(len(lower), self.lower, np.full(len(lower), INFINITY),
                            0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))

    def add_column(self, cost: float, entries: dict[int, int]) -> int:
        """A column of `cost` with `entries` (row: coefficient, non-zero); its index."""
        rows = np.fromiter(entries, dtype=np.int32, count=len(entries))
        values = np.fromiter(entries.values(), dtype=np.float64, count=len(entries))
        self.solver.addCol(float(cost), 0.0, INFINITY, len(rows), rows, values)
        return self.solver.getNumCol() - 1

    def set_lower(self, lower: list[int] | tuple[int, ...]) -> None:
        """Every row's lower bound (those that changed are written)."""
        wanted = np.asarray(lower, dtype=np.float64)
        for row in np.flatnonzero(wanted != self.lower).tolist():
            self.solver.changeRowBounds(row, wanted[row], INFINITY)
        self.lower = wanted

    def set_upper(self, columns: list[int], upper: list[float]) -> None:
        """The upper bounds of `columns` (INFINITY for none)."""
        if columns:
            self.solver.changeColsBounds(len(columns), np.asarray(columns, dtype=np.int32),
                                         np.zeros(len(columns)),
                                         np.asarray(upper, dtype=np.float64))

    def set_time_limit(self, seconds: float) -> None:
        """Stop the next solve after `seconds` of wall clock (`solvers.clock`). HiGHS's limit
        is on the time all of this object's solves have taken, so it is set past that."""
        self.solver.setOptionValue("time_limit", self.solver.getRunTime() + max(seconds, 1e-3))

    def set_iteration_limit(self, pivots: int) -> None:
        """Stop the next solve after `pivots` simplex iterations (`solvers.clock`, counted
        time): HiGHS counts them per solve."""
        self.solver.setOptionValue("simplex_iteration_limit", pivots)

    def has_basis(self) -> bool:
        """Whether the next solve starts from a basis (none before the first solve)."""
        return bool(self.solver.getBasis().valid)

    def width(self) -> int:
        """Columns and rows: what a pivot's cost grows with."""
        return int(self.solver.getNumCol() + self.solver.getNumRow())

    def solve(self, deadline: float) -> bool:
        """Whether the LP was solved to optimality (by `deadline` on the current clock)."""
        limit_lp(self, deadline)
        self.solver.run()
        return self.solver.getModelStatus() == HighsModelStatus.kOptimal

    def objective(self) -> float:
        return float(self.solver.getInfo().objective_function_value)

    def iterations(self) -> int:
        """The simplex iterations of the last solve."""
        return int(self.solver.getInfo().simplex_iteration_count)

    def solution(self) -> tuple[np.ndarray, np.ndarray]:
        """The last solve's value of every column and dual of every row, in index order."""
        solved = self.solver.getSolution()
        return np.asarray(solved.col_value), np.asarray(solved.row_dual)
