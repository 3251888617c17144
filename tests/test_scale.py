"""Work that grows with a fleet's size, counted rather than timed: greedy's node checks grow
with the replicas placed, not replicas x nodes; building a CP-SAT model counts its terms on
the clock in use and stops at its deadline; the engine's budget covers the build; rendering
a plan works out each node's MIG layout once, not once per node per workload."""

from __future__ import annotations

import pytest

from bench.synthetic import generate_fleet
from planner.demand.derive import derive
from planner.demand.to_engine import build_problem
from solvers import cpsat, greedy
from solvers.clock import MODEL_TERM, SAT_SECOND, SOLVE_CALL, SOLVE_TERM, WorkClock, now, using
from solvers.engine import solve
from solvers.problem import Conflict, Group, Option, Pool, Problem, SliceType
from solvers.verify import violations

REPLICAS = 240


def _counting(monkeypatch) -> list[int]:
    """Counts of node checks (spread, room, conflicts) and of GPUs looked at one by one."""
    calls = [0, 0]
    admits, used = greedy._node_admits, greedy._Gpu.used

    def node_checked(state, node, group):
        calls[0] += 1
        return admits(state, node, group)

    def gpu_looked_at(gpu):
        calls[1] += 1
        return used.fget(gpu)

    monkeypatch.setattr(greedy, "_node_admits", node_checked)
    monkeypatch.setattr(greedy._Gpu, "used", property(gpu_looked_at))
    return calls


def _mig() -> Problem:
    """One 3g slice per replica, two per GPU, one GPU per node: 120 nodes."""
    pool = Pool("m", (80, 70), gpus_per_node=1, node_cost=5, max_nodes=REPLICAS, mode="mig",
                slice_types=(SliceType("1g", (10, 10)), SliceType("3g", (40, 35))),
                mig_layouts=((7, 0), (0, 2)))
    groups = tuple(Group(f"g{i}", (Option("m", (30, 30), 1),)) for i in range(REPLICAS))
    return Problem(("memory", "compute"), (pool,), groups)


def _whole() -> Problem:
    """Two-GPU replicas on four-GPU nodes: 120 nodes."""
    pool = Pool("w", (100, 100), gpus_per_node=4, node_cost=5, max_nodes=REPLICAS)
    groups = tuple(Group(f"g{i}", (Option("w", (50, 50), 1, whole_gpus=2),))
                   for i in range(REPLICAS))
    return Problem(("memory", "compute"), (pool,), groups)


