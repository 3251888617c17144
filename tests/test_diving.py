"""Diving with limited discrepancy search (`solvers.diving`): every packing it returns holds
each item exactly once within the capacity, it finds an optimum that rounding the LP and a
dive without backtracking both miss, it takes the same path twice, a node's LP solved from
the last basis ends at the bound of a cold solve, and a node hands rounding its columns as
rows that round as the columns do. Work is bounded by the deterministic clock."""

from __future__ import annotations

import math
import random
from collections import Counter
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from solvers import diving, engine, patterns, pricing
from solvers.clock import SAT_SECOND, Clock, WorkClock, charge, now, using
from solvers.diving import search
from solvers.lp import CoverLP
from solvers.patterns import generate_columns, round_columns

# Eight bins of 100 cut into three or four pieces each, every piece a size of its own: the
# optimum is 8 by construction.
CUT_BINS = [[52, 43, 5], [1, 55, 44], [8, 34, 58], [25, 53, 22], [9, 54, 37], [80, 2, 18],
            [65, 21, 14], [7, 33, 19, 41]]
# Eight more bins of 100 cut at random (some sizes repeat): rounding the LP ends a bin over
# and so does the dive without backtracking.
RECUT_BINS = [[9, 37, 54], [44, 4, 16, 36], [36, 33, 8, 23], [24, 20, 22, 34], [3, 48, 49],
              [26, 20, 54], [32, 34, 34], [30, 37, 17, 16]]


def _instance(items: list[int]) -> tuple[list[tuple[int, ...]], list[int]]:
    counts = Counter(items)
    sizes = sorted(counts, reverse=True)
    return [(s,) for s in sizes], [counts[s] for s in sizes]


def _singles(types: int) -> list[tuple[int, ...]]:
    return [tuple(int(t == u) for u in range(types)) for t in range(types)]


def _valid(capacity: int, sizes, demand, bins) -> bool:
    fits = all(sum(sizes[t][0] for t in b) <= capacity for b in bins)
    every_item_once = Counter(t for b in bins for t in b) == Counter(
        t for t, n in enumerate(demand) for _ in range(n))
    return fits and every_item_once and all(bins)


@st.composite
def instances(draw):
    """Items of one dimension in bins of 30 to 120, one to five of each size."""
    capacity = draw(st.integers(30, 120))
    items = [s for s in draw(st.lists(st.integers(1, capacity), min_size=1, max_size=12))
             for _ in range(draw(st.integers(1, 5)))]
    return capacity, items


@settings(max_examples=40, deadline=None)
@given(instances(), st.sampled_from([0.0, 0.01, 0.2, 5.0]), st.sampled_from([None, 0, 7]))
def test_a_packing_from_the_search_holds_every_item_once_within_capacity(instance, budget,
                                                                          restart_seed):
    capacity, items = instance
    sizes, demand = _instance(items)
    with using(WorkClock()):
        bins = search((capacity,), sizes, demand, _singles(len(sizes)), now() + budget,
                      most=sum(demand) + 1, goal=0, restart_seed=restart_seed)
    if budget >= 5.0:  # ample for a dozen sizes: the root's rounding at least
        assert bins is not None
    if bins is not None:  # only a packing into fewer GPUs than `most` comes back
        assert _valid(capacity, sizes, demand, bins)
        assert len(bins) <= sum(demand)


def test_backtracking_finds_the_optimum_that_rounding_and_a_plain_dive_miss():
    sizes, demand = _instance([s for b in RECUT_BINS for s in b])
    with using(WorkClock()):
        columns = generate_columns((100,), sizes, demand, _singles(len(sizes)), now() + 5)
        assert columns.lower_bound == 8
        rounded = round_columns((100,), sizes, demand, columns.patterns, columns.values)
        assert len(rounded) == 9
        plain = search((100,), sizes, demand, columns.patterns, now() + 5, most=9, goal=8,
                       max_discrepancy=0, widen=False)
        assert plain is None  # the dive alone ends where no better packing is left
        began = now()
        found = search((100,), sizes, demand, columns.patterns, now() + 5, most=9, goal=8)
        assert now() - began < 1.0  # it stops at the goal, well within the budget
    assert found is not None and len(found) == 8
    assert _valid(100, sizes, demand, found)


