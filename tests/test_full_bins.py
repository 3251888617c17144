"""Zero-slack packings over full bins only (`solvers.full_bins`): the exact-weight knapsack
table prices what a brute force finds, every packing returned fills each bin to the brim with
every item once, items that do not fill the bins exactly get none, and the caller's type order
is kept. Work is bounded by the deterministic clock."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scripts.zero_slack import instance
from solvers import full_bins
from solvers.clock import SAT_SECOND, WorkClock, charge, now, using
from solvers.pricing import knapsack

# Eight bins of 100 cut into three or four pieces each, every piece a size of its own.
CUT_BINS = [[66, 29, 5], [9, 55, 3, 33], [31, 1, 68], [30, 47, 23], [18, 60, 15, 7],
            [19, 26, 12, 43], [42, 14, 24, 20], [83, 13, 4]]


def _types(items: list[int]) -> tuple[list[int], list[int]]:
    counts = Counter(items)
    sizes = sorted(counts, reverse=True)
    return sizes, [counts[s] for s in sizes]


def _full(capacity: int, sizes: list[int], demand: list[int], bins: list[list[int]]) -> bool:
    every_item_once = Counter(t for b in bins for t in b) == Counter(
        t for t, n in enumerate(demand) for _ in range(n))
    return every_item_once and all(sum(sizes[t] for t in b) == capacity for b in bins)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 12), st.floats(0.01, 2.0), st.integers(1, 3)),
                min_size=1, max_size=4), st.integers(1, 30))
def test_the_exact_weight_table_holds_the_most_valuable_pattern_of_each_weight(types, capacity):
    weights = [w for w, _, _ in types]
    values = [v for _, v, _ in types]
    demand = [n for _, _, n in types]
    table = knapsack(capacity, weights, values, demand, exact=True)
    best: dict[int, float] = {}
    for counts in itertools.product(*(range(n + 1) for n in demand)):
        weight = sum(c * w for c, w in zip(counts, weights, strict=True))
        if weight <= capacity:
            value = sum(c * v for c, v in zip(counts, values, strict=True))
            best[weight] = max(best.get(weight, float("-inf")), value)
    for room in range(capacity + 1):
        assert math.isclose(table.best[room], best.get(room, -math.inf), abs_tol=1e-9)
    rooms = [r for r in range(capacity + 1) if r in best]
    for room, row in zip(rooms, table.patterns(np.array(rooms)), strict=True):
        assert sum(c * w for c, w in zip(row, weights, strict=True)) == room
        assert all(c <= n for c, n in zip(row, demand, strict=True))
        assert abs(sum(c * v for c, v in zip(row, values, strict=True)) - best[room]) < 1e-9


def test_cut_bins_are_packed_into_full_bins():
    sizes, demand = _types([s for b in CUT_BINS for s in b])
    with using(WorkClock()):
        began = now()
        found = full_bins.pack(100, sizes, demand, 8, deadline=now() + 5, seed=0)
        assert now() - began < 5
    assert found is not None and len(found) == 8
    assert _full(100, sizes, demand, found)


def test_items_that_do_not_fill_the_bins_exactly_get_no_packing():
    sizes, demand = _types([s for b in CUT_BINS for s in b] + [1])
    with using(WorkClock()):
        assert full_bins.pack(100, sizes, demand, 9, deadline=now() + 5, seed=0) is None
        assert full_bins.pack(100, sizes, demand, 8, deadline=now() + 5, seed=0) is None


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12), st.sampled_from([(2, 3), (3, 4), (3, 5)]),
       st.sampled_from([0.0, 0.05, 1.0]))
def test_a_packing_returned_fills_every_bin_with_every_item_once(seed, bins, pieces, budget):
    """Cut bins of 1,000, shuffled: whatever comes back within the counted budget holds each
    item once in the bound's bins, each filled to the brim."""
    sizes, demand = _types(instance(random.Random(seed), 1000, bins, pieces))
    with using(WorkClock()):
        found = full_bins.pack(1000, sizes, demand, bins, deadline=now() + budget, seed=seed)
    if found is not None:
        assert len(found) == bins
        assert _full(1000, sizes, demand, found)


