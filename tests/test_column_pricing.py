"""One-dimensional column generation's pricing (`solvers.pricing`): every column it adds fits
the capacity and the demand and is worth more than 1 at the LP's duals, the bound column
generation proves never exceeds the optimum (CP-SAT's, on small random instances), priced by
table or by the list of undominated patterns (`solvers.pareto`, on large capacities), and on a
zero-slack instance of three or four pieces a bin of hundreds of sizes the LP converges
within a counted budget (about one counted second). One column a round did not: on this
instance it ended with the LP at 50.23 and its bound at 48 after 5 counted seconds. The
values column generation hands on are over patterns alone: under the dual-optimal
inequalities the LP covers a smaller item (or two, on large capacities) by a larger one's
place, and those values are read back by swapping the items (`without_exchanges`)."""

from __future__ import annotations

import math
import random
from collections import Counter
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

import solvers.patterns as patterns
from scripts.zero_slack import instance
from solvers.clock import WorkClock, now, using
from solvers.lp import CoverLP
from solvers.patterns import generate_columns
from solvers.pricing import PairExchanges, Pricer, add_exchanges, without_exchanges


def _types(items: list[int]) -> tuple[list[tuple[int, ...]], list[int]]:
    counts = Counter(items)
    sizes = sorted(counts, reverse=True)
    return [(s,) for s in sizes], [counts[s] for s in sizes]


def _singles(types: int) -> list[tuple[int, ...]]:
    return [tuple(int(t == u) for u in range(types)) for t in range(types)]


def _optimum(capacity: int, items: list[int]) -> int:
    """The fewest bins, by CP-SAT over an assignment of items to bins: a bin that holds an
    item counts, whatever its size (an item of size 0 too)."""
    model = cp_model.CpModel()
    bins = range(len(items))
    x = {(i, b): model.new_bool_var("") for i in range(len(items)) for b in bins}
    used = [model.new_bool_var("") for _ in bins]
    for i in range(len(items)):
        model.add_exactly_one(x[i, b] for b in bins)
    for b in bins:
        model.add(sum(w * x[i, b] for i, w in enumerate(items)) <= capacity * used[b])
        for i in range(len(items)):
            model.add_implication(x[i, b], used[b])
    model.minimize(sum(used))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_deterministic_time = 20
    assert solver.solve(model) == cp_model.OPTIMAL
    return round(solver.objective_value)


@st.composite
def small_instances(draw):
    """Up to nine items in bins of 10 to 60, some perhaps of size 0 (they fit any bin)."""
    capacity = draw(st.integers(10, 60))
    items = draw(st.lists(st.integers(0, capacity), min_size=1, max_size=9))
    return capacity, items


@pytest.mark.parametrize("sparse", [False, True])
@settings(max_examples=40, deadline=None)
@given(small_instances(), st.lists(st.floats(0, 1), min_size=9, max_size=9),
       st.integers(1, 20))
def test_every_column_fits_the_capacity_and_the_demand_and_improves(sparse, instance_, duals,
                                                                    most):
    capacity, items = instance_
    sizes, demand = _types(items)
    duals = duals[:len(sizes)]
    with using(WorkClock()):
        pricer = Pricer(capacity, [s[0] for s in sizes], demand, most, sparse=sparse)
        found = pricer.round(duals, set())
    assert found is not None
    for column in found:
        assert sum(n * s[0] for n, s in zip(column, sizes, strict=True)) <= capacity
        assert all(0 <= n <= d for n, d in zip(column, demand, strict=True))
        assert sum(n * v for n, v in zip(column, duals, strict=True)) > 1
    assert len(found) == len(set(found))
    assert pricer.bound <= len(items)


@pytest.mark.parametrize("sparse", [False, True])
@settings(max_examples=30, deadline=None)
@given(small_instances(), st.sampled_from([0.0, 0.005, 0.05, 5.0]))
def test_the_bound_is_never_above_the_optimum(sparse, instance_, budget):
    capacity, items = instance_
    sizes, demand = _types(items)
    table_cells = 0 if sparse else patterns.MAX_TABLE_CELLS  # 0: no table fits
    with mock.patch.object(patterns, "MAX_TABLE_CELLS", table_cells), using(WorkClock()):
        columns = generate_columns((capacity,), sizes, demand, _singles(len(sizes)),
                                   now() + budget)
    assert columns.lower_bound <= _optimum(capacity, items)
    for column in columns.patterns:
        assert sum(n * s[0] for n, s in zip(column, sizes, strict=True)) <= capacity
        assert all(0 <= n <= d for n, d in zip(column, demand, strict=True))


def test_a_zero_slack_instance_converges_within_its_budget():
    """50 bins of 100,000 cut into three or four pieces: 172 sizes of one item each."""
    items = instance(random.Random(3), 100_000, 50, (3, 4))
    sizes, demand = _types(items)
    budget_s = 3.0
    with using(WorkClock()) as clock:
        columns = generate_columns((100_000,), sizes, demand, _singles(len(sizes)), budget_s)
    assert clock.spent < budget_s  # it stopped at the bound, not at the deadline
    assert columns.lower_bound == 50  # the optimum, by construction
    assert columns.lower_bound >= math.ceil(sum(columns.values) - 1e-6)  # settled
    weights = np.array([s[0] for s in sizes])
    for column in columns.patterns:
        assert np.array(column) @ weights <= 100_000