def test_a_tree_done_early_widens_until_it_finds_the_optimum():
    """The dive alone (no discrepancy) misses the optimum and is done long before its
    deadline; the search widens the tree with the time it left and finds the optimum within
    the same counted budget."""
    sizes, demand = _instance([s for b in CUT_BINS for s in b])
    with using(WorkClock()):
        columns = generate_columns((100,), sizes, demand, _singles(len(sizes)), now() + 5)
        began = now()
        found = search((100,), sizes, demand, columns.patterns, now() + 5, most=9, goal=8,
                       max_discrepancy=0, max_depth=0)
        assert now() - began < 5.0
    assert found is not None and len(found) == 8
    assert _valid(100, sizes, demand, found)


def test_a_dive_that_misses_is_followed_by_one_from_a_reshuffled_root():
    """The raced rival's search: where a dive ends without a packing at the goal (the first
    one stubbed to), the next dives from a new root over every column found so far, in
    another order, and reaches 8."""
    sizes, demand = _instance([s for b in CUT_BINS for s in b])
    masters, real = [], diving._tree

    def first_misses(master, *args, **kwargs):
        masters.append(master)
        if len(masters) == 1:
            return kwargs["best"], True, 1
        return real(master, *args, **kwargs)

    with using(WorkClock()), mock.patch.object(diving, "_tree", side_effect=first_misses):
        columns = generate_columns((100,), sizes, demand, _singles(len(sizes)), now() + 5)
        found = search((100,), sizes, demand, columns.patterns, now() + 5, most=9, goal=8,
                       restart_seed=0)
    assert found is not None and len(found) == 8
    assert _valid(100, sizes, demand, found)
    first, second = masters[0].patterns, masters[1].patterns
    assert len(masters) == 2 and set(first) <= set(second)
    assert second[:len(first)] != first  # the same columns, in another order


def test_a_restarted_search_does_not_dive_below_a_root_it_cannot_beat():
    sizes, demand = _instance([s for b in CUT_BINS for s in b])
    with using(WorkClock()), mock.patch.object(diving, "_tree", side_effect=diving._tree) as trees:
        columns = generate_columns((100,), sizes, demand, _singles(len(sizes)), now() + 5)
        found = search((100,), sizes, demand, columns.patterns, now() + 5, most=8, goal=8,
                       restart_seed=0)
    assert found is None and trees.call_count == 0


def test_the_search_takes_the_same_path_twice():
    sizes, demand = _instance([s for b in CUT_BINS for s in b])
    runs = []
    for _ in range(2):
        with using(WorkClock()):
            columns = generate_columns((100,), sizes, demand, _singles(len(sizes)), now() + 5)
            found = search((100,), sizes, demand, columns.patterns, now() + 5, most=9, goal=8)
            restarted = search((100,), sizes, demand, columns.patterns, now() + 5, most=9,
                               goal=8, restart_seed=3)
            runs.append((found, restarted, now()))
    assert runs[0] == runs[1]


def test_a_node_hands_rounding_the_rows_of_the_columns_its_lp_uses():
    """The rows a node hands on are its columns' counts (its matrix grows as pricing adds
    columns, past the size it started with), and rounding them gives the bins that rounding
    the same columns as tuples gives."""
    sizes, demand = _instance([s for b in CUT_BINS for s in b])
    with using(WorkClock()):
        master = diving._Master(100, [s[0] for s in sizes], [], sparse=False)
        singles = len(master.patterns)
        solved = master.solve(tuple(demand), now() + 5)
        assert solved is not None
        _, columns, values, rows = solved
        assert len(master.patterns) > singles  # columns priced after the first sync
        assert master.matrix.tolist() == [list(p) for p in master.patterns]
        assert rows.tolist() == [list(c) for c in columns]
        assert round_columns((100,), sizes, demand, rows, values) == \
            round_columns((100,), sizes, demand, columns, values)


