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
from planner.registry.loader import load_registry
from planner.registry.locate import write_demo
from reports.focus import render_cost_csv
from reports.manifests import render_manifests
from tests.conftest import edit_yaml

#: g4dn.12xlarge on spot at 40% of its 3.912 USD/h list price; g6.12xlarge under a savings
#: plan at 70% of its 4.6016 USD/h.
SPOT_T4 = round(3.912 * 0.4, 4)
COMMITTED_L4 = round(4.6016 * 0.7, 4)


def write_discounted_demo(root: Path) -> Path:
    """The demo with its batch pool on spot and its shared L4 pool under a savings plan."""
    write_demo(root)

    def discount(cluster: dict) -> None:
        pools = {p["name"]: p for p in cluster["pools"]}
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
    """The batch pool with a cheap 1-GPU spot shape besides its on-demand g4dn.12xlarge: the
    NodePool offers both capacity types, and each model's pods select the one the plan put
    them on."""
    root = tmp_path / "registry"
    write_demo(root)

    def add(cluster: dict) -> None:
        cluster["instance_types"]["g4dn.4xlarge"] = {
            "cpu_milli": 16000, "memory_mib": 65536,
            "reserved": {"cpu_milli": 360, "memory_mib": 6993}}
        next(p for p in cluster["pools"] if p["name"] == "batch-t4")["other_shapes"] = [
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
    [node_pool] = [d for d in documents if d["kind"] == "NodePool"
                   and d["metadata"]["name"] == "batch-t4"]
    offered = next(r["values"] for r in node_pool["spec"]["template"]["spec"]["requirements"]
                   if r["key"] == "karpenter.sh/capacity-type")
    assert offered == sorted({pool.shape(n).capacity_type for n in pool.nodes}) == [
        "on-demand", "spot"]  # two spot nodes at 0.5, the rest on a 4-GPU on-demand one
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    for model, used in kinds.items():
        selector = deployments[model]["spec"]["template"]["spec"]["nodeSelector"]
        if len(used) == 1:
            assert selector["karpenter.sh/capacity-type"] == used.pop()
        else:
            assert "karpenter.sh/capacity-type" not in selector


def test_a_list_price_below_the_price_is_refused(registry: Path, cli):
    edit_yaml(registry / "cluster.yaml", lambda d: d["pools"][0].update(
        list_price_per_node_hour=1.0))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert "list_price_per_node_hour is below price_per_node_hour" in result.stderr