def _conflicting() -> Problem:
    """Replicas of class x first, then of class y, which may not share a GPU with x: every
    GPU x half fills is closed to y."""
    pool = Pool("s", (100, 100), gpus_per_node=1, node_cost=5, max_nodes=REPLICAS)
    groups = tuple(Group(f"g{i:03d}", (Option("s", (60 if i < REPLICAS // 2 else 40, 10),
                                                1),), classes=frozenset(
        {"x" if i < REPLICAS // 2 else "y"})) for i in range(REPLICAS))
    return Problem(("memory", "compute"), (pool,), groups, (Conflict("xy", "x", "y", "gpu"),))


@pytest.mark.parametrize("make", [_mig, _whole, _conflicting], ids=["mig", "whole", "conflict"])
@pytest.mark.parametrize("strategy", ["first", "best"])
def test_greedy_checks_nodes_per_replica_not_per_node(monkeypatch, make, strategy):
    """A Python walk over every node for every replica would make about REPLICAS ** 2 / 4
    node checks or GPU looks (14,400 and more here); greedy looks at GPUs as numpy rows and
    checks only the nodes of GPUs with room."""
    problem = make()
    calls = _counting(monkeypatch)
    solution = greedy.greedy(problem, strategy)
    assert not solution.unplaced and violations(problem, solution) == []
    assert len({p.node for p in solution.placements}) >= REPLICAS // 2
    node_checks, gpu_looks = calls
    assert node_checks <= 2 * REPLICAS
    assert gpu_looks <= 8 * REPLICAS


def _fleet_problem(models: int) -> Problem:
    fleet = generate_fleet(models, 7)
    return build_problem(fleet, derive(fleet)[0])


def test_building_a_model_counts_its_terms_and_stops_at_its_deadline():
    problem = _fleet_problem(60)
    nodes = {p.name: min(p.max_nodes, 6) for p in problem.pools}
    term = MODEL_TERM * SAT_SECOND  # counted seconds per term written
    with using(WorkClock()):
        model = cpsat.build(problem, nodes, deadline=1e9)
        written = len(model.cp.proto.variables) + len(model.cp.proto.constraints)
        assert now() == pytest.approx(term * written)
    with using(WorkClock()):
        deadline = term * written / 4
        with pytest.raises(cpsat.OutOfTime):
            cpsat.build(problem, nodes, deadline=deadline)
        # It stopped at the first check where the model so far could no longer be loaded
        # into CP-SAT by the deadline (SOLVE_CALL + SOLVE_TERM per term on this clock), well
        # short of the whole model.
        assert 0 < now() < term * written / 2
        terms = now() / term  # what the build had written when it stopped
        assert now() + (SOLVE_CALL + SOLVE_TERM * terms) * SAT_SECOND > deadline
    with using(WorkClock()):
        cpsat.build(problem, nodes)  # no deadline (the explanation's models): nothing counted
        assert now() == 0


def test_the_budget_covers_building_the_model():
    """A budget that building the joint model would mostly use: CP-SAT gets what is left, so
    the counted seconds stay within the budget and the margin of one step."""
    problem = _fleet_problem(300)
    budget = 0.3
    solution = solve(problem, time_limit_s=budget, seed=0, deterministic=True)
    assert 0 < solution.seconds <= budget * 1.1
    assert violations(problem, solution) == []


def _fleet_plan(models: int):
    from bench.synthetic import generate_fleet
    from planner.pipeline import SolverSettings, make_plan

    return make_plan(generate_fleet(models, 7), SolverSettings(method="greedy"))


def test_rendering_works_out_each_mig_layout_once(monkeypatch):
    """Every capped workload's spread rule needs its pool's node ceiling, which lists the MIG
    pool's NodePools, one per node layout: each node's layout is worked out once per pool
    and each layout's device entries once per listing, not every node's once per node asked
    about (nodes squared per workload: a 5,000-model fleet's manifests took minutes)."""
    from planner.planfile import NodePlan
    from reports import gpu_operator, render_all

    plan = _fleet_plan(300)
    counts = {"entries": 0, "layouts": 0}
    entries, layout = gpu_operator._node_layout, NodePlan.mig_layout.fget

    def counted_entries(node):
        counts["entries"] += 1
        return entries(node)

    def counted_layout(node):
        counts["layouts"] += 1
        return layout(node)

    monkeypatch.setattr(gpu_operator, "_node_layout", counted_entries)
    monkeypatch.setattr(NodePlan, "mig_layout", property(counted_layout))
    render_all(plan)
    worked_out = dict(counts)
    mig = [p for p in plan.pools if p.sharing == "mig"]
    layouts = sum(len(gpu_operator.mig_node_layouts(p)) for p in mig)
    nodes = sum(len(p.nodes) for p in mig)
    assert layouts > 1 and nodes > layouts
    counts = worked_out
    # each node's layout once for the grouping, and once more for each device listing made
    assert 0 < counts["layouts"] - counts["entries"] <= nodes
    assert 0 < counts["entries"] <= layouts * (len(plan.models) + len(plan.pools))


def test_a_changed_copy_works_out_its_lookups_again():
    """The lookups a plan keeps once worked out (models by name, nodes by MIG layout) are not
    carried into a copy whose fields changed: they would describe the original."""
    plan = _fleet_plan(300)
    first = plan.models[0]
    assert plan.model(first.name) is first
    renamed = plan.model_copy(update={
        "models": [first.model_copy(update={"name": "renamed"}), *plan.models[1:]]})
    assert renamed.model(first.name) is None
    assert renamed.model("renamed") is not None
    pool = next(p for p in plan.pools if p.sharing == "mig" and len(p.nodes) > 1)
    assert sum(map(len, pool.nodes_by_mig_layout.values())) == len(pool.nodes)
    one = pool.model_copy(update={"nodes": pool.nodes[:1]})
    assert sum(map(len, one.nodes_by_mig_layout.values())) == 1
    assert list(one.mig_layout_numbers) == [pool.nodes[0].name]
