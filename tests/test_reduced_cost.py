"""The packing at the bound over the patterns reduced costs allow (`solvers.reduced_cost`):
whatever the duals, a packing it finds holds exactly the items within capacity in at most the
bins asked for, and it never calls a packing impossible that exists; from column generation's
converged duals it finds Wäscher's TEST0014 at its optimum and proves TEST0022's and
TEST0065's optimum one over the LP's bound. Budgets are deterministic seconds of `WorkClock`,
so no outcome depends on the machine's speed."""

from __future__ import annotations

import math
from collections import Counter
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import solvers.reduced_cost as reduced_cost
from bench.instances import read_bpp
from scripts import bench_solver
from solvers import engine
from solvers.clock import PATTERN_VISIT, WorkClock, now, using
from solvers.engine import solve
from solvers.patterns import generate_columns
from solvers.reduced_cost import pack_at_bound
from tests.conftest import SHARED
from tests.test_column_pricing import _optimum, _singles

WAESCHER = SHARED / "benchmarks" / "bpplib" / "waescher"


def _types(items: list[int]) -> tuple[list[int], list[int]]:
    counts = Counter(items)
    weights = sorted(counts, reverse=True)
    return weights, [counts[w] for w in weights]


def _converged(capacity: int, weights: list[int], demand: list[int]):
    return generate_columns((capacity,), [(w,) for w in weights], demand, _singles(len(weights)),
                            now() + 20, converge=True)


def _read(path) -> tuple[int, list[int]]:
    numbers = [int(x) for x in path.read_text().split()]
    return numbers[1], numbers[2:2 + numbers[0]]


def _optimum_of(name: str) -> int:
    return bench_solver._optima(WAESCHER / f"{name}.txt")[name].optimum


def _assert_packs(bins: list[list[int]], capacity: int, weights: list[int],
                  demand: list[int], most: int) -> None:
    assert len(bins) <= most
    assert all(sum(weights[t] for t in b) <= capacity for b in bins)
    assert Counter(t for b in bins for t in b) == Counter(
        {t: d for t, d in enumerate(demand)})


@st.composite
def small_instances(draw):
    """Up to nine items of positive size in bins of 10 to 60."""
    capacity = draw(st.integers(10, 60))
    items = draw(st.lists(st.integers(1, capacity), min_size=1, max_size=9))
    return capacity, items


@settings(max_examples=40, deadline=None)
@given(small_instances())
def test_from_converged_duals_a_packing_at_the_optimum_is_found_or_left_unknown(instance_):
    capacity, items = instance_
    weights, demand = _types(items)
    optimum = _optimum(capacity, items)
    with using(WorkClock()):
        duals = _converged(capacity, weights, demand).duals
        outcome = pack_at_bound(capacity, weights, demand, duals, optimum,
                                deadline=now() + 5, seed=0)
        below = pack_at_bound(capacity, weights, demand, duals, optimum - 1,
                              deadline=now() + 5, seed=0)
    assert outcome.status in ("found", "unknown")
    if outcome.status == "found":
        _assert_packs(outcome.bins, capacity, weights, demand, optimum)
    assert below.status in ("impossible", "unknown")
    if below.status == "impossible":
        assert below.lower_bound == optimum


@settings(max_examples=60, deadline=None)
@given(small_instances(), st.lists(st.floats(0, 2), min_size=9, max_size=9))
def test_any_duals_never_rule_out_a_packing_that_exists(instance_, duals):
    """Duals far from the LP's optimum price patterns above 1: divided by the most any is
    worth, they still bound every packing, so the optimum is never called impossible."""
    capacity, items = instance_
    weights, demand = _types(items)
    optimum = _optimum(capacity, items)
    with using(WorkClock()), mock.patch.object(reduced_cost, "MAX_GAP", math.inf):
        outcome = pack_at_bound(capacity, weights, demand, duals[:len(weights)], optimum,
                                deadline=now() + 5, seed=0)
    assert outcome.status in ("found", "unknown")
    if outcome.status == "found":
        _assert_packs(outcome.bins, capacity, weights, demand, optimum)


def _at_the_lps_ceiling(name: str):
    """Wäscher's instance `name`, the LP's ceiling from converged column generation, and
    `pack_at_bound` asked for a packing there."""
    capacity, items = _read(WAESCHER / f"{name}.txt")
    weights, demand = _types(items)
    with using(WorkClock()):
        columns = _converged(capacity, weights, demand)
        bound = math.ceil(sum(columns.values) - 1e-6)
        outcome = pack_at_bound(capacity, weights, demand, columns.duals, bound,
                                deadline=now() + 10, seed=0)
    return (capacity, weights, demand), bound, outcome


