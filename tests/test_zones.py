"""Zones: a pool that lists `zones` gets each planned node placed in one, so that every
model's replicas hold `spread.zone_max_skew` as the scheduler computes skew over the zones of
the nodes its pods may select; a NodePool per zone holds each zone's nodes; `planner
simulate` then puts every pod on its planned node, and a manifest that breaks the zone rule
is caught."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from planner.assembly.zones import eligible_nodes, skew_broken
from planner.planfile import Plan
from planner.registry.locate import write_demo
from planner.simulation.manifests import Manifests
from planner.simulation.replay import ZONE_SPREAD, replay
from planner.simulation.replay import ZONES as ZONES_AS_PLANNED
from reports.gpu_operator import node_pool_of
from reports.karpenter import ZONE_LABEL, node_ceiling
from tests.conftest import edit_yaml
from tests.test_simulate import _as_planned, _every_rule, _mutate, _plan, _rule, _simulate

ZONES = ["zone-a", "zone-b", "zone-c"]


def _in_zones(root: Path) -> Path:
    edit_yaml(root / "cluster.yaml",
              lambda d: [p.update(zones=list(ZONES)) for p in d["pools"]])
    return root


@pytest.fixture(scope="module")
def every_rule(tmp_path_factory) -> tuple[Plan, Path]:
    tmp = tmp_path_factory.mktemp("every-rule-zones")
    return _plan(["plan", "--registry", str(_in_zones(_every_rule(tmp / "registry"))),
                  "--solver", "greedy"], tmp / "out")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Plan, Path]:
    tmp = tmp_path_factory.mktemp("demo-zones")
    root = tmp / "registry"
    write_demo(root)
    edit_yaml(root / "policy.yaml", lambda d: d["spread"].update(zone_max_skew=1))
    return _plan(["plan", "--registry", str(_in_zones(root)), "--deterministic"], tmp / "out")


def _per_zone(plan: Plan) -> dict[str, tuple[Counter[str], set[str]]]:
    """Each zone-spread model's replicas per zone and the zones of its eligible nodes."""
    found = {}
    for pool in plan.pools:
        zone = {n.index: n.zone for n in pool.nodes}
        for model in plan.models:
            if model.pool != pool.name or model.zone_max_skew is None:
                continue
            counts = Counter(zone[n.index] for n in pool.nodes for name, _ in n.replicas()
                             if name == model.name)
            found[model.name] = (counts, {n.zone for n in eligible_nodes(pool, model)})
    return found


@pytest.mark.parametrize("case", ["every_rule", "demo"])
def test_every_node_in_a_zone_and_every_spread_held(case, request):
    plan, _ = request.getfixturevalue(case)
    assert all(n.zone in ZONES for p in plan.pools for n in p.nodes)
    spread = _per_zone(plan)
    assert spread
    for name, (counts, domains) in spread.items():
        model = plan.model(name)
        assert model is not None and model.zone_max_skew == 1
        assert not skew_broken(counts, domains, 1), (name, counts, domains)
    # the zones are used: a model of three replicas or more spans three of them
    assert any(len(counts) == 3 for counts, _ in spread.values())
    assert not any("will move some off" in r for m in plan.models for r in m.reasons)


@pytest.mark.parametrize("case", ["every_rule", "demo"])
def test_the_plan_runs_as_planned_in_three_zones(case, request):
    plan, out = request.getfixturevalue(case)
    simulation = replay(plan, Manifests.read(out / "manifests"))
    _as_planned(plan, simulation)
    assert _rule(simulation, ZONE_SPREAD).holds is True
    assert {simulation.cluster.nodes[n.name].labels[ZONE_LABEL] for p in plan.pools
            for n in p.nodes} == set(ZONES)
    assert all(simulation.cluster.nodes[n.name].labels[ZONE_LABEL] == n.zone
               for p in plan.pools for n in p.nodes)
    assert _simulate(out).exit_code == 0


def test_a_node_pool_per_zone_holds_its_planned_nodes(every_rule):
    """Each pool gets a NodePool per zone it uses, pinned to the zone; its node limit is its
    planned nodes plus what the pool's ceiling leaves free, and the hostname spread's
    minDomains stays above every node the NodePools may hold."""
    plan, out = every_rule
    node_pools = {d["metadata"]["name"]: d for d in Manifests.read(out / "manifests")
                  .kind("NodePool")}
    for pool in plan.pools:
        if not pool.nodes:
            continue
        planned = Counter(node_pool_of(pool, n) for n in pool.nodes)
        for name, count in planned.items():
            spec = node_pools[name]["spec"]
            zone = next(n.zone for n in pool.nodes if node_pool_of(pool, n) == name)
            assert {"key": ZONE_LABEL, "operator": "In", "values": [zone]} in \
                spec["template"]["spec"]["requirements"]
            if pool.sharing != "mig":
                assert int(spec["limits"]["nodes"]) == count + pool.max_nodes - len(pool.nodes)
        assert node_ceiling(pool) >= pool.max_nodes
        if pool.sharing != "mig":
            assert node_ceiling(pool) == sum(int(node_pools[name]["spec"]["limits"]["nodes"])
                                             for name in planned)


