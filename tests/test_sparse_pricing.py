"""The knapsack over undominated states (`solvers.pareto`) that prices one-dimensional column
generation where the table is too large: its best value is the table's (exactly, without a
floor; above the floor, with one), every pattern it gives fits its room and the demand, and
on a zero-slack instance of capacity 2,000,000 (the table: 200 million cells) column
generation converges to the optimum and stops within its budget. Its columns and the bound
column generation proves with it are tested with the table's (`tests/test_column_pricing.py`,
`sparse`)."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

import solvers.patterns as patterns
from scripts.zero_slack import instance
from solvers import pareto
from solvers.clock import WorkClock, using
from solvers.pricing import Pricer, knapsack
from tests.test_column_pricing import _types, small_instances


@st.composite
def priced(draw):
    """A small instance and a dual value per type, some perhaps 0."""
    capacity, items = draw(small_instances())
    sizes, demand = _types(items)
    values = draw(st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 1.0]),
                           min_size=len(sizes), max_size=len(sizes)))
    return capacity, [s[0] for s in sizes], values, demand


@settings(max_examples=60, deadline=None)
@given(priced())
def test_without_a_floor_the_best_value_is_the_tables_and_every_room_a_pattern(case):
    """The best value is exact; within a smaller room the list keeps a pattern that fits it,
    worth what `best_within` says and never more than the table's best there."""
    capacity, weights, values, demand = case
    rooms = np.arange(capacity + 1)
    with using(WorkClock()):
        table = knapsack(capacity, weights, values, demand)
        frontier = pareto.knapsack(capacity, weights, values, demand, floor=-np.inf)
        assert frontier is not None
        rows = frontier.patterns(rooms)
    assert np.isclose(frontier.top()[0], table.best.max())
    assert (frontier.best_within(rooms) <= table.best + 1e-9).all()
    assert np.allclose(rows @ np.array(values), frontier.best_within(rooms))
    assert (rows @ np.array(weights) <= rooms).all()
    assert (rows <= np.array(demand)).all() and (rows >= 0).all()


@settings(max_examples=60, deadline=None)
@given(priced(), st.sampled_from([0.5, 1.0, 1.5]))
@example((10, [2, 1, 0], [1.0, 0.1, 0.3], [1, 2, 1]), 1.5)  # best: 1.5 plus a rounding
def test_above_the_floor_the_best_value_is_the_tables(case, floor):
    capacity, weights, values, demand = case
    with using(WorkClock()):
        best = float(knapsack(capacity, weights, values, demand).best.max())
        frontier = pareto.knapsack(capacity, weights, values, demand, floor=floor)
        assert frontier is not None
        value, room = frontier.top()
        row = frontier.patterns(np.array([room]))[0]
    assert np.isclose(value, max(best, floor))
    assert row @ np.array(weights) <= capacity and (row <= np.array(demand)).all()
    if best > floor + 1e-9:  # within the list's tolerance of the floor, `top` is the floor
        assert np.isclose(row @ np.array(values), best)


def _first_fit_decreasing(capacity: int, sizes: list[int], demand: list[int]
                          ) -> list[tuple[int, ...]]:
    loads: list[int] = []
    bins: list[list[int]] = []
    for t, size in enumerate(sizes):
        for _ in range(demand[t]):
            b = next((b for b, load in enumerate(loads) if load + size <= capacity), len(loads))
            if b == len(loads):
                loads.append(0)
                bins.append([0] * len(sizes))
            loads[b] += size
            bins[b][t] += 1
    return [tuple(b) for b in bins]


