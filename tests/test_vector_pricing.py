"""Exact pricing in several dimensions (`solvers.vector_pricing`) against brute force, and
column generation's lower bound in several dimensions against CP-SAT's optimum: never
above it."""

from __future__ import annotations

import itertools
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from bench.instances import _single_pool
from solvers.clock import WorkClock, now, using
from solvers.engine import solve
from solvers.patterns import generate_columns
from solvers.vector_pricing import price


@st.composite
def instances(draw, most_types: int = 7):
    """Item types of two to four dimensions in bins of 10 to 12 each, one to three of each."""
    dims = draw(st.integers(2, 4))
    capacity = tuple(draw(st.integers(10, 12)) for _ in range(dims))
    types = draw(st.integers(1, most_types))
    sizes = [draw(st.tuples(*(st.integers(0, 10),) * dims).filter(any)) for _ in range(types)]
    demand = [draw(st.integers(1, 3)) for _ in range(types)]
    return capacity, sizes, demand


def _fits(capacity, sizes, pattern) -> bool:
    return all(sum(n * s[d] for n, s in zip(pattern, sizes, strict=True)) <= c
               for d, c in enumerate(capacity))


def _worth(values, pattern) -> float:
    return sum(v * n for v, n in zip(values, pattern, strict=True))


def _every_pattern(capacity, sizes, demand):
    return [p for p in itertools.product(*(range(n + 1) for n in demand))
            if _fits(capacity, sizes, p)]


@settings(max_examples=60, deadline=None)
@given(instances(), st.lists(st.floats(0, 1.2), min_size=7, max_size=7), st.integers(1, 5))
def test_the_search_finds_the_best_patterns_and_bounds_every_one(instance, values, most):
    capacity, sizes, demand = instance
    values = values[:len(sizes)]
    with using(WorkClock()):
        priced = price(capacity, sizes, values, demand, most=most, deadline=now() + 60)
    worths = sorted((_worth(values, p) for p in _every_pattern(capacity, sizes, demand)),
                    reverse=True)
    assert priced.bound is not None and priced.bound >= worths[0] - 1e-9
    assert priced.bound >= 1.0
    for pattern in priced.patterns:
        assert _fits(capacity, sizes, pattern)
        assert all(0 <= n <= m for n, m in zip(pattern, demand, strict=True))
        assert _worth(values, pattern) > 1
    # Types worth nothing add nothing: the search leaves them out of its patterns.
    improving = sorted((_worth(values, p) for p in _every_pattern(capacity, sizes, demand)
                        if all(v > 0 or not n for v, n in zip(values, p, strict=True))
                        and _worth(values, p) > 1 + 1e-6), reverse=True)
    assert len(priced.patterns) >= min(most, len(improving))
    if improving:
        assert abs(_worth(values, priced.patterns[0]) - improving[0]) < 1e-9


def test_a_search_out_of_time_proves_nothing():
    sizes = [(3, 4), (4, 3), (5, 5), (2, 6)]
    with using(WorkClock()):
        priced = price((10, 10), sizes, [0.5, 0.5, 0.6, 0.4], [3, 3, 3, 3], most=10,
                       deadline=now())
    assert priced.bound is None


def _optimum(capacity, sizes, demand) -> int:
    """The fewest bins, by CP-SAT on the assignment model."""
    items = [t for t, n in enumerate(demand) for _ in range(n)]
    model = cp_model.CpModel()
    bins = range(len(items))
    put = [[model.new_bool_var("") for _ in bins] for _ in items]
    used = [model.new_bool_var("") for _ in bins]
    for row in put:
        model.add_exactly_one(row)
    for b in bins:
        for d, c in enumerate(capacity):
            model.add(sum(sizes[t][d] * put[i][b] for i, t in enumerate(items)) <= c * used[b])
    model.minimize(sum(used))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.solve(model) == cp_model.OPTIMAL
    return round(solver.objective_value)


@settings(max_examples=40, deadline=None)
@given(instances(most_types=5), st.sampled_from([1, 2, None]))
def test_the_column_generation_bound_never_passes_the_optimum(instance, rounds):
    capacity, sizes, demand = instance
    start = [tuple(int(t == u) for u in range(len(sizes))) for t in range(len(sizes))]
    with using(WorkClock()):
        columns = generate_columns(capacity, sizes, demand, start, now() + 2, rounds=rounds)
    assert columns.lower_bound <= _optimum(capacity, sizes, demand)


@settings(max_examples=15, deadline=None)
@given(instances(most_types=5))
def test_the_engine_bound_never_passes_the_optimum(instance):
    capacity, sizes, demand = instance
    items: Counter = Counter()
    for size, n in zip(sizes, demand, strict=True):
        items[size] += n
    sizes, demand = list(items), list(items.values())
    solution = solve(_single_pool(capacity, items, sum(demand)), time_limit_s=2, seed=0,
                     deterministic=True)
    assert solution.lower_bound <= _optimum(capacity, sizes, demand) <= solution.cost


def test_the_bound_reaches_the_optimum_where_no_dimension_alone_does():
    # Every dimension alone packs these items in 5 bins (its L2 bound); no two items of the
    # first type, and no two of the third, share a bin, nor do the first and the third, and
    # the second's three take a bin each beside them or two of them alone: 8 bins.
    capacity = (10, 10, 10)
    sizes = [(7, 7, 1), (3, 4, 7), (7, 2, 4)]
    demand = [2, 3, 3]
    start = [tuple(int(t == u) for u in range(3)) for t in range(3)]
    with using(WorkClock()):
        columns = generate_columns(capacity, sizes, demand, start, now() + 10)
    assert columns.lower_bound == _optimum(capacity, sizes, demand) == 8


def test_the_search_stops_at_its_deadline_on_the_counted_clock():
    """Panigrahy's class 6 in three dimensions, 300 types at values near their shares: the
    search checks the clock every few hundred nodes, so it ends within a few milliseconds of
    counted work past its deadline, with no bound."""
    rng = random.Random(5)
    sizes = [tuple(rng.randint(20, 100) for _ in range(3)) for _ in range(300)]
    values = [sum(sizes[t]) / 450 * rng.uniform(0.9, 1.3) for t in range(300)]
    with using(WorkClock()):
        deadline = now() + 0.05
        priced = price((150, 150, 150), sizes, values, [1] * 300, most=400, deadline=deadline)
        overshoot = now() - deadline
    assert priced.bound is None
    assert 0 <= overshoot < 0.01