def test_a_removed_zone_constraint_is_caught(every_rule, tmp_path):
    """Without its zone constraint the pods still land as planned, but the scheduler would
    admit a replica into a zone already a skew ahead."""
    plan, out = every_rule
    name = next(m for m, (counts, _) in _per_zone(plan).items() if len(counts) >= 2)
    mutated = _mutate(out, tmp_path, name, lambda spec: spec.update(
        topologySpreadConstraints=[c for c in spec.get("topologySpreadConstraints", [])
                                   if c["topologyKey"] != ZONE_LABEL]))
    result = _simulate(mutated)
    assert result.exit_code == 1
    assert result.stderr.strip() == \
        "the plan does not hold in the cluster: zone spread (zone_max_skew)"
    check = _rule(replay(plan, Manifests.read(mutated / "manifests")), ZONE_SPREAD)
    assert check.holds is False
    assert [p.split(":")[0] for p in check.problems] == [name]


def test_a_node_pool_moved_to_another_zone_is_caught(every_rule, tmp_path):
    """A zone's NodePool launching in another zone: its nodes are not where the plan
    spread the replicas."""
    plan, out = every_rule
    name = next(m for m, (counts, _) in _per_zone(plan).items() if len(counts) == 3)
    model = plan.model(name)
    assert model is not None
    pool = next(p for p in plan.pools if p.name == model.pool)
    node = next(n for n in pool.nodes if any(m == name for m, _ in n.replicas()))
    other = next(z for z in ZONES if z != node.zone)
    mutated = _mutate(out, tmp_path, name, lambda spec: None)
    path = mutated / "manifests" / "karpenter" / f"{pool.name}.yaml"
    if not path.exists():
        path = next(p for p in (mutated / "manifests").rglob("*.yaml")
                    if f"name: {node_pool_of(pool, node)}\n" in p.read_text())
    documents = list(yaml.safe_load_all(path.read_text()))
    for document in documents:
        if document and document["kind"] == "NodePool" and \
                document["metadata"]["name"] == node_pool_of(pool, node):
            for requirement in document["spec"]["template"]["spec"]["requirements"]:
                if requirement["key"] == ZONE_LABEL:
                    requirement["values"] = [other]
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    result = _simulate(mutated)
    assert result.exit_code == 1
    failed = result.stderr.strip().removeprefix("the plan does not hold in the cluster: ")
    assert "zones as planned" in failed.split(", ")
    check = _rule(replay(plan, Manifests.read(mutated / "manifests")), ZONES_AS_PLANNED)
    moved = sorted(n.name for n in pool.nodes if node_pool_of(pool, n) == node_pool_of(pool, node))
    assert check.problems == tuple(f"{n}: in {other}, planned in {node.zone}" for n in moved)


def test_zone_names_too_long_for_a_node_pool_are_exit_2(tmp_path):
    root = tmp_path / "registry"
    write_demo(root)
    edit_yaml(root / "cluster.yaml", lambda d: d["pools"][0].update(zones=["z" * 60]))
    from typer.testing import CliRunner

    from planner.cli import app
    result = CliRunner().invoke(app, ["validate", "--registry", str(root)])
    assert result.exit_code == 2
    assert "pools[0].zones[0]" in result.stderr or "pools.0.zones.0" in result.stderr, \
        result.stderr


def test_replicas_stacked_on_a_node_are_packed_again_one_per_node(tmp_path):
    """With `max_node_share: 1` the packing may stack a model's replicas on one node, which
    no zoning can balance over three zones: the plan packs those models again one replica
    per node, says so, and then every spread holds and runs as planned."""
    root = tmp_path / "registry"
    write_demo(root)
    edit_yaml(root / "policy.yaml",
              lambda d: d["spread"].update(zone_max_skew=1, max_node_share=1.0))
    plan, out = _plan(["plan", "--registry", str(_in_zones(root)), "--deterministic"],
                      tmp_path / "out")
    spaced = [m.name for m in plan.models
              if any(r.startswith("zone spread: packed one replica per node") for r in m.reasons)]
    assert spaced
    for name in spaced:
        pool = next(p for p in plan.pools if p.name == plan.model(name).pool)
        on_node = Counter(n.index for n in pool.nodes for m, _ in n.replicas() if m == name)
        assert max(on_node.values()) == 1
    for name, (counts, domains) in _per_zone(plan).items():
        assert not skew_broken(counts, domains, 1), (name, counts, domains)
    _as_planned(plan, replay(plan, Manifests.read(out / "manifests")))


