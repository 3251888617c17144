"""Pricing models: spot and committed rates next to list prices, the spot interruption policy,
the capacity type in the NodePools, and list against effective cost in the FOCUS report."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from planner.pipeline import SolverSettings, make_plan
from planner.planfile import load_plan
from planner.registry.loader import load_registry
from planner.registry.locate import write_demo
from reports.focus import render_cost_csv
from reports.manifests import render_manifests
from tests.conftest import edit_yaml
from tests.consumers import WORKLOAD_KINDS, pod_template

#: g4dn.12xlarge on spot at 40% of its 3.912 USD/h list price; g6.12xlarge under a savings
#: plan at 70% of its 4.6016 USD/h.
SPOT_T4 = round(3.912 * 0.4, 4)
COMMITTED_L4 = round(4.6016 * 0.7, 4)


def write_discounted_demo(root: Path) -> Path:
    """The demo with its batch pool on spot and its shared L4 pool under a savings plan."""
    write_demo(root)

    def discount(cluster: dict) -> None:
        pools = {p["name"]: p for p in cluster["pools"]}
        pools["batch-t4"].pop("spot")  # the whole pool on spot instead of its spot offer
        pools["batch-t4"].update(capacity_type="spot", price_per_node_hour=SPOT_T4,
                                 list_price_per_node_hour=3.912)
        pools["shared-l4"].update(price_per_node_hour=COMMITTED_L4,
                                  list_price_per_node_hour=4.6016)

    edit_yaml(root / "cluster.yaml", discount)
    return root


@pytest.fixture(scope="module")
def discounted(tmp_path_factory):
    fleet = load_registry(write_discounted_demo(tmp_path_factory.mktemp("d") / "registry"))
    return fleet, make_plan(fleet, SolverSettings(method="greedy"))


def test_list_cost_exceeds_effective_cost_where_a_discount_applies(discounted):
    _, plan = discounted
    rows = list(csv.DictReader(io.StringIO(render_cost_csv(plan, "2026-12"))))
    by_pool: dict[str, list[dict]] = {}
    for row in rows:
        by_pool.setdefault(row["x_Pool"], []).append(row)
    for pool, ratio in (("batch-t4", Decimal("3.912") / Decimal(str(SPOT_T4))),
                        ("shared-l4", Decimal("4.6016") / Decimal(str(COMMITTED_L4)))):
        for row in by_pool[pool]:
            effective, listed = Decimal(row["EffectiveCost"]), Decimal(row["ListCost"])
            assert listed > effective
            assert abs(listed - effective * ratio) <= Decimal("0.01")
            assert row["ContractedCost"] == row["EffectiveCost"]
    for row in by_pool["dedicated-h100"]:
        assert row["ListCost"] == row["EffectiveCost"]


def test_node_pools_carry_the_capacity_type(discounted):
    _, plan = discounted
    documents = [d for text in render_manifests(plan).values()
                 for d in yaml.safe_load_all(text) if d and d["kind"] == "NodePool"]
    capacity = {d["metadata"]["name"]: next(
        r["values"] for r in d["spec"]["template"]["spec"]["requirements"]
        if r["key"] == "karpenter.sh/capacity-type") for d in documents}
    assert capacity["batch-t4"] == ["spot"]
    assert capacity["shared-l4"] == ["on-demand"]


def test_only_batch_and_experimental_models_run_on_spot(registry: Path):
    """With the shared L4 pool on spot, its production and internal models find no node."""
    edit_yaml(registry / "cluster.yaml", lambda d: next(
        p for p in d["pools"] if p["name"] == "shared-l4").update(capacity_type="spot"))
    fleet = load_registry(registry)
    plan = make_plan(fleet, SolverSettings(method="greedy"))
    assert not any(m.pool == "shared-l4" for m in plan.models)
    autocomplete = next(u for u in plan.unplaced if u.name == "autocomplete")
    assert ("shared-l4: only spot nodes, which the cloud may reclaim; production models may "
            "not use them (policy spot_priorities: batch, experimental)") in autocomplete.reasons


def test_a_spot_shape_is_offered_to_interruptible_models_only(registry: Path):
    """A 1-GPU spot shape next to the shared pool's g6.12xlarge, with internal models allowed
    on spot: the engine offers it to internal models and never to production ones."""
    from planner.demand.derive import derive
    from planner.demand.to_engine import build_problem

    def add(cluster: dict) -> None:
        cluster["instance_types"]["g6.4xlarge"] = {
            "cpu_milli": 16000, "memory_mib": 65536,
            "reserved": {"cpu_milli": 360, "memory_mib": 6993}}
        next(p for p in cluster["pools"] if p["name"] == "shared-l4")["other_shapes"] = [
            {"instance_type": "g6.4xlarge", "gpus_per_node": 1, "price_per_node_hour": 0.4,
             "capacity_type": "spot", "list_price_per_node_hour": 1.3232}]
    edit_yaml(registry / "cluster.yaml", add)
    edit_yaml(registry / "policy.yaml", lambda d: d.update(
        spot_priorities=["internal", "batch", "experimental"]))
    fleet = load_registry(registry)
    problem = build_problem(fleet, derive(fleet)[0])
    pools = {g.name: [o.pool for o in g.options] for g in problem.groups}
    assert fleet.models["sentiment-analyzer"].priority == "internal"
    assert pools["sentiment-analyzer"] == ["shared-l4/g6.12xlarge", "shared-l4/g6.4xlarge"]
    assert fleet.models["autocomplete"].priority == "production"
    assert pools["autocomplete"] == ["shared-l4/g6.12xlarge"]


def test_pods_select_the_capacity_type_of_their_nodes_where_both_are_offered(tmp_path: Path):
    """The batch pool with a cheap 1-GPU spot shape besides its on-demand g4dn.12xlarge: a
    NodePool per capacity type bought; the models the plan puts on on-demand nodes only
    select on-demand, the others nothing (the spot NodePool's weight takes them)."""
    root = tmp_path / "registry"
    write_demo(root)

    def add(cluster: dict) -> None:
        cluster["instance_types"]["g4dn.4xlarge"] = {
            "cpu_milli": 16000, "memory_mib": 65536,
            "reserved": {"cpu_milli": 360, "memory_mib": 6993}}
        batch = next(p for p in cluster["pools"] if p["name"] == "batch-t4")
        batch.pop("spot")  # the demo's spot offer: a spot shape of another type instead
        batch["other_shapes"] = [
            {"instance_type": "g4dn.4xlarge", "gpus_per_node": 1, "price_per_node_hour": 0.5,
             "capacity_type": "spot", "max_nodes": 2}]
    edit_yaml(root / "cluster.yaml", add)
    plan = make_plan(load_registry(root), SolverSettings(seed=0, workers=1))
    pool = next(p for p in plan.pools if p.name == "batch-t4")
    kinds: dict[str, set[str]] = {}
    for node in pool.nodes:
        for gpu in node.gpus:
            for slot in gpu.replicas:
                kinds.setdefault(slot.model, set()).add(pool.shape(node).capacity_type)
    documents = [d for text in render_manifests(plan).values()
                 for d in yaml.safe_load_all(text) if d]
    assert sorted({pool.shape(n).capacity_type for n in pool.nodes}) == [
        "on-demand", "spot"]  # two spot nodes at 0.5, the rest on a 4-GPU on-demand one
    types = _capacity_types(documents)
    assert (types["batch-t4"], types["batch-t4-spot"]) == (
        (["on-demand"], ["g4dn.12xlarge"], None), (["spot"], ["g4dn.4xlarge"], 10))
    templates = {d["metadata"]["name"]: pod_template(d)[0] for d in documents
                 if d["kind"] in WORKLOAD_KINDS}  # a batch model's CronJob too
    for model, used in kinds.items():
        selector = templates[model]["spec"]["nodeSelector"]
        assert selector.get("karpenter.sh/capacity-type") == (
            "on-demand" if used == {"on-demand"} else None)


def _capacity_types(documents: list[dict]) -> dict[str, tuple[list[str], list[str], int | None]]:
    """Each NodePool's capacity types, instance types and weight."""
    result = {}
    for d in documents:
        if d["kind"] != "NodePool":
            continue
        requirements = {r["key"]: r["values"]
                        for r in d["spec"]["template"]["spec"]["requirements"]}
        result[d["metadata"]["name"]] = (requirements["karpenter.sh/capacity-type"],
                                         requirements["node.kubernetes.io/instance-type"],
                                         d["spec"].get("weight"))
    return result


#: g6.12xlarge on spot at 35% of its 4.6016 USD/h on-demand price.
SPOT_L4 = round(4.6016 * 0.35, 4)
#: Demo models made internal, which the spot policy below lets run on spot.
MADE_INTERNAL = ("autocomplete", "ctr-ranker", "candidate-retriever")


def write_spot_offer_demo(root: Path) -> Path:
    """The demo with its shared L4 pool's g6.12xlarge offered as spot too (two nodes at most),
    internal models allowed on spot, and three production models of that pool made internal:
    the plan buys two on-demand and two spot nodes of the one instance type."""
    write_demo(root)
    edit_yaml(root / "cluster.yaml", lambda d: next(
        p for p in d["pools"] if p["name"] == "shared-l4").update(
            spot={"price_per_node_hour": SPOT_L4, "max_nodes": 2}))
    edit_yaml(root / "policy.yaml", lambda d: d.update(
        spot_priorities=["internal", "batch", "experimental"]))
    for model in MADE_INTERNAL:
        edit_yaml(root / "models" / f"{model}.yaml", lambda d: d.update(priority="internal"))
    return root


@pytest.fixture(scope="module")
def spot_offer(tmp_path_factory):
    fleet = load_registry(write_spot_offer_demo(tmp_path_factory.mktemp("s") / "registry"))
    return fleet, make_plan(fleet, SolverSettings(seed=0, workers=1, deterministic=True))


def _capacity_of(pool) -> dict[str, set[str]]:
    """The capacity types each model's replicas run on."""
    kinds: dict[str, set[str]] = {}
    for node in pool.nodes:
        for gpu in node.gpus:
            for slot in gpu.replicas:
                kinds.setdefault(slot.model, set()).add(pool.shape(node).capacity_type)
    return kinds


def test_one_pool_buys_both_capacity_types_of_one_instance_type(spot_offer):
    """The engine chooses the mix: 2 on-demand nodes for the production models, 2 spot ones
    for internal ones, 12.4244 USD/h against 18.4064 on-demand alone (4 nodes either way)."""
    fleet, plan = spot_offer
    assert plan.solver.status == "optimal"
    pool = next(p for p in plan.pools if p.name == "shared-l4")
    assert [(s.label, s.nodes, s.price_per_node_hour, s.list_price_per_node_hour)
            for s in pool.shapes] == [("g6.12xlarge", 2, 4.6016, None),
                                      ("g6.12xlarge spot", 2, SPOT_L4, 4.6016)]
    assert pool.cost_per_hour == round(2 * 4.6016 + 2 * SPOT_L4, 6) == 12.4244
    assert pool.list_cost_per_hour == round(4 * 4.6016, 6)
    assert {n.capacity_type for n in pool.nodes} == {"on-demand", "spot"}
    kinds = _capacity_of(pool)
    for model, used in kinds.items():
        if fleet.models[model].priority not in fleet.policy.spot_priorities:
            assert used == {"on-demand"}, model  # the interruption policy, in the packing
    assert any(used == {"spot"} for used in kinds.values())


def test_each_capacity_type_has_its_nodepool_and_pods_that_may_not_be_interrupted_select_on_demand(
        spot_offer):
    _, plan = spot_offer
    documents = [d for text in render_manifests(plan).values()
                 for d in yaml.safe_load_all(text) if d]
    types = _capacity_types(documents)
    assert types["shared-l4"] == (["on-demand"], ["g6.12xlarge"], None)
    assert types["shared-l4-spot"] == (["spot"], ["g6.12xlarge"], 10)
    limits = {d["metadata"]["name"]: d["spec"]["limits"] for d in documents
              if d["kind"] == "NodePool"}
    assert limits["shared-l4"] == {"nodes": "12", "nvidia.com/gpu": "48"}
    assert limits["shared-l4-spot"] == {"nodes": "2", "nvidia.com/gpu": "8"}
    [overlay] = [d for d in documents if d["kind"] == "NodeOverlay"
                 and d["metadata"]["name"].startswith("shared-l4")]
    assert {"key": "karpenter.sh/nodepool", "operator": "In",
            "values": ["shared-l4", "shared-l4-spot"]} in overlay["spec"]["requirements"]
    pool = next(p for p in plan.pools if p.name == "shared-l4")
    deployments = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["nodeSelector"]
                   for d in documents if d["kind"] == "Deployment"}
    models = {m.name: m for m in plan.models}
    for model, used in _capacity_of(pool).items():
        selected = deployments[model].get("karpenter.sh/capacity-type")
        if models[model].priority not in ("internal", "batch", "experimental"):
            assert selected == "on-demand", model  # the interruption policy, in the cluster
        assert selected == ("on-demand" if used == {"on-demand"} else None), model


