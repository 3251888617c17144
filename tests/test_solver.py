"""The packing engine: invariants on random instances, known optima, and each rule type."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.instances import read_bpp, read_vbp
from solvers.bounds import cost_bound, shared_gpus_bound
from solvers.engine import InfeasibleError, solve
from solvers.greedy import greedy
from solvers.patterns import generate_columns
from solvers.problem import Conflict, Group, Option, Pool, Problem, SliceType
from solvers.verify import cost_of, violations
from tests.conftest import SHARED

DIMS = ("memory", "compute")


@st.composite
def problems(draw, max_groups: int = 6):
    """Small random fleets: two pools, optional groups, whole-GPU items, spread, conflicts,
    and a node dimension (like CPU) that may or may not limit the nodes."""
    pools = (
        Pool("a", (100, 100), gpus_per_node=draw(st.integers(1, 3)), node_cost=draw(
            st.integers(3, 9)), max_nodes=draw(st.integers(2, 4)),
             node_capacity=draw(st.sampled_from([(), (60,), (150,)]))),
        Pool("b", (60, 100), gpus_per_node=draw(st.integers(1, 2)), node_cost=draw(
            st.integers(2, 6)), max_nodes=draw(st.integers(2, 4)),
             node_capacity=draw(st.sampled_from([(), (40,)]))),
    )
    groups = []
    for i in range(draw(st.integers(1, max_groups))):
        options = []
        for pool in draw(st.sampled_from([["a"], ["b"], ["a", "b"]])):
            whole = draw(st.sampled_from([0, 0, 0, 1, 2]))
            count = draw(st.integers(1, 3))
            spread = draw(st.sampled_from([None, None, 1, 2]))
            options.append(Option(pool, (draw(st.integers(5, 60)), draw(st.integers(5, 60))),
                                  count, whole_gpus=whole, max_per_node=spread,
                                  node_size=(draw(st.integers(0, 40)),)))
        groups.append(Group(f"g{i}", tuple(options), priority=draw(st.integers(0, 2)),
                            optional=True,
                            classes=frozenset(draw(st.sampled_from([(), ("x",), ("y",)])))))
    conflicts = draw(st.sampled_from([(), (Conflict("xy", "x", "y", "gpu"),),
                                      (Conflict("xy", "x", "y", "node"),)]))
    return Problem(DIMS, pools, tuple(groups), conflicts, node_dimensions=("cpu",))


FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(problems())
def test_greedy_solutions_obey_every_rule(problem):
    for strategy in ("first", "best"):
        solution = greedy(problem, strategy)
        assert violations(problem, solution) == []
        assert solution.cost == cost_of(problem, solution)


@FAST
@given(problems())
def test_cpsat_valid_never_worse_than_greedy_and_bounded(problem):
    reference = greedy(problem, "best")
    solution = solve(problem, time_limit_s=2, seed=1, workers=1)
    assert violations(problem, solution) == []
    placed_ref = sorted((problem.group(g).priority for g in reference.unplaced), reverse=True)
    placed_new = sorted((problem.group(g).priority for g in solution.unplaced), reverse=True)
    assert placed_new <= placed_ref
    if placed_new == placed_ref:
        assert solution.cost <= reference.cost
    assert solution.lower_bound <= solution.cost


def _brute_force_bins(sizes: list[int], capacity: int) -> int:
    """The optimum of a tiny 1-D bin packing by trying every assignment."""
    best = len(sizes)
    for assignment in itertools.product(range(len(sizes)), repeat=len(sizes)):
        loads = [0] * len(sizes)
        for size, b in zip(sizes, assignment, strict=True):
            loads[b] += size
        if max(loads) <= capacity:
            best = min(best, sum(1 for load in loads if load))
    return best


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 10), min_size=1, max_size=6), st.integers(10, 14))
def test_cpsat_equals_brute_force_on_tiny_instances(sizes, capacity):
    pool = Pool("bins", (capacity,), 1, 1, len(sizes))
    groups = tuple(Group(f"i{i}", (Option("bins", (s,), 1),)) for i, s in enumerate(sizes))
    solution = solve(Problem(("w",), (pool,), groups), time_limit_s=5, workers=1)
    assert solution.cost == _brute_force_bins(sizes, capacity)
    assert solution.status == "optimal" and solution.lower_bound == solution.cost


def _one_pool(groups, conflicts=(), **pool):
    settings_ = {"capacity": (100, 100), "gpus_per_node": 2, "node_cost": 10, "max_nodes": 4,
                 **pool}
    return Problem(DIMS, (Pool("p", **settings_),), tuple(groups), tuple(conflicts))


def test_capacity_in_every_dimension():
    groups = [Group("mem", (Option("p", (60, 10), 2),)), Group("cpu", (Option("p", (10, 60), 2),))]
    solution = solve(_one_pool(groups))
    assert violations(_one_pool(groups), solution) == []
    assert len(solution.gpus("p")) == 2  # one mem-heavy and one cpu-heavy per GPU


def test_whole_gpus_on_one_node():
    groups = [Group("big", (Option("p", (0, 0), 2, whole_gpus=2),)),
              Group("small", (Option("p", (10, 10), 1),))]
    problem = _one_pool(groups, gpus_per_node=4)
    solution = solve(problem)
    big = [p for p in solution.placements if p.group == "big"]
    assert all(len(p.gpus) == 2 for p in big)
    assert len({g for p in big for g in p.gpus}) == 4  # no GPU shared between replicas
    assert solution.cost == 20  # 4 whole GPUs fill one node; the small replica needs another
    assert violations(problem, solution) == []


def test_spread_limits_replicas_per_node():
    problem = _one_pool([Group("m", (Option("p", (10, 10), 4, max_per_node=2),))])
    solution = solve(problem)
    assert len(solution.nodes("p")) == 2


@pytest.mark.parametrize("scope, nodes", [("gpu", 1), ("node", 2)])
def test_conflicts_keep_classes_apart(scope, nodes):
    groups = [Group("a", (Option("p", (10, 10), 1),), classes=frozenset({"x"})),
              Group("b", (Option("p", (10, 10), 1),), classes=frozenset({"y"}))]
    problem = _one_pool(groups, conflicts=[Conflict("xy", "x", "y", scope)])
    solution = solve(problem)
    gpus = {p.group: (p.node, p.gpus) for p in solution.placements}
    assert gpus["a"] != gpus["b"]
    assert len(solution.nodes("p")) == nodes


def test_mig_layouts_and_slices():
    slices = (SliceType("small", (10, 150, 1)), SliceType("large", (40, 600, 1)))
    pool = Pool("mig", (80, 1000, 7), 1, 5, 3, mode="mig", slice_types=slices,
                mig_layouts=((7, 0), (3, 1), (0, 2)))
    groups = (Group("tiny", (Option("mig", (8, 100, 1), 3),)),
              Group("big", (Option("mig", (30, 500, 1), 1),)))
    problem = Problem(("memory", "compute", "replicas"), (pool,), groups)
    solution = solve(problem)
    assert violations(problem, solution) == []
    assert solution.cost == 5
    assert list(solution.mig_layouts.values()) == [1]
    assert sorted(p.slice for p in solution.placements) == ["large", "small", "small", "small"]


def test_cheaper_pool_chosen_when_either_admits():
    pools = (Pool("dear", (100,), 1, 9, 3), Pool("cheap", (100,), 1, 2, 3))
    problem = Problem(("w",), pools, (Group("m", (Option("dear", (50,), 2),
                                                  Option("cheap", (50,), 2))),))
    solution = solve(problem)
    assert {p.pool for p in solution.placements} == {"cheap"} and solution.cost == 2


def test_lower_priorities_left_unplaced_first():
    groups = [Group("low", (Option("p", (60, 10), 2),), priority=1, optional=True),
              Group("high", (Option("p", (60, 10), 2),), priority=9, optional=True)]
    problem = _one_pool(groups, gpus_per_node=1, max_nodes=2)
    solution = solve(problem)
    assert list(solution.unplaced) == ["low"]
    assert "no room for 2 replicas within 2 nodes" in solution.unplaced["low"]


def test_too_large_item_unplaced_with_reason():
    problem = _one_pool([Group("huge", (Option("p", (150, 10), 1),), optional=True)])
    solution = solve(problem)
    assert solution.unplaced == {"huge": "p: one replica (memory 150, compute 10) is larger "
                                         "than a GPU or slice"}


def test_infeasible_mandatory_groups_are_explained():
    groups = [Group("a", (Option("p", (60, 10), 4),), classes=frozenset({"x"})),
              Group("b", (Option("p", (30, 10), 1),), classes=frozenset({"y"}))]
    problem = _one_pool(groups, conflicts=[Conflict("xy", "x", "y", "node")], gpus_per_node=2,
                        max_nodes=2)
    with pytest.raises(InfeasibleError) as info:
        solve(problem)
    assert info.value.reasons == ["these cannot all hold: pool p may use at most 2 nodes, "
                                  "conflict rule xy; with a, b placed"]


def test_base_keeps_replicas_unless_moving_saves():
    groups = [Group(f"m{i}", (Option("p", (30, 10), 1),)) for i in range(3)]
    problem = _one_pool(groups, gpus_per_node=1, max_nodes=4)
    first = solve(problem, seed=3)
    moved_nodes = {p.group: 3 - p.node for p in first.placements}  # same packing, other ids
    base = type(first)("greedy", 0, 0, tuple(
        type(p)(p.group, p.replica, p.pool, moved_nodes[p.group], p.gpus)
        for p in first.placements))
    again = solve(problem, base=base)
    assert again.moved == 0 and again.cost == first.cost
    assert {p.group: p.node for p in again.placements} == moved_nodes


def test_same_seed_same_plan():
    groups = [Group(f"m{i}", (Option("p", (7 * i % 50 + 10, 13 * i % 40 + 5), 2),))
              for i in range(12)]
    problem = _one_pool(groups, max_nodes=8)
    assert solve(problem, seed=7).placements == solve(problem, seed=7).placements


@pytest.mark.skipif(not SHARED.exists(), reason="benchmark data not present")
@pytest.mark.parametrize("name, optimum", [("falkenauer_u/Falkenauer_u120_00", 48),
                                           ("falkenauer_t/Falkenauer_t60_00", 20)])
def test_known_bpplib_optima(name, optimum):
    problem = read_bpp(SHARED / "benchmarks" / "bpplib" / f"{name}.txt")
    solution = solve(problem, time_limit_s=10)
    assert solution.cost == optimum and solution.status == "optimal"
    assert violations(problem, solution) == []


@pytest.mark.skipif(not SHARED.exists(), reason="benchmark data not present")
def test_vbp_reader_and_known_optimum():
    path = SHARED / "benchmarks" / "vbp" / "panigrahy_d3" / "class1_20_3_0.vbp"
    problem = read_vbp(path)
    assert len(problem.dimensions) == 3
    assert solve(problem, time_limit_s=10).cost == 6


@pytest.mark.skipif(not SHARED.exists(), reason="benchmark data not present")
@pytest.mark.parametrize("seconds", [0.05, 0.3, 5.0])
def test_column_generation_bound_holds_when_cut_short(seconds):
    # Stopped early, the bound comes from Farley's ratio over the pricing's proven maximum,
    # never from a pattern it merely found.
    problem = read_vbp(SHARED / "benchmarks" / "vbp" / "panigrahy_d3" / "class6_60_3_0.vbp")
    sizes = [g.options[0].size for g in problem.groups]
    demand = [g.options[0].count for g in problem.groups]
    start = [tuple(int(j == i) for j in range(len(sizes))) for i in range(len(sizes))]
    columns = generate_columns(problem.pools[0].capacity, sizes, demand, start,
                               time.perf_counter() + seconds)
    assert columns.lower_bound <= 27  # the known optimum


def test_bpp_reader_handles_crlf(tmp_path: Path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"3\r\n10\r\n5\r\n5\r\n4\r\n")
    problem = read_bpp(path)
    assert [(g.options[0].size, g.options[0].count) for g in problem.groups] == [((5,), 2),
                                                                                 ((4,), 1)]


def test_bound_holds_for_replicas_heavy_in_different_dimensions():
    # One replica is memory-heavy, the other compute-heavy: together they fill one GPU, so no
    # bound may charge each its larger share (0.6 + 0.6 of a GPU).
    pools = (Pool("a", (100, 100), 1, 10, 4), Pool("b", (100, 100), 1, 100, 4))
    groups = (Group("memory-heavy", (Option("a", (60, 10), 1), Option("b", (60, 10), 1))),
              Group("compute-heavy", (Option("a", (10, 60), 1), Option("b", (10, 60), 1))))
    problem = Problem(DIMS, pools, groups)
    assert cost_bound(problem, list(groups)) <= 10
    solution = solve(problem, time_limit_s=5, workers=1)
    assert (solution.cost, solution.lower_bound, solution.status) == (10, 10, "optimal")


def test_mig_bound_counts_what_a_layout_really_holds():
    # Three small and two medium slices fit one GPU (compute 3 x 114 + 2 x 228 = 798 of 800),
    # although the medium kind alone fits only three to a GPU.
    slices = (SliceType("1g", (10, 114, 1)), SliceType("2g", (20, 228, 1)))
    pool = Pool("mig", (80, 800, 7), 1, 5, 3, mode="mig", slice_types=slices,
                mig_layouts=((7, 0), (3, 2), (0, 3)))
    groups = (Group("small", (Option("mig", (8, 100, 1), 3, slice="1g"),)),
              Group("medium", (Option("mig", (15, 200, 1), 2, slice="2g"),)))
    problem = Problem(("memory", "compute", "replicas"), (pool,), groups)
    options = [g.options[0] for g in groups]
    assert shared_gpus_bound(pool, options) == 1
    solution = solve(problem, time_limit_s=5, workers=1)
    assert (solution.cost, solution.lower_bound, solution.status) == (5, 5, "optimal")
