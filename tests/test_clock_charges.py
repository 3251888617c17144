"""The deterministic clock counts the engine's own loops where the work happens, so a budget
bounds them: greedy's placements, the dive's columns, the LP's rounding, the setting up of
the consistent neighbourhood search's partial packings, the fill's subset sums, CP-SAT's
pricing knapsack of one row (solved without the presolve whose work its deterministic time
leaves out), and the knapsack over undominated states, by the states it merges. Each test
counts the work itself (steps, entries, bins) through the code's own functions, never the
wall clock."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

import solvers.diving as diving
import solvers.exact_fill as exact_fill
import solvers.partial_search as partial_search
import solvers.patterns as patterns
import solvers.pricing as pricing
from bench.instances import _single_pool
from solvers import greedy as greedy_module
from solvers import pareto
from solvers.clock import (
    BIT_WORD,
    COLUMN_ENTRY,
    ITEM_FIT,
    LP_COLD_PIVOT,
    LP_DUAL_PIVOT,
    LP_ENTRY,
    LP_PIVOT,
    LP_ROUND,
    PARETO_STATE,
    SAT_SECOND,
    SOLVE_CALL,
    SOLVE_TERM,
    TABLE_PIECE,
    WorkClock,
    now,
    using,
)
from solvers.engine import solve
from solvers.greedy import greedy
from solvers.lp import CHOOSE_SIMPLEX


def _large_capacity(capacity: int, items: int, seed: int):
    rng = random.Random(seed)
    weights = Counter((rng.randint(capacity // 10, capacity // 2),) for _ in range(items))
    return _single_pool((capacity,), weights, items)


def _sizes_demand(problem):
    return ([g.options[0].size for g in problem.groups],
            [g.options[0].count for g in problem.groups])


def test_greedy_is_counted_and_the_solve_reports_it():
    """Greedy charges each replica placed and each step's scan of the GPU rows; a solve's
    counted seconds include it, so the other phases get only what it leaves."""
    problem = _large_capacity(500_000, 1_500, 3)
    with using(WorkClock()) as clock:
        greedy(problem, "first")
    replicas = sum(g.options[0].count for g in problem.groups)
    assert clock.spent >= greedy_module.REPLICA * replicas * SAT_SECOND
    greedy_alone = clock.spent
    solution = solve(problem, time_limit_s=0.01, seed=0, deterministic=True)
    assert solution.seconds >= greedy_alone  # greedy's two runs at least, counted


def test_the_dive_charges_the_columns_it_cuts_within_its_budget(monkeypatch: pytest.MonkeyPatch):
    """`patterns.dive` cuts every column to what is left at each step (columns x types in
    numpy): those entries are charged, so the budget bounds how many it cuts."""
    problem = _large_capacity(1_000, 400, 5)
    sizes, demand = _sizes_demand(problem)
    start = [tuple(int(t == i) for t in range(len(sizes))) for i in range(len(sizes))]
    cut = Counter()
    minimum = np.minimum

    def counting(a, b, *args, **kwargs):
        if getattr(a, "ndim", 0) == 2:
            cut["entries"] += a.size
        return minimum(a, b, *args, **kwargs)

    monkeypatch.setattr(patterns.np, "minimum", counting)
    budget_s = 0.2
    with using(WorkClock()) as clock:
        patterns.dive((1_000,), sizes, demand, start, budget_s, rounds=3, fix=0.5)
    assert cut["entries"] > 0
    assert cut["entries"] * COLUMN_ENTRY * SAT_SECOND <= clock.spent
    assert clock.spent <= budget_s * 1.5  # its last step: three rounds of pricing


def test_rounding_the_lp_charges_each_bin_and_item():
    problem = _large_capacity(1_000, 300, 7)
    sizes, demand = _sizes_demand(problem)
    singles = [tuple(int(t == i) for t in range(len(sizes))) for i in range(len(sizes))]
    with using(WorkClock()) as clock:
        bins = patterns.round_columns((1_000,), sizes, demand, singles, [0.5] * len(singles))
    # Every single pattern taken once (the LP's half rounds up once), each charged.
    assert clock.spent >= ITEM_FIT * len(bins) * SAT_SECOND
    assert Counter(t for b in bins for t in b) == Counter(
        {t: n for t, n in enumerate(demand)})


def test_column_generations_lp_charges_its_pivots_besides_its_size():
    """Column generation's LP is charged by the simplex iterations HiGHS reports as well as by
    its entries: a solve after a round of new columns may take thousands of pivots (on
    Panigrahy's class1_500_3_0, 43,000 in 29 solves over up to 11,000 columns), those of the
    first solve, from no basis, at three times the rate. Solved by the simplex HiGHS chooses
    (the primal after new columns), as the full bins' LP is."""
    problem = _large_capacity(1_000, 300, 7)
    sizes, demand = _sizes_demand(problem)
    rng = random.Random(7)
    master = patterns._PatternLP(demand)
    for pattern in [tuple(int(t == i) for t in range(len(sizes))) for i in range(len(sizes))]:
        master.add(pattern)
    assert master.lp.solver.getOptionValue("simplex_strategy")[1] == CHOOSE_SIMPLEX
    with using(WorkClock()) as clock:
        counted = []
        for pivot in (LP_COLD_PIVOT, LP_PIVOT, LP_PIVOT):  # random patterns that fit, a solve
            for _ in range(40):
                pattern, load = [0] * len(sizes), 0
                for t in rng.sample(range(len(sizes)), len(sizes)):
                    if load + sizes[t][0] <= 1_000 and pattern[t] < demand[t]:
                        pattern[t] += 1
                        load += sizes[t][0]
                if tuple(pattern) not in master.known:
                    master.add(tuple(pattern))
            before = clock.spent
            assert master.solve(now() + 10) is not None
            pivots = master.lp.iterations()
            size = LP_ENTRY * (master.nonzeros + len(master.patterns) + len(demand))
            pivoted = pivot * pivots * (len(master.patterns) + len(demand))
            assert clock.spent - before == pytest.approx((LP_ROUND + size + pivoted) * SAT_SECOND)
            counted.append(pivots)
    assert all(pivots > 0 for pivots in counted)


def test_the_diving_searchs_lp_charges_its_root_cold_and_its_nodes_pivots(
        monkeypatch: pytest.MonkeyPatch):
    """The diving search's LP is charged for its pivots besides its size: the root's first
    solve from no basis at the cold rate, every later one (the dual simplex from the last
    basis, after a node changes the rows' bounds or pricing adds columns) at
    `LP_DUAL_PIVOT`. Each charge after a solve is compared with the pivots HiGHS reported
    for it; the first solve is the one from no basis."""
    problem = _large_capacity(1_000, 300, 7)
    sizes, demand = _sizes_demand(problem)
    charged: list[float] = []
    monkeypatch.setattr(diving, "charge", charged.append)
    with using(WorkClock()):
        master = diving._Master(1_000, [s[0] for s in sizes], [], sparse=True)
        expected: list[float] = []
        cold: list[bool] = []
        solve = master.lp.solve

        def solve_and_expect(deadline: float) -> bool:
            if expected:  # the previous solve's pivots were charged first
                assert charged[0] == pytest.approx(expected[-1])
            cold.append(not master.lp.has_basis())
            pivot = LP_COLD_PIVOT if cold[-1] else LP_DUAL_PIVOT
            optimal = solve(deadline)
            expected.append(pivot * master.lp.iterations()
                            * (len(master.patterns) + len(demand)))
            charged.clear()
            return optimal

        monkeypatch.setattr(master.lp, "solve", solve_and_expect)
        pivots = []
        for left in (demand, [n // 2 for n in demand]):  # the root, then a node's demand
            solves = len(expected)
            assert master.solve(tuple(left), now() + 10) is not None
            assert len(expected) > solves
            pivots.append(master.lp.iterations())
            assert charged[0] == pytest.approx(expected[-1])  # the charge after the last
    assert expected[0] > 0 and cold == [True] + [False] * (len(expected) - 1)
    assert all(p > 0 for p in pivots)


def test_setting_up_partial_packings_is_within_the_budget(monkeypatch: pytest.MonkeyPatch):
    """Each search for one bin fewer sets up a partial packing of every bin (its moves
    listed): charged per bin and item, so a budget too small for many bounds how many."""
    capacity = 1_000
    rng = random.Random(1)
    weights = [rng.randint(100, 600) for _ in range(3_000)]
    sizes = sorted(set(weights), reverse=True)
    index = {w: t for t, w in enumerate(sizes)}
    bins = [[index[w]] for w in weights]  # one item a bin: many bins to set up
    built = Counter()
    original = partial_search._Partial.__init__

    def counting(self, weights, rows, out):
        built["bins"] += len(rows)
        original(self, weights, rows, out)

    monkeypatch.setattr(partial_search._Partial, "__init__", counting)
    budget_s = 0.05
    with using(WorkClock()) as clock:
        partial_search.fewer_bins(capacity, sizes, bins, goal=1, deadline=budget_s, seed=0)
    assert built["bins"] > 0
    assert built["bins"] * partial_search.PART_BIN * SAT_SECOND <= clock.spent
    assert clock.spent <= budget_s + 0.2  # the last setup and a step of search


def test_the_pricing_knapsack_is_solved_by_counted_search(monkeypatch: pytest.MonkeyPatch):
    """CP-SAT's presolve would solve a one-row knapsack of large capacity itself, by work
    its deterministic time leaves out; the pricing solves it without presolve, and the best
    value is the table's (the exact one-dimensional pricing)."""
    capacity = 100_000
    rng = random.Random(4)
    weights = sorted({rng.randint(capacity // 20, capacity // 3) for _ in range(60)},
                     reverse=True)
    demand = [rng.randint(1, 4) for _ in weights]
    duals = [w / capacity * (1 + 0.1 * rng.random()) for w in weights]
    solvers_used = []
    run = patterns.run

    def recording(solver, model, callback=None):
        solvers_used.append(solver)
        return run(solver, model, callback)

    monkeypatch.setattr(patterns, "run", recording)
    with using(WorkClock()):
        bound, found = patterns._price_cp_sat((capacity,), [(w,) for w in weights], duals,
                                              demand, 5.0)
        spent = now()
    exact = pricing.knapsack(capacity, weights, duals, demand).best.max()
    assert [s.parameters.cp_model_presolve for s in solvers_used] == [False]
    assert found and bound == pytest.approx(exact, abs=1e-3)
    terms = len(weights) + 1
    assert spent >= (SOLVE_CALL + SOLVE_TERM * terms) * SAT_SECOND


def test_the_undominated_list_charges_every_state_it_merges(monkeypatch: pytest.MonkeyPatch):
    """The knapsack over undominated states (`solvers.pareto`) charges each state of each
    merge, besides a sweep per piece: the states it sorts are counted, not its capacity."""
    capacity = 1_000_000
    rng = random.Random(6)
    weights = sorted({rng.randint(capacity // 10, capacity // 2) for _ in range(80)},
                     reverse=True)
    demand = [rng.randint(1, 5) for _ in weights]
    duals = [w / capacity * (1 + 0.05 * rng.random()) for w in weights]
    merged = Counter()
    lexsort = pareto.np.lexsort

    def counting(keys):
        merged["states"] += len(keys[0])
        merged["merges"] += 1
        return lexsort(keys)

    monkeypatch.setattr(pareto.np, "lexsort", counting)
    with using(WorkClock()) as clock:
        frontier = pareto.knapsack(capacity, weights, duals, demand, floor=1.0)
    assert frontier is not None and merged["states"] > merged["merges"]
    charged = TABLE_PIECE * merged["merges"] + PARETO_STATE * merged["states"]
    assert clock.spent >= charged * SAT_SECOND * (1 - 1e-9)


def test_values_of_many_patterns_equal_the_matrix_product():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, size=(50, 30))
    value = rng.random(30)
    assert np.allclose(patterns._worth(counts, value), counts @ value)


def test_the_fills_subset_sums_charge_every_copy_shifted():
    """A bin filled to the brim reaches its loads by shifting a bitset as wide as the room
    once per copy of each size: each shift is charged by its words, so on large capacities
    a type of many copies costs as much as it takes (one pass a type undercounted GI's fill
    four times over)."""
    room = 64 * 1_000 - 1  # a thousand words
    with using(WorkClock()) as clock:
        sums = exact_fill._shifted(1, 7, 10, (1 << (room + 1)) - 1)
    assert sums == sum(1 << (7 * k) for k in range(11))  # 0 to 10 copies of 7
    assert clock.spent == pytest.approx(10 * 1_000 * 3 * BIT_WORD * SAT_SECOND)
    with using(WorkClock()) as clock:
        exact_fill._shifted(1, room + 1, 10, (1 << (room + 1)) - 1)  # no copy fits
    assert clock.spent == pytest.approx(1_000 * 3 * BIT_WORD * SAT_SECOND)


def test_unblocking_the_fill_charges_the_types_that_could_join_the_bin(
        monkeypatch: pytest.MonkeyPatch):
    """Looking for a bin to empty, the fill reaches the loads of the types left that fit
    beside the largest one, and is charged `CANDIDATE` for each of those alone: types none
    of which are left, or too large, are passed over at no cost (charged per type listed,
    augmented IRUP's 402 sizes counted this step six times its CPU). The bin it names is the
    one whose items let the largest item left fill a bin."""
    sizes = [60, 55, 50, 40, 30, 20, 10]
    left = [1, 1, 0, 0, 1, 0, 0]  # 60 left, 55 too large beside it, 30 fits its 40 of room
    packing = [[2, 2], [3, 5, 5, 6, 6]]  # 50 + 50: no; 40 or 10 (with 30) fill the room
    charged: list[float] = []
    monkeypatch.setattr(exact_fill, "charge", charged.append)
    assert exact_fill._opening(100, sizes, left, 0, packing, random.Random(0)) == 1
    # 30's one copy shifted (a word, shift, mask and union), then the one candidate
    assert charged[:2] == pytest.approx([3 * BIT_WORD, exact_fill.CANDIDATE])