def _root_only(seeded: list[list[int]]):
    """A dive stubbed to price its root LP, from the patterns of the bins `seeded` too, and
    to find no packing."""
    def dive(capacity, sizes, demand, bins, columns, *, seed, deadline, repair=True,
             root_deadline=math.inf):
        columns.update({tuple(b.count(s) for s in sizes): None for b in seeded})
        assert full_bins._node(capacity, sizes, list(demand), columns,
                               min(deadline, root_deadline)) is not None
        return None

    return dive


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
                         max_size=6), min_size=1, max_size=4),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
                min_size=1, max_size=4))
def test_the_columns_within_a_demand_are_those_no_count_of_which_exceeds_it(batches, lefts):
    """Patterns added in batches between questions (repeats among them): each answer lists
    the patterns found so far that fit, once each, in the order first found."""
    columns = full_bins.Columns(3)
    found: list[tuple[int, ...]] = []
    for batch, left in zip(batches, itertools.cycle(lefts)):
        for pattern in batch:
            columns[pattern] = None
            found += [pattern] if pattern not in found else []
        assert columns.within(list(left)) == [
            p for p in found if all(a <= n for a, n in zip(p, left, strict=True))]


@pytest.mark.parametrize("dive_finds", [True, False])
def test_fill_packs_items_of_one_dimension_in_the_callers_type_order(monkeypatch, dive_finds):
    """Types in the caller's order, two dimensions of which the items need one: the packing
    comes back in that order, each bin full; where the dive finds none (stubbed to price its
    root LP and stop), the full patterns priced come back instead, in that order too."""
    if not dive_finds:
        monkeypatch.setattr(full_bins, "_dive", _root_only([]))
    sizes, demand = _types([s for b in CUT_BINS for s in b])
    order = list(reversed(range(len(sizes))))  # increasing sizes: not the order it packs in
    shaped = [(0, sizes[t]) for t in order]
    with using(WorkClock()):
        found, columns = full_bins.fill((4, 100), shaped, [demand[t] for t in order], 8,
                                        deadline=now() + 5, seed=0)
    if dive_finds:
        assert found is not None and len(found) == 8 and columns == []
        assert _full(100, [s[1] for s in shaped], [demand[t] for t in order], found)
    else:
        assert found is None and len(columns) >= 8
        assert all(sum(n * s[1] for n, s in zip(c, shaped, strict=True)) == 100
                   for c in columns)


@pytest.mark.parametrize("cover_finds", [True, False])
def test_a_dead_end_is_repaired_by_emptying_a_fixed_bin(monkeypatch, cover_finds):
    """Fixed [50, 30, 20] leaves 80, 70, 60, 50 and 40, which no two full bins hold; emptied
    back, the items pack into four full bins: [80, 20], [70, 30], [60, 40], [50, 50]. Where
    the exact cover finds nothing (it ran out of time), a dive over full patterns of the
    emptied bin's items and those left packs them."""
    if not cover_finds:
        monkeypatch.setattr(full_bins, "pack_left", lambda *args, **kwargs: None)
    sizes = [80, 70, 60, 50, 40, 30, 20]
    demand = [1, 1, 1, 2, 1, 1, 1]
    fixed = [(0, 0, 0, 1, 0, 1, 1)]
    left = [1, 1, 1, 1, 1, 0, 0]
    with using(WorkClock()):
        repaired = full_bins._repaired(100, sizes, fixed, left, 4,
                                       full_bins.Columns(len(sizes)), seed=0,
                                       deadline=now() + 5)
    assert repaired is not None and len(repaired) == 4
    bins = [[t for t, n in enumerate(p) for _ in range(n)] for p in repaired]
    assert _full(100, sizes, demand, bins)


