"""Column generation's quick pricing and LP rounding: patterns that fit, packings that hold
every item once."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.clock import WorkClock, now, using
from solvers.patterns import (
    _price_greedily,
    generate_columns,
    list_patterns,
    pack_listed,
    round_columns,
)

CAPACITY = (10, 10, 10)


@st.composite
def instances(draw):
    """Item types of three dimensions in GPUs of 10 each, one to three of each type."""
    types = draw(st.integers(1, 8))
    sizes = [draw(st.tuples(*(st.integers(0, 10),) * 3).filter(any)) for _ in range(types)]
    demand = [draw(st.integers(1, 3)) for _ in range(types)]
    return sizes, demand


def _fits(sizes, bin_types) -> bool:
    return all(sum(sizes[t][d] for t in bin_types) <= CAPACITY[d] for d in range(3))


@settings(max_examples=40, deadline=None)
@given(instances(), st.lists(st.floats(0, 1), min_size=8, max_size=8))
def test_quick_patterns_fit_respect_demand_and_improve(instance, values):
    sizes, demand = instance
    values = values[:len(sizes)]
    for worth, pattern in _price_greedily(CAPACITY, sizes, values, demand):
        assert _fits(sizes, [t for t, n in enumerate(pattern) for _ in range(n)])
        assert all(0 <= n <= m for n, m in zip(pattern, demand, strict=True))
        assert worth == pytest.approx(sum(v * n for v, n in zip(values, pattern, strict=True)))
        assert worth > 1


@settings(max_examples=20, deadline=None)
@given(instances(), st.sampled_from([0.0, 0.05, 0.3]))
def test_rounding_packs_every_item_once_and_never_beats_the_bound(instance, seconds):
    sizes, demand = instance
    start = [tuple(int(t == u) for u in range(len(sizes))) for t in range(len(sizes))]
    with using(WorkClock()):
        columns = generate_columns(CAPACITY, sizes, demand, start, now() + seconds)
    bins = round_columns(CAPACITY, sizes, demand, columns.patterns, columns.values)
    assert all(_fits(sizes, b) for b in bins)
    assert Counter(t for b in bins for t in b) == Counter(
        t for t, n in enumerate(demand) for _ in range(n))
    assert len(bins) >= columns.lower_bound


def test_rounding_a_converged_lp_finds_the_pairs():
    # (6, 4, 5) and (4, 6, 5) fill a GPU together, and only together: three pairs.
    sizes = [(6, 4, 5), (4, 6, 5)]
    demand = [3, 3]
    start = [(1, 0), (0, 1)]  # one item of each of the two types
    with using(WorkClock()):
        columns = generate_columns(CAPACITY, sizes, demand, start, now() + 5)
    bins = round_columns(CAPACITY, sizes, demand, columns.patterns, columns.values)
    assert columns.lower_bound == 3
    assert sorted(sorted(b) for b in bins) == [[0, 1]] * 3


def test_rounding_without_lp_values_still_packs_everything():
    sizes = [(5, 5, 5), (5, 5, 5), (9, 1, 1)]
    bins = round_columns(CAPACITY, sizes, [1, 1, 1], [(1, 1, 0), (0, 0, 1)], [0.0, 0.0])
    assert sorted(sorted(b) for b in bins) == [[0, 1], [2]]


def test_items_of_no_size_never_lift_the_bound():
    """Items of size 0 go into any bin for free, so the pricing knapsack must count their
    value: left out, it undervalues the best pattern, and Farley's bound (the LP's value over
    it) passes the optimum. 8 + 6 + 6, 7 + 7 + 6 and 6 in bins of 20: three, at the size
    bound, with the items of size 0 anywhere."""
    sizes, demand = [(8,), (7,), (6,), (0,)], [1, 2, 4, 4]
    start = [tuple(int(t == u) for u in range(4)) for t in range(4)]
    with using(WorkClock()):
        columns = generate_columns((20,), sizes, demand, start, now() + 5.0)
    assert columns.lower_bound == 3


@settings(max_examples=40, deadline=None)
@given(instances(), st.tuples(*(st.integers(0, 10),) * 3))
def test_the_listing_holds_every_pattern_within_the_slack(instance, slack):
    """Every multiset of types within the demand whose loads fit the GPU and waste at most
    `slack` per dimension is listed, items of size 0 in some dimension included (brute
    force over every multiset)."""
    sizes, demand = instance
    order = sorted(range(len(sizes)), key=lambda t: sizes[t], reverse=True)
    sizes, demand = [sizes[t] for t in order], [demand[t] for t in order]
    every = {p for p in itertools.product(*(range(n + 1) for n in demand)) if any(p)
             and all(CAPACITY[d] - slack[d]
                     <= sum(n * s[d] for n, s in zip(p, sizes, strict=True)) <= CAPACITY[d]
                     for d in range(3))}
    listed = list_patterns(CAPACITY, sizes, demand, slack, limit=10_000)
    assert listed is not None and set(listed) == every and len(listed) == len(every)


def test_items_of_no_size_in_a_dimension_still_fill_a_pattern():
    """Six GPUs hold these eleven items (one of the type (9, 54, 0, 16) with (0, 27, 0, 0),
    (0, 0, 10, 0)...), but only through patterns where an item of size 0 in the first
    dimension joins one that leaves a room of 1 there: counting items by that room alone
    listed too few patterns and proved six GPUs impossible, a bound over the optimum."""
    capacity = (10, 100, 10, 37)
    sizes = sorted([(0, 27, 0, 0), (0, 75, 7, 1), (0, 10, 0, 0), (5, 89, 10, 14),
                    (2, 31, 9, 1), (7, 0, 4, 21), (2, 71, 6, 0), (0, 0, 10, 0),
                    (2, 99, 0, 37), (9, 54, 0, 16), (5, 0, 6, 0)], reverse=True)
    with using(WorkClock()):
        outcome = pack_listed(capacity, sizes, [1] * len(sizes), 6, time_limit_s=10.0, seed=0,
                              workers=1)
    assert outcome is not None and outcome.status == "found" and len(outcome.bins) == 6