def test_an_exchanges_flow_becomes_a_pattern_with_the_smaller_item():
    """Two items of 6 in a bin of 12 cover one item of 6 and, by the exchange from the 6 to
    the 4, one of 4: read back, the bin holds a 6 and a 4, at the same value."""
    columns, values = without_exchanges([(2, 0), (0, 3)], [1.0, 0.0], [(0, (1,), 7)],
                                         np.array([1.0]), [1, 1])
    assert columns == [(2, 0), (0, 3), (1, 1)]
    assert values == [0.0, 0.0, 1.0]


def test_a_chain_of_exchanges_ends_within_the_demand():
    """Items of 12, 2 and 1 in a bin of 14, one of each: the LP may use the 12 with the 2
    one and a half times, passing half a 12 down to the 2 and a whole 2 down to the 1. Read
    back, the half pattern that holds two 2s passes one on first: every pattern holds at
    most one of each, and each type is covered once."""
    singles = [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
    columns, values = without_exchanges(singles + [(1, 1, 0)], [0.0, 0.0, 0.0, 1.5],
                                        [(0, (1,), 4), (1, (2,), 5)], np.array([0.5, 1.0]),
                                        [1, 1, 1])
    assert columns == singles + [(1, 1, 0), (0, 1, 1), (1, 0, 1)]
    assert values == [0.0, 0.0, 0.0, 0.5, 0.5, 0.5]


def test_a_pair_exchange_puts_two_smaller_items_in_the_larger_ones_place():
    """Items of 6, 3 and 2, one of each, in a bin of 12: two 6s cover one 6 and, by the pair
    exchange from the 6 to the 3 and the 2, one of each. Read back, the bin holds all three."""
    columns, values = without_exchanges([(2, 0, 0)], [1.0], [(0, (2, 1), 3)],
                                        np.array([1.0]), [1, 1, 1], [6, 3, 2])
    assert columns == [(2, 0, 0), (1, 1, 1)]
    assert values == [0.0, 1.0]


def test_a_pattern_over_the_demand_is_cut_and_the_cover_made_up():
    """Items of 10 and 1, one of each, in bins of 10: the LP with the exchange of a 10 for
    two 1s takes one and a half bins of 10 and passes half of one on. Read back, half a
    pattern of two 1s is cut to one 1, and the half of a 1 it leaves short is a single's."""
    columns, values = without_exchanges([(1, 0), (0, 1)], [1.5, 0.0], [(0, (1, 1), 2)],
                                        np.array([0.5]), [1, 1], [10, 1])
    assert columns == [(1, 0), (0, 1)]
    assert values == [1.0, 1.0]


def test_pair_exchanges_are_separated_from_the_duals_they_violate_once():
    """Types of 6, 3, 2 and 5: at duals 0.5, 0.3, 0.3 and 0.4 the 5 is worth less than a 3
    and a 2 or two 2s, and the 6 less than two 3s. Each pair goes to the smallest type that
    holds it, the most violated first; a second separation at the same duals adds none."""
    lp = CoverLP([1, 1, 1, 1])
    with using(WorkClock()):
        pairs = PairExchanges([6, 3, 2, 5])
        duals = np.array([0.5, 0.3, 0.3, 0.4])
        added = pairs.separate(lp, duals)
        again = pairs.separate(lp, duals)
    assert [(larger, smaller) for larger, smaller, _ in added] == [
        (3, (2, 2)), (3, (2, 1)), (0, (1, 1))]
    assert again == []
    _, _, rows, coefficients = lp.solver.getColsEntries(1, np.array([added[2][2]], np.int32))
    assert dict(zip(rows.tolist(), coefficients.tolist(), strict=True)) == {0: -1, 1: 2}


def test_a_solve_adds_the_pair_exchanges_its_duals_violate_for_the_next_solve():
    """Types of 6, 3, 2 and 5, one of each, from single items: every dual is 1, which
    violates pairs. One solve is one LP solve; the pairs it separates are in the LP for
    the next solve, their flows 0 until then, and that solve's value is no higher."""
    weights, demand = [6, 3, 2, 5], [1, 1, 1, 1]
    calls = []
    original = CoverLP.solve

    def counted(self, deadline):
        calls.append(1)
        return original(self, deadline)

    with using(WorkClock()), mock.patch.object(CoverLP, "solve", counted):
        master = patterns._PatternLP(demand)
        for pattern in _singles(len(weights)):
            master.add(pattern)
        master.exchanges = add_exchanges(master.lp, weights)
        master.pairs, master.weights = PairExchanges(weights), weights
        singles = len(master.exchanges)
        first = master.solve(math.inf)
        assert len(calls) == 1 and first == pytest.approx(4.0)
        assert len(master.exchanges) > singles
        assert len(master.flows) == len(master.exchanges)
        assert not master.flows[singles:].any()
        assert master.solve(math.inf) <= first + 1e-9
    assert len(calls) == 2


@pytest.mark.parametrize("sparse", [False, True])
@settings(max_examples=40, deadline=None)
@given(small_instances())
def test_the_values_cover_the_demand_by_patterns_alone(sparse, instance_):
    capacity, items = instance_
    sizes, demand = _types(items)
    table_cells = 0 if sparse else patterns.MAX_TABLE_CELLS
    with mock.patch.object(patterns, "MAX_TABLE_CELLS", table_cells), using(WorkClock()):
        columns = generate_columns((capacity,), sizes, demand, _singles(len(sizes)), 5.0)
    used = np.array(columns.patterns).reshape(len(columns.patterns), len(sizes))
    assert (np.array(columns.values) @ used >= np.array(demand) - 1e-6).all()
    assert (used <= np.array(demand)).all()
    assert (used @ np.array([s[0] for s in sizes]) <= capacity).all()