def test_planner_simulate_places_every_pod_of_the_split_pool_as_planned(tmp_path: Path, cli):
    """`planner simulate` replays the written manifests: every pod lands on its planned node
    (spot pods on the spot NodePool's nodes) through the scheduler's filters, exit 0."""
    import json

    registry = write_spot_offer_demo(tmp_path / "registry")
    out = tmp_path / "out"
    result = cli("plan", "--registry", registry, "--deterministic", "--out", out)
    assert result.exit_code == 0, result.stderr
    result = cli("simulate", "--plan", out / "plan.yaml", "--no-node-loss", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    plan = load_plan(out / "plan.yaml")
    assert data["runs"] is True
    servers = sum(c.servers for p in plan.pools for c in p.caches if c.reserved and c.placed
                  and c.server is not None)  # a lazy cache's servers hold its members
    assert len(data["pods"]) == sum(m.replicas for m in plan.models
                                    if m.cache is None) + servers
    assert [x["pod"] for x in data["pods"] if x["node"] != x["planned_node"]] == []
    pool = next(p for p in plan.pools if p.name == "shared-l4")
    spot_nodes = {n.name for n in pool.nodes if n.capacity_type == "spot"}
    assert len(spot_nodes) == 2
    assert {x["node"] for x in data["pods"]} >= spot_nodes


def test_focus_list_cost_follows_each_models_capacity_type(spot_offer):
    """On-demand replicas pay list, spot ones 35% of it: a model's ListCost over its
    EffectiveCost is that of the nodes it runs on, and the pool's rows add up to its list
    cost."""
    _, plan = spot_offer
    pool = next(p for p in plan.pools if p.name == "shared-l4")
    kinds = _capacity_of(pool)
    rows = [r for r in csv.DictReader(io.StringIO(render_cost_csv(plan, "2026-12")))
            if r["x_Pool"] == "shared-l4"]
    spot_ratio = Decimal("4.6016") / Decimal(str(SPOT_L4))
    for row in rows:
        listed, effective = Decimal(row["ListCost"]), Decimal(row["EffectiveCost"])
        used = kinds.get(row["x_Model"]) if row["x_Model"] else None
        if used == {"on-demand"}:
            assert listed == effective, row["x_Model"]
        elif used == {"spot"}:
            assert abs(listed - effective * spot_ratio) <= Decimal("0.01"), row["x_Model"]
        else:  # both, or the idle line
            assert effective <= listed <= effective * spot_ratio + Decimal("0.01")
    hours = Decimal(31 * 24)
    assert abs(sum(Decimal(r["ListCost"]) for r in rows)
               - Decimal("4") * Decimal("4.6016") * hours) <= Decimal("0.01") * len(rows)


@pytest.mark.parametrize("where, spot, message", [
    ("batch-t4", {"price_per_node_hour": 1.0}, "this shape is spot already"),
    ("mig-a100", {"price_per_node_hour": 10.0}, "make its spot capacity a pool of its own"),
    ("shared-l4", {"price_per_node_hour": 5.0}, "spot.price_per_node_hour is above the "
                                                "on-demand list price"),
])
def test_a_spot_offer_that_cannot_be_is_refused(registry: Path, cli, where, spot, message):
    def change(cluster: dict) -> None:
        pool = next(p for p in cluster["pools"] if p["name"] == where)
        if where == "batch-t4":
            pool["capacity_type"] = "spot"
        pool["spot"] = spot
    edit_yaml(registry / "cluster.yaml", change)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert "cluster.yaml:" in result.stderr and message in result.stderr


def test_a_list_price_below_the_price_is_refused(registry: Path, cli):
    edit_yaml(registry / "cluster.yaml", lambda d: d["pools"][0].update(
        list_price_per_node_hour=1.0))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert "list_price_per_node_hour is below price_per_node_hour" in result.stderr