def test_a_node_stops_pricing_once_its_lp_reaches_the_residual_total_size(monkeypatch):
    """Columns that already pack the cut bins exactly: the LP's value is the items' total
    size over the capacity, so no pattern can lower it and pricing is not called."""
    def priced(*args, **kwargs):
        raise AssertionError("priced after the LP reached its bound")

    monkeypatch.setattr(full_bins, "_priced", priced)
    sizes, demand = _types([s for b in CUT_BINS for s in b])
    columns = full_bins.Columns(len(sizes))
    columns.update({tuple(b.count(s) for s in sizes): None for b in CUT_BINS})
    with using(WorkClock()):
        solved = full_bins._node(100, sizes, demand, columns, now() + 5)
    assert solved is not None
    value, used = solved
    assert math.isclose(value, 8.0)
    assert sorted(p for p, _ in used) == sorted(columns)



def test_where_the_dive_fails_column_generation_starts_from_the_full_patterns(monkeypatch):
    """The full bins' dive stubbed to price its root LP from the cut bins' own patterns and
    fail, and the phases before it to find nothing: column generation over all patterns
    starts from every full pattern priced, in the engine's type order, and its first LP is at
    the items' size, the bound: one solve, no pricing, the bound proven."""
    from bench.instances import _single_pool
    from scripts.zero_slack import cut_bin
    from solvers import engine, patterns

    rng = random.Random(5)
    cut = [cut_bin(rng, 1000, rng.randint(3, 4)) for _ in range(12)]

    priced, generated, solves = [], [], []
    fill, generate, solve = full_bins.fill, patterns.generate_columns, patterns._PatternLP.solve

    def kept(*args, **kwargs):
        found, columns = fill(*args, **kwargs)
        priced.extend(columns)
        return found, columns

    def recorded(capacity, sizes, demand, start, *args, **kwargs):
        before = len(solves)
        columns = generate(capacity, sizes, demand, start, *args, **kwargs)
        generated.append((sizes, list(start), columns, len(solves) - before))
        return columns

    def counted(lp, deadline):
        solves.append(lp)
        return solve(lp, deadline)

    monkeypatch.setattr(full_bins, "_dive", _root_only(cut))
    monkeypatch.setattr(full_bins, "fill", kept)
    monkeypatch.setattr(engine, "_list_tight", lambda *args, **kwargs: (None, args[3], False))
    monkeypatch.setattr(engine, "_partial_search", lambda capacity, sizes, bins, *a, **k: bins)
    monkeypatch.setattr(engine, "_filled", lambda *args, **kwargs: None)
    monkeypatch.setattr(patterns, "generate_columns", recorded)
    monkeypatch.setattr(patterns._PatternLP, "solve", counted)
    # The LP's rounding stubbed to find one item a bin, so the packing stays above the bound
    # after column generation: the step over reduced costs would run next, but is not tried
    # after the full bins' phase (every full pattern is within its gap of 0).
    monkeypatch.setattr(patterns, "round_columns", lambda capacity, sizes, demand, *a: [
        [t] for t, n in enumerate(demand) for _ in range(n)])
    reduced = []
    monkeypatch.setattr(engine, "_by_reduced_cost", lambda *a, **k: reduced.append(a) or a[4:6])
    items = Counter((s,) for b in cut for s in b)
    engine.solve(_single_pool((1000,), items, items.total()), time_limit_s=2, deterministic=True)
    sizes, start, columns, lp_solves = generated[0]
    assert len(priced) > 12 and set(priced) <= set(start)
    assert all(sum(n * s[0] for n, s in zip(p, sizes, strict=True)) == 1000 for p in priced)
    assert lp_solves == 1
    assert columns.lower_bound == 12 and math.isclose(sum(columns.values), 12.0)
    assert reduced == []


def test_the_root_lp_is_given_up_after_its_share_of_the_time(monkeypatch):
    """A root LP that never settles (its column generation stubbed to run to the deadline it
    is given): the phase gives up at `ROOT_SHARE` of its time, not at its end."""
    def endless(capacity, sizes, left, columns, deadline):
        charge((deadline - now()) / SAT_SECOND)
        return None

    monkeypatch.setattr(full_bins, "_node", endless)
    sizes, demand = _types([s for b in CUT_BINS for s in b])
    with using(WorkClock()):
        start = now()
        assert full_bins.pack(100, sizes, demand, 8, deadline=start + 4, seed=0) is None
        spent = now() - start
    assert 4 * full_bins.ROOT_SHARE <= spent <= 4 * (full_bins.ROOT_SHARE + 0.05)