def test_a_pool_of_both_capacity_types_gets_a_node_pool_per_type_and_zone(tmp_path):
    """batch-t4 with one spot node on offer buys a spot node and an on-demand one: each
    capacity type's NodePool is split per zone its nodes run in, the spot one limited to its
    own ceiling, and the plan still runs as planned."""
    root = tmp_path / "registry"
    write_demo(root)

    def spot(cluster: dict) -> None:
        for pool in cluster["pools"]:
            pool["zones"] = list(ZONES)
            if pool["name"] == "batch-t4":
                pool["spot"] = {"price_per_node_hour": 1.5, "max_nodes": 1}

    edit_yaml(root / "cluster.yaml", spot)
    edit_yaml(root / "policy.yaml", lambda d: d["spread"].update(zone_max_skew=1))
    plan, out = _plan(["plan", "--registry", str(root), "--deterministic"], tmp_path / "out")
    pool = next(p for p in plan.pools if p.name == "batch-t4")
    by_type = {pool.shape(n).capacity_type: n for n in pool.nodes}
    assert set(by_type) == {"spot", "on-demand"} and len(pool.nodes) == 2
    node_pools = {d["metadata"]["name"]: d["spec"] for d in Manifests.read(
        out / "manifests").kind("NodePool") if d["metadata"]["name"].startswith("batch-t4")}
    assert node_pools.keys() == {f"batch-t4-{by_type['on-demand'].zone}",
                                 f"batch-t4-spot-{by_type['spot'].zone}"}
    spot_pool = node_pools[f"batch-t4-spot-{by_type['spot'].zone}"]
    assert spot_pool["limits"]["nodes"] == "1" and spot_pool["weight"] == 10
    assert node_pools[f"batch-t4-{by_type['on-demand'].zone}"]["limits"]["nodes"] == "6"
    _as_planned(plan, replay(plan, Manifests.read(out / "manifests")))


def test_plan_html_shows_each_nodes_zone(demo):
    """plan.html captions each node with its zone and counts the pool's nodes per zone."""
    plan, out = demo
    page = (out / "plan.html").read_text()
    for pool in plan.pools:
        for node in pool.nodes:
            caption = re.search(rf'<figure id="node-{re.escape(node.name)}">.*?'
                                r"<figcaption>(.*?)</figcaption>", page)
            assert caption and caption.group(1).endswith(f", zone {node.zone}"), node.name
        if pool.nodes:
            counts = Counter(n.zone for n in pool.nodes)
            listed = ", ".join(f"{zone} ({counts[zone]} node{'s' if counts[zone] != 1 else ''})"
                               for zone in ZONES)
            assert f"; zones {listed}" in page, pool.name


def test_check_html_draws_a_pool_whose_nodes_changed_zone(demo):
    """A node moved to another zone is a change of its pool: check.html draws it."""
    from reports.plan_html import render_change_html

    plan, _ = demo
    assert "No pool changes." in render_change_html(plan, plan)
    pool = next(p for p in plan.pools if p.nodes)
    node = pool.nodes[0]
    moved = node.model_copy(update={"zone": next(z for z in ZONES if z != node.zone)})
    new = plan.model_copy(update={"pools": [
        p.model_copy(update={"nodes": [moved, *p.nodes[1:]]}) if p is pool else p
        for p in plan.pools]})
    page = render_change_html(plan, new)
    assert f'<h2 id="pool-{pool.name}">' in page and "<b>1 of " in page
    assert f"{node.name}, zone {moved.zone}</figcaption>" in page


def test_the_summary_states_the_limit_of_the_surge_room_under_a_zone_spread(demo):
    """Where models have a zone spread, the rollout section says the surge room keeps it for
    the first surge pod only; without zones it says nothing of it."""
    _, out = demo
    note = "surges onto a planned node only in a zone where one more of its pods"
    assert note in (out / "summary.md").read_text()
    assert note not in (Path(__file__).parent / "golden" / "demo" / "summary.md").read_text()