def test_on_large_capacities_a_node_fixes_every_column_its_lp_uses_whole():
    """120 items of 150 to 450 in bins of 1,000 (seed 0), priced as on large capacities (no
    table fits): read back over patterns, the LP uses nine columns a whole number of times.
    The dive that fixes with its first choice every column its own LP uses at least once, as
    many times as it uses it whole, reaches a packing at the bound in 4 nodes (fixing only
    the columns used a whole number of times cost GI's csAB500_2 and csBB500_3 their
    optimum)."""
    rng = random.Random(0)
    sizes, demand = _instance([rng.randint(150, 450) for _ in range(120)])
    solve = diving._Master.solve
    with mock.patch.object(patterns, "MAX_TABLE_CELLS", 0), using(WorkClock()), \
            mock.patch.object(diving._Master, "solve", autospec=True,
                              side_effect=solve) as nodes:
        columns = generate_columns((1000,), sizes, demand, _singles(len(sizes)), now() + 10)
        assert columns.lower_bound == 37
        assert sum(v > 1 - 1e-6 and abs(v - round(v)) < 1e-6 for v in columns.values) == 9
        found = search((1000,), sizes, demand, columns.patterns[:columns.priced], now() + 10,
                       most=39, goal=37, max_discrepancy=0, widen=False)
    assert found is not None and len(found) == 37
    assert _valid(1000, sizes, demand, found)
    assert nodes.call_count <= 4


def test_rounded_down_a_dive_priced_by_table_takes_fewer_nodes():
    """The same 120 items priced by table: a dive whose children fix only the whole columns
    takes 7 nodes to the bound; one whose children fix every column used, rounded down (the
    raced search's rival), 3. Neither wins on every instance (with seed 8 the first takes 3
    nodes, the second 10), which is why the two are raced."""
    rng = random.Random(0)
    sizes, demand = _instance([rng.randint(150, 450) for _ in range(120)])
    calls = []
    for round_down in (False, True):
        with using(WorkClock()), mock.patch.object(
                diving._Master, "solve", autospec=True, side_effect=diving._Master.solve) as nodes:
            columns = generate_columns((1000,), sizes, demand, _singles(len(sizes)), now() + 10)
            found = search((1000,), sizes, demand, columns.patterns[:columns.priced],
                           now() + 10, most=39, goal=37, max_discrepancy=0, widen=False,
                           round_down=round_down)
        assert found is not None and len(found) == 37
        assert _valid(1000, sizes, demand, found)
        calls.append(nodes.call_count)
    assert calls[1] < calls[0]


def test_a_node_lp_solved_from_the_last_basis_ends_at_the_bound_of_a_cold_solve():
    """The master LP goes on from the last basis (HiGHS's dual simplex, no presolve) while its
    rows are lowered and raised as dives and backtracking do: each residual demand's bound is
    the one column generation reaches on that demand from scratch."""
    rng = random.Random(1)
    sizes, demand = _instance([rng.randint(20, 70) for _ in range(60)])
    with using(WorkClock()):
        columns = generate_columns((100,), sizes, demand, _singles(len(sizes)), now() + 5)
        master = diving._Master(100, [s[0] for s in sizes], columns.patterns, sparse=False)
        _assert_cold_bounds(master, 100, sizes, demand, rng, residuals=12)


def _assert_cold_bounds(master, capacity: int, sizes, demand, rng: random.Random, *,
                        residuals: int) -> None:
    """`master` solves random residual demands to the bound column generation reaches on
    each from scratch."""
    for _ in range(residuals):
        left = tuple(rng.randint(0, n) for n in demand)
        solved = master.solve(left, now() + 10)
        cold = generate_columns((capacity,), sizes, list(left), _singles(len(sizes)),
                                now() + 10)
        assert solved is not None
        assert solved[0] == cold.lower_bound


def test_on_large_capacities_a_node_prices_quickly_before_the_list():
    """Priced as on large capacities (no table fits), a node's column generation takes quick
    pricing's columns while it finds some, as column generation's own rounds do, and the
    undominated list only after: from single items the root reaches its bound of 37 on quick
    pricing's columns alone (16 rounds, the list not called), and each residual demand's
    bound is the one column generation reaches on it from scratch."""
    rng = random.Random(0)
    sizes, demand = _instance([rng.randint(150, 450) for _ in range(120)])
    with mock.patch.object(patterns, "MAX_TABLE_CELLS", 0), using(WorkClock()), \
            mock.patch.object(diving, "price_quickly",
                              side_effect=patterns.price_quickly) as quick, \
            mock.patch.object(pricing.Pricer, "round", autospec=True,
                              side_effect=pricing.Pricer.round) as listed:
        master = diving._Master(1000, [s[0] for s in sizes], [], sparse=True)
        root = master.solve(tuple(demand), now() + 10)
        assert root is not None and root[0] == 37
        assert quick.call_count > 0 and listed.call_count == 0
        _assert_cold_bounds(master, 1000, sizes, demand, rng, residuals=5)