@pytest.mark.skipif(not SHARED.exists(), reason="benchmark data not present")
def test_waeschers_test0014_is_packed_at_the_lps_ceiling():
    (capacity, weights, demand), bound, outcome = _at_the_lps_ceiling("Waescher_TEST0014")
    assert bound == _optimum_of("Waescher_TEST0014")
    assert outcome.status == "found"
    _assert_packs(outcome.bins, capacity, weights, demand, bound)


@pytest.mark.skipif(not SHARED.exists(), reason="benchmark data not present")
@pytest.mark.parametrize("name", ["Waescher_TEST0022", "Waescher_TEST0065"])
def test_an_optimum_one_over_the_lps_ceiling_is_proven(name):
    _, bound, outcome = _at_the_lps_ceiling(name)
    assert (outcome.status, outcome.lower_bound) == ("impossible", _optimum_of(name))
    assert bound + 1 == _optimum_of(name)


@pytest.mark.skipif(not SHARED.exists(), reason="benchmark data not present")
def test_the_engine_proves_test0022_with_it():
    problem = read_bpp(WAESCHER / "Waescher_TEST0022.txt")
    solution = solve(problem, time_limit_s=10, deterministic=True)
    assert (solution.cost, solution.lower_bound) == (15, 15)
    assert solution.status == "optimal"


def test_too_many_patterns_a_gap_too_wide_no_time_or_no_table_leave_it_unknown():
    capacity, items = 100, [30, 30, 30, 40, 40, 45, 55, 60, 70]
    weights, demand = _types(items)
    with using(WorkClock()):
        columns = _converged(capacity, weights, demand)
        bound = math.ceil(sum(columns.values) - 1e-6)

        def ask(bins: int, deadline: float):
            return pack_at_bound(capacity, weights, demand, columns.duals, bins,
                                 deadline=deadline, seed=0).status

        assert ask(bound, now() + 5) == "found"
        assert ask(bound + 1, now() + 5) == "unknown"  # a gap of a whole bin
        assert ask(bound, now()) == "unknown"
        with mock.patch.object(reduced_cost, "MAX_PATTERNS", 0):
            assert ask(bound, now() + 5) == "unknown"
        with mock.patch.object(reduced_cost, "MAX_VISITS", 1):
            assert ask(bound, now() + 5) == "unknown"
        with mock.patch.object(reduced_cost, "fits_table", lambda *_: False):
            assert ask(bound, now() + 5) == "unknown"


def test_the_listing_gives_up_after_its_visits_where_the_duals_follow_the_sizes():
    """Duals proportional to the sizes (items that fill their bins exactly, the LP at their
    size): every partial pattern can still reach the gap, so the listing would visit every
    set of items that fits, far past its deadline; it gives up after `MAX_VISITS` visits,
    and is charged for those alone."""
    capacity, weights = 10_000, list(range(1000, 3000, 37))
    values = [w / capacity for w in weights]
    with using(WorkClock()) as clock, mock.patch.object(reduced_cost, "MAX_VISITS", 50_000):
        assert reduced_cost._patterns_within(capacity, weights, [2] * len(weights), values,
                                             1 - 1e-7, 10**9, now() + 2) is None
        assert now() <= clock.cost(PATTERN_VISIT * (50_000 + reduced_cost.DEADLINE_STEPS))


@pytest.mark.parametrize("capacity, tried", [(100, True), (10**8, False)])
def test_the_engine_takes_the_lp_to_its_optimum_only_where_the_table_fits(capacity, tried):
    """On large capacities the LP needs longer than the step's share to reach its optimum,
    and the diving search after it would lack that time: the step is not tried there."""
    weights = [capacity * share // 100 for share in (30, 30, 30, 40, 40, 45, 55, 60, 70)]
    sizes, demand = _types(weights)
    bins = [[t] for t, d in enumerate(demand) for _ in range(d)]
    with using(WorkClock()), mock.patch("solvers.patterns.generate_columns",
                                        wraps=generate_columns) as spy:
        found, bound = engine._by_reduced_cost(
            (capacity,), [(s,) for s in sizes], demand, _singles(len(sizes)), bins, 4,
            lp_value=3.99, deadline=now() + 5, seed=0)
    assert spy.called == tried
    assert bound >= 4
    assert len(found) == (4 if tried else len(bins))
