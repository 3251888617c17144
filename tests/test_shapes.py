"""Node shapes: a pool that may buy nodes of several instance types, the engine choosing how many
of each, and the plan, costs and NodePools that follow."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from planner.pipeline import SolverSettings, make_plan
from planner.registry.loader import load_registry as load_fleet
from solvers.bounds import cost_bound
from solvers.engine import solve
from solvers.problem import Group, Option, Placement, Pool, Problem, Solution
from solvers.verify import violations
from tests.conftest import edit_yaml
from tests.test_consumers import with_small_l4_nodes

BIG = Pool("p/big", (1000,), gpus_per_node=4, node_cost=46016, max_nodes=3, family="p")
SMALL = Pool("p/small", (1000,), gpus_per_node=1, node_cost=13232, max_nodes=8, family="p")


def _shaped_problem(pools: tuple[Pool, ...] = (BIG, SMALL)) -> Problem:
    """Five replicas of `c` and three of `a`, each over half a GPU, so eight GPUs; `a` at most
    one replica per node, so at least three nodes. By hand: one 4-GPU node (11,504 a GPU) and
    four 1-GPU nodes (13,232) cost 98,944, against 105,264 for two 4-GPU and one 1-GPU node
    and 105,856 for eight 1-GPU nodes; that needs `c` and `a` on both shapes."""
    c = Group("c", tuple(Option(p.name, (600,), 5) for p in pools))
    a = Group("a", tuple(Option(p.name, (600,), 3, max_per_node=1) for p in pools))
    return Problem(("compute",), pools, (c, a))


def test_replicas_spread_over_the_shapes_of_one_pool_at_the_hand_computed_cost():
    problem = _shaped_problem()
    solution = solve(problem, time_limit_s=10, workers=1)
    assert (solution.status, solution.cost, solution.lower_bound) == ("optimal", 98944, 98944)
    assert violations(problem, solution) == []
    pools = {(p.group, p.pool) for p in solution.placements}
    assert {pool for group, pool in pools if group == "c"} == {"p/big", "p/small"}
    assert len(solution.nodes("p/big")) == 1 and len(solution.nodes("p/small")) == 4


def test_without_a_family_each_group_keeps_to_one_shape_and_pays_more():
    problem = _shaped_problem((replace(BIG, family=""), replace(SMALL, family="")))
    solution = solve(problem, time_limit_s=10, workers=1)
    assert (solution.status, solution.cost) == ("optimal", 105856)


def test_the_lower_bound_holds_when_groups_split_over_shapes():
    # A bound that kept each group in one engine pool would prove 105,856, above the optimum.
    problem = _shaped_problem()
    assert 0 < cost_bound(problem, list(problem.groups)) <= 98944


def test_the_lower_bound_holds_when_a_group_needs_fewer_replicas_in_another_pool():
    """`c` needs one replica in pool `q` (a node of 50,000) but five on the shapes of `p`, so
    the bound must let it choose `q` at its own count. By hand: `c` in `q` and `a` on three
    1-GPU nodes (39,696) make 89,696, below the 98,944 of both in `p`."""
    other = Pool("q", (1000,), gpus_per_node=1, node_cost=50000, max_nodes=1)
    problem = _shaped_problem()
    c = Group("c", (*problem.groups[0].options, Option("q", (600,), 1)))
    problem = replace(problem, pools=(*problem.pools, other), groups=(c, problem.groups[1]))
    solution = solve(problem, time_limit_s=10, workers=1)
    assert violations(problem, solution) == []
    assert (solution.status, solution.cost) == ("optimal", 89696)
    assert 0 < cost_bound(problem, list(problem.groups)) <= 89696


def test_verify_accepts_a_split_within_a_family_only():
    problem = _shaped_problem()
    split = Solution("feasible", 46016 + 13232, 0, (
        *(Placement("c", r, "p/big", 0, (r,)) for r in range(4)),
        Placement("c", 4, "p/small", 0, (0,))), unplaced={"a": "left out"})
    problem = replace(problem, groups=(problem.groups[0], replace(problem.groups[1],
                                                                   optional=True)))
    assert violations(problem, split) == []
    apart = replace(problem, pools=(BIG, replace(SMALL, family="q")))
    assert violations(apart, split) == ["c: replicas in several pools ['p/big', 'p/small']"]


@pytest.fixture(scope="module")
def shaped_plans(tmp_path_factory):
    """The demo planned with and without a 1-GPU g6.4xlarge shape in its shared L4 pool,
    its lazy models in replicas of their own (a reserved cache is one item of their compute
    together, which changes the hand count below: `test_cache_server`)."""
    root = with_small_l4_nodes(tmp_path_factory.mktemp("shapes") / "registry")
    edit_yaml(root / "policy.yaml", lambda d: d.update(lazy_cache={"reserve": False}))
    settings = SolverSettings(seed=0, workers=1)
    with_shapes = make_plan(load_fleet(root), settings)
    edit_yaml(root / "cluster.yaml", lambda d: next(
        p for p in d["pools"] if p["name"] == "shared-l4").pop("other_shapes"))
    return with_shapes, make_plan(load_fleet(root), settings)


def test_the_demo_buys_small_nodes_where_they_are_cheaper(shaped_plans):
    """By hand: 14 of the shared pool's replicas need over 400 of a GPU's 800 usable compute
    milli, so no two share a GPU: 14 GPUs at least; `autocomplete`'s three replicas, one per
    node, need three nodes. Three g6.12xlarge (12 GPUs, 13.8048 USD/h) and two g6.4xlarge
    (2 x 1.3232) make 16.4512 USD/h; four g6.12xlarge, all the pool could buy before, 18.4064;
    two g6.12xlarge and six g6.4xlarge 17.1424."""
    with_shapes, without = shaped_plans
    assert with_shapes.solver.status == "optimal"
    shared = next(p for p in with_shapes.pools if p.name == "shared-l4")
    assert shared.cost_per_hour == pytest.approx(16.4512)
    assert {(s.instance_type, s.nodes) for s in shared.shapes} == {("g6.12xlarge", 3),
                                                                   ("g6.4xlarge", 2)}
    assert shared.gpu_count == 14
    assert [len(n.gpus) for n in shared.nodes if n.instance_type == "g6.4xlarge"] == [1, 1]
    before = next(p for p in without.pools if p.name == "shared-l4")
    assert before.cost_per_hour == pytest.approx(18.4064) and before.shapes == []
    assert with_shapes.summary.cost_per_hour == pytest.approx(
        without.summary.cost_per_hour - 18.4064 + 16.4512)
    # Every replica's cost, and the idle rest, add up to the nodes bought.
    paid = sum(m.cost_per_hour for m in with_shapes.models if m.pool == "shared-l4")
    assert paid + shared.idle_cost_per_hour == pytest.approx(16.4512, abs=1e-5)


def test_the_node_pool_lists_the_shapes_bought(shaped_plans, tmp_path):
    from reports.manifests import render_manifests

    with_shapes, _ = shaped_plans
    files = render_manifests(with_shapes)
    documents = [d for text in files.values() for d in yaml.safe_load_all(text) if d]
    [node_pool] = [d for d in documents if d["kind"] == "NodePool"
                   and d["metadata"]["name"] == "shared-l4"]
    [types] = [r["values"] for r in node_pool["spec"]["template"]["spec"]["requirements"]
               if r["key"] == "node.kubernetes.io/instance-type"]
    assert types == ["g6.12xlarge", "g6.4xlarge"]
    assert node_pool["spec"]["limits"] == {"nodes": "24", "nvidia.com/gpu": "60"}
    overlays = {d["metadata"]["name"]: d["spec"]["capacity"] for d in documents
                if d["kind"] == "NodeOverlay" and d["metadata"]["name"].startswith("shared-l4")}
    assert overlays == {"shared-l4-g6-12xlarge": {"nvidia.com/gpu.shared": "24"},
                        "shared-l4-g6-4xlarge": {"nvidia.com/gpu.shared": "6"}}


def test_an_earlier_plan_with_shapes_is_a_base_with_nothing_to_move(shaped_plans, tmp_path):
    with_shapes, _ = shaped_plans
    root = with_small_l4_nodes(tmp_path / "registry")
    edit_yaml(root / "policy.yaml", lambda d: d.update(lazy_cache={"reserve": False}))
    again = make_plan(load_fleet(root), SolverSettings(seed=0, workers=1), base=with_shapes)
    assert again.solver.moved_replicas == 0
    assert again.summary.cost_per_hour == pytest.approx(with_shapes.summary.cost_per_hour)


@pytest.mark.parametrize(("shape", "message"), [
    ({"instance_type": "g6.8xlarge", "gpus_per_node": 1, "price_per_node_hour": 2.0},
     "cluster.yaml:{line}: pools[0].other_shapes[0].instance_type: instance type 'g6.8xlarge' is "
     "not described"),
    ({"instance_type": "g6.12xlarge", "gpus_per_node": 4, "price_per_node_hour": 2.0},
     "cluster.yaml:{line}: pools[0].other_shapes[0].instance_type: instance type 'g6.12xlarge' is "
     "already a shape of pool 'shared-l4'; list each instance type once"),
])
def test_a_shape_must_be_a_described_instance_type_listed_once(registry: Path, cli, shape,
                                                                 message):
    edit_yaml(registry / "cluster.yaml", lambda d: d["pools"][0].update(other_shapes=[shape]))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    lines = (registry / "cluster.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "instance_type: g6." in text
                and i > next(j for j, t in enumerate(lines, 1) if "other_shapes" in t))
    assert message.format(line=line) in result.stderr


def test_a_mig_pool_has_one_shape(registry: Path, cli):
    def add(cluster: dict) -> None:
        pool = next(p for p in cluster["pools"] if p["sharing"] == "mig")
        pool["other_shapes"] = [{"instance_type": pool["instance_type"] + "x",
                                 "gpus_per_node": 8, "price_per_node_hour": 1.0}]
    edit_yaml(registry / "cluster.yaml", add)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert "other_shapes: a MIG pool has one node shape" in result.stderr


def test_the_shaped_demo_replays_as_planned_on_nodes_of_each_shape(shaped_plans):
    """`planner simulate`'s replay: each planned node as its shape makes it (a g6.4xlarge with
    one GPU and its own allocatable), every replica on its planned node, every rule held."""
    from planner.simulation.manifests import Manifests
    from planner.simulation.replay import PLACEMENT, REPLICAS, RUNS, replay
    from reports.manifests import render_manifests

    with_shapes, _ = shaped_plans
    simulation = replay(with_shapes, Manifests.of(render_manifests(with_shapes)))
    shared = next(p for p in with_shapes.pools if p.name == "shared-l4")
    for planned in shared.nodes:
        node = simulation.cluster.nodes[planned.name]
        shape = shared.shape(planned)
        assert len({d.gpu for d in node.devices}) == shape.gpus_per_node
        assert node.labels["node.kubernetes.io/instance-type"] == shape.instance_type
    small = next(n for n in shared.nodes if n.instance_type == "g6.4xlarge")
    assert simulation.cluster.nodes[small.name].allocatable["cpu"] == 16000 - 360
    assert [x.pod for x in simulation.landings if x.node != x.planned_node] == []
    for name in (RUNS, REPLICAS, PLACEMENT):
        assert next(r for r in simulation.rules if r.rule == name).holds is True