def test_on_large_capacities_a_node_whose_list_grows_too_long_keeps_its_lp():
    """Where the undominated list grows too long to price by (stubbed: it always does), a
    node keeps the LP its quick pricing reached, bounded by what is proven (the items' size,
    42 GPUs for 120 items of 350 in GPUs of 1000, not the LP's 60), and later nodes price
    quickly only: the search still packs the 60 GPUs two to a GPU, where it gave up at the
    root before, and asks the list once."""
    sizes, demand, single = [(350,)], [120], [(1,)]
    with mock.patch.object(patterns, "MAX_TABLE_CELLS", 0), using(WorkClock()), \
            mock.patch.object(pricing.Pricer, "round", autospec=True,
                              return_value=None) as listed:
        root = diving._Master(1000, [350], single, sparse=True).solve((120,), now() + 10)
        assert root is not None and root[0] == 42 and math.isclose(sum(root[2]), 60)
        found = search((1000,), sizes, demand, single, now() + 10, most=120, goal=0)
    assert found is not None and len(found) == 60 and _valid(1000, sizes, demand, found)
    assert listed.call_count == 2  # once at the root above, once in the search


def test_on_large_capacities_nodes_price_quickly_only_once_the_lists_time_is_spent():
    """The undominated list may take only `LISTING_SHARE` of the search's time: with none
    left for it, the nodes price quickly only (the list never called), and the search still
    packs the 120 items of 350 into their optimum of 60 GPUs; with the share, the nodes ask
    the list to prove their LPs' bounds."""
    sizes, demand, single = [(350,)], [120], [(1,)]
    calls = []
    for share in (0.0, diving.LISTING_SHARE):
        with mock.patch.object(patterns, "MAX_TABLE_CELLS", 0), using(WorkClock()), \
                mock.patch.object(diving, "LISTING_SHARE", share), \
                mock.patch.object(pricing.Pricer, "round", autospec=True,
                                  side_effect=pricing.Pricer.round) as listed:
            found = search((1000,), sizes, demand, single, now() + 10, most=120, goal=0)
        assert found is not None and len(found) == 60 and _valid(1000, sizes, demand, found)
        calls.append(listed.call_count)
    assert calls[0] == 0 < calls[1]


def test_on_large_capacities_a_node_fixes_each_column_as_often_as_its_lp_uses_it_whole():
    """Where nodes price by the undominated list, a column the LP uses 2.5 times is fixed
    twice with the first choice (what is left of the LP's solution still covers the child's
    residual demand, so the child's bound holds); where they price by table, only the
    columns used a whole number of times are."""
    a, b, c, d = (1, 0), (0, 1), (1, 1), (2, 0)
    values = [2.5, 1.0, 0.7, 3.0 - 1e-9]
    assert diving._whole([a, b, c, d], values, frozenset(), rounded_down=True) == [
        (a, 2), (b, 1), (d, 3)]
    assert diving._whole([a, b, c, d], values, frozenset()) == [(b, 1), (d, 3)]
    assert diving._whole([a, b], [2.5, 1.0], frozenset({a}), rounded_down=True) == [(b, 1)]