def test_a_large_capacity_converges_within_its_budget():
    """30 bins of 2,000,000 cut into three or four pieces: 101 sizes, too many cells for the
    table. Quick pricing runs dry within a counted second; from there the undominated list
    prices exactly, so column generation stops at its bound (the optimum, by construction)
    well before its budget. With CP-SAT as the exact pricing it had no bound after two
    counted seconds and reached it only at the deadline of three."""
    capacity = 2_000_000
    items = instance(random.Random(5), capacity, 30, (3, 4))
    counts = Counter(items)
    sizes = sorted(counts, reverse=True)
    demand = [counts[s] for s in sizes]
    assert not patterns.fits_table(capacity, [(s,) for s in sizes], demand)
    start = _first_fit_decreasing(capacity, sizes, demand)
    budget_s = 3.0
    with using(WorkClock()) as clock:
        columns = patterns.generate_columns((capacity,), [(s,) for s in sizes], demand,
                                            start, budget_s)
    assert clock.spent < budget_s * 0.9  # it stopped at the bound, not at the deadline
    assert columns.lower_bound == 30
    assert columns.lower_bound >= math.ceil(sum(columns.values) - 1e-6)  # settled
    weights = np.array(sizes)
    for column in columns.patterns:
        assert np.array(column) @ weights <= capacity
        assert (np.array(column) <= np.array(demand)).all()


def test_the_list_and_the_pricer_stop_at_their_deadline():
    """Each merge of the list is charged; at a deadline the merges pass midway, the list stops
    there (None: the caller prices another way, or a dive's node gives up) instead of
    finishing, and so does a pricing round that makes it."""
    capacity = 2_000_000
    counts = Counter(instance(random.Random(5), capacity, 30, (3, 4)))
    sizes = sorted(counts, reverse=True)
    demand = [counts[s] for s in sizes]
    rng = random.Random(0)
    values = [s / capacity * rng.uniform(0.9, 1.1) for s in sizes]  # the best worth about 1.1
    with using(WorkClock()) as clock:
        whole = pareto.knapsack(capacity, sizes, values, demand, floor=1.0, near_best=0.5)
        whole_s = clock.spent
    assert whole is not None
    with using(WorkClock()) as clock:
        assert pareto.knapsack(capacity, sizes, values, demand, floor=1.0, near_best=0.5,
                               deadline=whole_s / 2) is None
        assert clock.spent < whole_s  # it stopped before its last merge
    with using(WorkClock()) as clock:
        pricer = Pricer(capacity, sizes, demand, sparse=True)
        assert pricer.round(values, set(), deadline=whole_s / 2) is None
        assert clock.spent < whole_s
        assert pricer.round(values, set())  # with no deadline: improving columns


@settings(max_examples=60, deadline=None)
@given(priced(), st.sampled_from([0.5, 1.0]), st.sampled_from([0.0, 0.5]))
def test_near_the_best_the_list_ends_with_every_undominated_pattern_above_the_bar(
        case, floor, near_best):
    """With `near_best` below 1 the list ends with each undominated pattern worth more than
    the floor and at least the floor plus that share of the best's gain over it (the
    table's steps of value there), the runners-up being all but the best: the several
    columns a round that pricing takes from it. At 1, the best alone (and the patterns of
    items of size 0, which the list always keeps)."""
    capacity, weights, values, demand = case
    with using(WorkClock()):
        best = knapsack(capacity, weights, values, demand).best
        frontier = pareto.knapsack(capacity, weights, values, demand, floor=floor,
                                   near_best=near_best)
        assert frontier is not None
        rooms = frontier.runners_up(capacity + 1)
        rows = frontier.patterns(rooms)
    steps = best[np.r_[True, np.diff(best) > 1e-9]]  # each value the table steps up to
    top = float(steps[-1])
    bar = floor + near_best * (top - floor)
    worth = rows @ np.array(values)
    wanted = steps[(steps > floor + 1e-9) & (steps >= bar - 1e-9) & (steps < top - 1e-9)]
    assert all(np.isclose(worth, w).any() for w in wanted)
    # Besides those, only states the list keeps whatever they are worth (of size 0).
    assert all(np.isclose(steps, w).any() and floor < w < top for w in worth)
    assert (rows @ np.array(weights) <= capacity).all() and (rows <= np.array(demand)).all()
