"""Vector packing (items of several dimensions): fit-decreasing starts, the dive that fixes
several patterns a step, and the engine's answers on random instances: valid, never below the
bound, the same twice in the deterministic mode. Work is bounded by the deterministic clock."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.instances import read_vbp
from scripts import vbp_classes
from solvers.bounds import shared_gpus_bound
from solvers.clock import WorkClock, now, using
from solvers.engine import solve
from solvers.patterns import dive, generate_columns
from solvers.problem import Group, Option, Pool, Problem
from solvers.vector_fit import packings

CAPACITY = (20, 20, 20)


@st.composite
def instances(draw, most: int = 10):
    """Item types of three dimensions in bins of 20 each, one to four of each type."""
    types = draw(st.integers(1, most))
    sizes = [draw(st.tuples(*(st.integers(0, 12),) * 3).filter(any)) for _ in range(types)]
    demand = [draw(st.integers(1, 4)) for _ in range(types)]
    return sizes, demand


def _valid(sizes, demand, bins) -> bool:
    fits = all(sum(sizes[t][d] for t in b) <= CAPACITY[d] for b in bins for d in range(3))
    every_item_once = Counter(t for b in bins for t in b) == Counter(
        t for t, n in enumerate(demand) for _ in range(n))
    return fits and every_item_once and all(bins)


@settings(max_examples=40, deadline=None)
@given(instances())
def test_fit_decreasing_packings_hold_every_item_once(instance):
    sizes, demand = instance
    found = packings(CAPACITY, sizes, demand)
    assert len(found) == 6
    assert all(_valid(sizes, demand, bins) for bins in found)


@settings(max_examples=12, deadline=None)
@given(instances(), st.sampled_from([0.0, 0.02, 0.3]))
def test_dive_fixing_several_patterns_packs_every_item_once(instance, budget):
    sizes, demand = instance
    start = [tuple(int(t == u) for u in range(len(sizes))) for t in range(len(sizes))]
    with using(WorkClock()):
        bins = dive(CAPACITY, sizes, demand, start, now() + budget, rounds=2, fix=0.5)
    assert bins is not None  # with `fix`, running out of time still ends in a packing
    assert _valid(sizes, demand, bins)


def test_column_generation_stops_after_its_rounds():
    sizes, demand = [(6, 4, 5), (4, 6, 5)], [3, 3]
    start = [(1, 0), (0, 1)]
    with using(WorkClock()):
        none = generate_columns(CAPACITY, sizes, demand, start, now() + 10, rounds=0)
        one = generate_columns(CAPACITY, sizes, demand, start, now() + 10, rounds=1)
    assert none.patterns == start  # the starting LP solved, nothing priced
    assert len(one.patterns) > len(start)


def _problem(sizes, demand) -> Problem:
    pool = Pool("bins", CAPACITY, gpus_per_node=1, node_cost=1, max_nodes=sum(demand))
    groups = tuple(Group(f"t{t}", (Option("bins", size, n),))
                   for t, (size, n) in enumerate(zip(sizes, demand, strict=True)))
    return Problem(("a", "b", "c"), (pool,), groups)


@settings(max_examples=8, deadline=None)
@given(instances(most=14))
def test_engine_answers_are_valid_bounded_and_repeatable(instance):
    sizes, demand = instance
    problem = _problem(sizes, demand)
    first = solve(problem, time_limit_s=0.3, seed=1, deterministic=True)  # verified inside
    again = solve(problem, time_limit_s=0.3, seed=1, deterministic=True)
    assert first.placements == again.placements
    assert not first.unplaced
    assert sorted(Counter(p.group for p in first.placements).items()) == sorted(
        (f"t{t}", n) for t, n in enumerate(demand))
    bound = shared_gpus_bound(problem.pools[0], [g.options[0] for g in problem.groups])
    assert first.cost >= first.lower_bound >= bound


@pytest.mark.parametrize("seed", [2])
def test_engine_through_column_generation_is_valid_bounded_and_repeatable(seed):
    # Sixty small types: far too many patterns to list, so column generation, the
    # fit-decreasing starts, the dive and the drain all run.
    rng = random.Random(seed)
    sizes = [tuple(rng.randint(1, 7) for _ in range(3)) for _ in range(60)]
    demand = [rng.randint(1, 2) for _ in sizes]
    problem = _problem(sizes, demand)
    first = solve(problem, time_limit_s=1.5, seed=seed, deterministic=True)
    again = solve(problem, time_limit_s=1.5, seed=seed, deterministic=True)
    assert first.placements == again.placements and not first.unplaced
    assert Counter(p.group for p in first.placements) == Counter(
        {f"t{t}": n for t, n in enumerate(demand)})
    bound = shared_gpus_bound(problem.pools[0], [g.options[0] for g in problem.groups])
    assert first.cost >= first.lower_bound >= bound
    assert first.seconds <= 1.5 * 1.1  # counted seconds, within a tenth of the budget


def test_three_complementary_kinds_fill_bins_exactly():
    # (11, 6, 3) + (6, 3, 11) + (3, 11, 6) fill a bin to (20, 20, 20) in every dimension; no
    # two of one kind fit together in the dimension where it is 11, and any two kinds leave
    # room only for the third. Seven of each: seven full bins, the volume bound.
    sizes = [(11, 6, 3), (6, 3, 11), (3, 11, 6)]
    solution = solve(_problem(sizes, [7, 7, 7]), time_limit_s=2, seed=0, deterministic=True)
    assert solution.cost == 7 and solution.status == "optimal"
    per_bin = Counter()
    for p in solution.placements:
        per_bin[(p.node, p.gpus)] += 1
    assert set(per_bin.values()) == {3}


def test_generated_classes_stay_in_their_ranges():
    rng = random.Random(5)
    for cls in vbp_classes.CLASSES:
        for _ in range(50):
            row = vbp_classes.item(rng, cls, 5)
            assert len(row) == 5 and max(row) <= vbp_classes.capacity(cls) and min(row) >= 0
            if cls in vbp_classes.UNIFORM:
                _, low, high = vbp_classes.UNIFORM[cls]
                assert low <= min(row) and max(row) <= high
            if cls == 7:
                assert abs(row[0] - row[1]) <= 10 and abs(row[2] - row[3]) <= 10
            if cls == 8:
                assert 110 <= row[0] + row[1] <= 130 and 110 <= row[2] + row[3] <= 130


def test_generated_files_read_back_with_their_bound(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["vbp_classes", "--out", str(tmp_path), "--dimensions",
                                     "4", "--items", "12", "--classes", "6", "9"])
    vbp_classes.main()
    rows = (tmp_path / "optima.tsv").read_text().splitlines()
    assert rows[0] == "instance\tlower_bound\toptimum" and len(rows) == 3
    for row in rows[1:]:
        name, bound, optimum = row.split("\t")
        problem = read_vbp(tmp_path / f"{name}.vbp")
        assert problem.pools[0].capacity == (vbp_classes.capacity(int(name[5])),) * 4
        assert sum(g.options[0].count for g in problem.groups) == 12
        assert int(bound) == shared_gpus_bound(problem.pools[0],
                                               [g.options[0] for g in problem.groups])
        assert optimum == "0"