def test_on_large_capacities_the_dive_starts_from_column_generations_value():
    """Priced by the undominated list (no table fits), column generation's LP holds the
    dual-optimal inequalities, which the dive's LP does not: over the LP's own columns alone
    the dive's root lies above column generation's value (37.005 against 36.879 on these 120
    items, seed 2: a bin over its bound of 37), and the read-back columns bring it back."""
    rng = random.Random(2)
    sizes, demand = _instance([rng.randint(150, 450) for _ in range(120)])
    weights = [s[0] for s in sizes]
    with mock.patch.object(patterns, "MAX_TABLE_CELLS", 0), using(WorkClock()):
        columns = generate_columns((1000,), sizes, demand, _singles(len(sizes)), now() + 10)
        start = engine._diving_columns((1000,), sizes, demand, columns.patterns,
                                       columns.patterns[:columns.priced])
        roots = []
        for given in (columns.patterns[:columns.priced], start):
            master = diving._Master(1000, weights, list(given), sparse=True)
            master._set_demand(tuple(demand))
            master.lp.solve(math.inf)
            roots.append(master.lp.objective())
    assert columns.priced < len(columns.patterns) == len(start)
    assert roots[0] > columns.lower_bound > roots[1] - 1e-6
    assert roots[1] <= sum(columns.values) + 1e-6
    # Where the table fits, the dive's own pricing gets back down: the LP's own columns.
    assert engine._diving_columns((1000,), sizes, demand, columns.patterns,
                                  columns.patterns[:columns.priced]) == \
        columns.patterns[:columns.priced]


def test_on_the_wall_clock_every_lp_solve_is_limited_to_the_deadline(monkeypatch):
    """A cold solve of a degenerate LP can take seconds: on the wall clock each LP solve of
    column generation and of the search's nodes is given the time left to their deadline (a
    solve cut short ends them); on the counted clock none is, so where a solve stops does not
    depend on the machine's speed."""
    limits: list[float] = []
    real = CoverLP.set_time_limit
    monkeypatch.setattr(CoverLP, "set_time_limit",
                        lambda lp, seconds: limits.append(seconds) or real(lp, seconds))
    sizes, demand = [(60,), (50,), (40,), (30,), (20,)], [3, 3, 3, 3, 3]
    columns = [tuple(int(t == k) for t in range(5)) for k in range(5)]
    for clock in (Clock(), WorkClock()):
        limits.clear()
        with using(clock):
            generate_columns((100,), sizes, demand, columns, now() + 30)
            search((100,), sizes, demand, columns, now() + 30, most=11, goal=6)
        if clock.deterministic:
            assert limits == []
        else:  # column generation's solves and the search's
            assert len(limits) >= 2 and all(0 < seconds <= 30 for seconds in limits)
    lp = CoverLP([1])
    Clock().limit_lp(lp, now() + 5)
    Clock().limit_lp(lp, math.inf)  # no deadline: no limit, also where one was set before
    assert lp.solver.getOptionValue("time_limit")[1] == math.inf


def test_a_solve_cut_short_at_the_deadline_leaves_the_last_lp(monkeypatch):
    """Column generation's second solve stubbed to run past the deadline without an answer
    (what the wall clock's limit does to a long solve): the columns come back with the first
    solve's values, not with none."""
    solve, calls = patterns._PatternLP.solve, []

    def cut(lp, deadline):
        calls.append(deadline)
        if len(calls) == 1:
            return solve(lp, deadline)
        charge((deadline - now()) / SAT_SECOND + 1e-3)
        return None

    monkeypatch.setattr(patterns._PatternLP, "solve", cut)
    sizes, demand = [(60,), (50,), (40,), (30,), (20,)], [3, 3, 3, 3, 3]
    with using(WorkClock()):
        columns = generate_columns((100,), sizes, demand,
                                   [tuple(int(t == k) for t in range(5)) for k in range(5)],
                                   now() + 5)
    assert len(calls) == 2
    assert math.isclose(sum(columns.values), 15.0)  # the singles' LP: one bin an item


def test_where_column_generation_did_not_settle_the_engine_dives_by_the_search():
    """Column generation cut short (here not run at all: its columns one item each) leaves
    the LP far above its bound; the engine still runs the diving search, whose root prices
    on from those columns, and its dives reach a packing at the bound (37 GPUs for these 120
    items, seed 0, from greedy's one item a GPU)."""
    rng = random.Random(0)
    sizes, demand = _instance([rng.randint(150, 450) for _ in range(120)])
    bins = [[t] for t, n in enumerate(demand) for _ in range(n)]
    with using(WorkClock()), mock.patch.object(diving, "search", autospec=True,
                                               side_effect=diving.search) as searched:
        found, _ = engine._dived((1000,), sizes, demand, _singles(len(sizes)), bins, 37,
                                 vector=False, deadline=now() + 10, time_limit_s=10)
    assert searched.call_count == 1
    assert len(found) == 37 and _valid(1000, sizes, demand, found)
