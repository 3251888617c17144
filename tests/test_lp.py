"""The covering LP (`solvers.lp.CoverLP`): values, duals, bounds changed between solves, and
time limits that hold for each solve, not for all of them together: on the wall clock by
time, on the counted clock by pivots."""

import math
import random

import pytest

from solvers.clock import LP_COLD_PIVOT, SAT_SECOND, Clock, WorkClock, charge, using
from solvers.lp import CoverLP


def _two_columns(choose_simplex: bool = False) -> CoverLP:
    """min y0 + y1 subject to 2 y0 + y1 >= 3 and y1 >= 1."""
    lp = CoverLP([3, 1], choose_simplex=choose_simplex)
    lp.add_column(1.0, {0: 2})
    lp.add_column(1.0, {0: 1, 1: 1})
    return lp


@pytest.mark.parametrize("choose_simplex", [False, True])
def test_a_solve_gives_the_optimum_its_values_and_the_rows_duals(choose_simplex):
    lp = _two_columns(choose_simplex)
    assert lp.solve(math.inf)
    values, duals = lp.solution()
    assert lp.objective() == pytest.approx(2.0)
    assert values.tolist() == pytest.approx([1.0, 1.0])
    assert duals.tolist() == pytest.approx([0.5, 0.5])  # >= 0 on covering rows


@pytest.mark.parametrize("choose_simplex", [False, True])
def test_rows_raised_and_columns_closed_between_solves_are_solved_anew(choose_simplex):
    lp = _two_columns(choose_simplex)
    assert lp.solve(math.inf)
    lp.set_lower([5, 1])  # y0 = 2, y1 = 1
    assert lp.solve(math.inf) and lp.objective() == pytest.approx(3.0)
    lp.set_upper([0], [0.0])  # y1 alone covers the first row
    assert lp.solve(math.inf) and lp.objective() == pytest.approx(5.0)
    lp.set_upper([0], [math.inf])
    assert lp.solve(math.inf) and lp.objective() == pytest.approx(3.0)
    lp.add_column(0.5, {0: 5, 1: 1})  # a new column, cheaper than both
    assert lp.solve(math.inf) and lp.objective() == pytest.approx(0.5)


def test_after_new_columns_the_chosen_simplex_reaches_the_same_optimum_in_fewer_pivots():
    """A degenerate cover like the full bins' (every row 1, single items at 3, columns of
    four rows at 1), extended by five columns a round: both simplexes reach the same value
    each round; from the last basis, still primal feasible, the chosen (primal) simplex
    takes fewer pivots than the dual."""
    values: dict[bool, list[float]] = {False: [], True: []}
    pivots = dict.fromkeys(values, 0)
    for choose_simplex in values:
        rng = random.Random(0)
        lp = CoverLP([1] * 40, choose_simplex=choose_simplex)
        for row in range(40):
            lp.add_column(3.0, {row: 1})
        for _ in range(30):
            for _ in range(5):
                lp.add_column(1.0, dict.fromkeys(rng.sample(range(40), 4), 1))
            assert lp.solve(math.inf)
            values[choose_simplex].append(lp.objective())
            pivots[choose_simplex] += lp.iterations()
    assert values[True] == pytest.approx(values[False])
    assert pivots[True] < pivots[False]


def test_each_solve_gets_the_time_to_its_own_deadline():
    """HiGHS counts its time limit over every solve of one model: each solve's limit is set
    past the time the earlier ones took, or a long column generation would find its later
    solves stopped at once."""
    lp = _two_columns()
    for _ in range(3):
        assert lp.solve(math.inf)
    spent = lp.solver.getRunTime()
    assert spent > 0
    with using(Clock()) as clock:
        lp.set_time_limit(0.5)
        assert lp.solver.getOptionValue("time_limit")[1] == pytest.approx(spent + 0.5)
        assert lp.solve(clock.now() + 60)
    lp.set_time_limit(math.inf)
    assert lp.solver.getOptionValue("time_limit")[1] == math.inf


def _wide_cover() -> CoverLP:
    """60 rows of demand 1 to 5 and 400 columns of four rows each: a cold solve of 85 pivots."""
    rng = random.Random(1)
    lp = CoverLP([rng.randint(1, 5) for _ in range(60)])
    for _ in range(400):
        lp.add_column(1.0, {row: rng.randint(1, 3) for row in rng.sample(range(60), 4)})
    return lp


def test_on_the_counted_clock_a_solve_stops_at_the_pivots_its_time_left_pays_for():
    """With counted time left for 20 pivots at the cold rate, the solve stops there, not
    optimal, whatever the machine; given the time, the same LP goes on from there to its
    optimum, the value a solve with no deadline reaches."""
    unlimited = _wide_cover()
    with using(WorkClock()):
        assert unlimited.solve(math.inf)
    lp = _wide_cover()
    with using(WorkClock()) as clock:
        charge(1.0)
        pivots = 20
        deadline = clock.now() + (pivots + 0.5) * LP_COLD_PIVOT * lp.width() * SAT_SECOND
        assert not lp.solve(deadline)
        assert lp.iterations() == pivots < unlimited.iterations()
        assert lp.solve(clock.now() + 60)
    assert lp.objective() == pytest.approx(unlimited.objective())
