"""Draining the lightest bin: fewer bins, never an invalid or lossy packing."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.clock import WorkClock, now, using
from solvers.repack import empty_bins


def _valid(capacity, sizes, bins) -> bool:
    return all(sum(sizes[t][d] for t in b) <= capacity[d]
               for b in bins for d in range(len(capacity)))


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10), st.integers(0, 10)), min_size=1, max_size=12))
def test_result_is_valid_holds_every_item_and_never_more_bins(sizes):
    capacity = (10, 10)
    start = [[t] for t in range(len(sizes))]  # one item per bin: as bad as it gets
    with using(WorkClock()):
        found = empty_bins(capacity, sizes, start, goal=1, deadline=now() + 0.2, seed=0)
    assert _valid(capacity, sizes, found)
    assert Counter(t for b in found for t in b) == Counter(range(len(sizes)))
    assert len(found) <= len(start)


def test_reaches_the_optimum_from_one_item_per_bin():
    # 6+4, 6+4, 7+3 fill three bins exactly; nothing less than three can hold 30.
    sizes = [(6,), (4,), (7,), (3,)]
    start = [[0], [0], [1], [1], [2], [3]]
    with using(WorkClock()):
        found = empty_bins((10,), sizes, start, goal=3, deadline=now() + 10, seed=0)
    assert len(found) == 3
    assert sorted(sorted(sizes[t][0] for t in b) for b in found) == [[3, 7], [4, 6], [4, 6]]
