"""The node rules as the scheduler enforces them: the spread cap as a hard per-node limit and
node-scope conflicts as pod anti-affinity, checked with the scheduler's filters of the
simulation (`planner.simulation.filters`) against the examples of the Kubernetes
documentation, and on the plans of the demo and of a registry whose conflict rules are
node-scope."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.planfile import Plan, load_plan
from planner.registry.locate import write_demo
from planner.simulation import filters
from planner.simulation.filters import HOSTNAME
from planner.simulation.manifests import Manifests
from planner.simulation.pods import Pod, pods_of
from planner.simulation.replay import replay
from reports.karpenter import node_ceiling
from reports.manifests import node_rules
from scripts.update_goldens import COMMAND
from tests.conftest import edit_yaml

ZONE = "topology.kubernetes.io/zone"


def _zones(*counts: int) -> tuple[list[dict[str, str]], list]:
    """One node per zone, `counts[i]` pods labelled foo=bar in zone i+1."""
    nodes = [{ZONE: f"zone{i + 1}", HOSTNAME: f"node{i + 1}"}
             for i in range(len(counts))]
    placed = [(node, Pod("default", {"foo": "bar"}, {}))
              for node, count in zip(nodes, counts, strict=True) for _ in range(count)]
    return nodes, placed


def _spread_pod(max_skew: int, min_domains: int | None = None) -> Pod:
    constraint = {"maxSkew": max_skew, "topologyKey": ZONE,
                  "whenUnsatisfiable": "DoNotSchedule",
                  "labelSelector": {"matchLabels": {"foo": "bar"}}}
    if min_domains is not None:
        constraint["minDomains"] = min_domains
    return Pod("default", {"foo": "bar"}, {"topologySpreadConstraints": [constraint]})


# The examples of the TopologySpreadConstraint API reference (maxSkew, minDomains).
@pytest.mark.parametrize(("max_skew", "min_domains", "counts", "admitted"), [
    (1, None, (2, 2, 1), ["zone3"]),  # 2/2/1, maxSkew 1: only zone3, to become 2/2/2
    (2, None, (2, 2, 1), ["zone1", "zone2", "zone3"]),  # maxSkew 2: any zone
    (2, 5, (2, 2, 2), []),  # 3 domains < minDomains 5: global minimum 0, skew 3 > 2
    (2, 3, (2, 2, 2), ["zone1", "zone2", "zone3"]),  # enough domains: minDomains no effect
])
def test_spread_filter_follows_the_documented_examples(max_skew, min_domains, counts,
                                                       admitted):
    nodes, placed = _zones(*counts)
    pod = _spread_pod(max_skew, min_domains)
    assert [n[ZONE] for n in nodes if filters.spread_refusal(pod, n, nodes, placed) is None] == \
        admitted


def test_spread_filter_two_zones_four_nodes():
    """The docs' first example: zoneA holds two pods, zoneB one; with maxSkew 1 the incoming
    pod can only go to zoneB (nodes node3, node4)."""
    nodes = [{ZONE: zone, HOSTNAME: name} for zone, name in
             [("zoneA", "node1"), ("zoneA", "node2"), ("zoneB", "node3"), ("zoneB", "node4")]]
    pod = _spread_pod(1)
    placed = [(nodes[0], pod), (nodes[1], pod), (nodes[2], pod)]
    assert [n[HOSTNAME] for n in nodes
            if filters.spread_refusal(pod, n, nodes, placed) is None] == ["node3", "node4"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Plan:
    out = tmp_path_factory.mktemp("demo") / "out"
    result = CliRunner().invoke(app, [*COMMAND, "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return load_plan(out / "plan.yaml")


def _most_per_node(pod: Pod, nodes: list[dict[str, str]], replicas: int) -> tuple[int, int]:
    """Every order in which the scheduler could place `replicas` pods on `nodes` (any node
    the filters admit, each time): the most pods any node ever held, and the most pods
    placed in any order."""
    most, placed_most = 0, 0
    frontier = [[]]
    for _ in range(replicas):
        grown = []
        for placed in frontier:
            for node in nodes:
                if filters.spread_refusal(pod, node, nodes, placed) is None and \
                        None is filters.anti_affinity_refusal(pod, node, placed):
                    grown.append(placed + [(node, pod)])
        if not grown:
            break
        unique = {tuple(sorted(n[HOSTNAME] for n, _ in p)): p for p in grown}
        frontier = list(unique.values())
        placed_most = len(frontier[0])
        most = max(most, *(max(sum(1 for n, _ in p if n is node) for node in nodes)
                           for p in frontier))
    return most, placed_most


@pytest.mark.parametrize(("cap", "replicas", "max_nodes"), [
    (1, 2, 1), (1, 3, 3), (2, 4, 1), (2, 4, 2), (2, 4, 3), (3, 6, 3), (2, 5, 4)])
def test_the_spread_cap_bounds_every_node(demo, cap, replicas, max_nodes):
    """However the scheduler orders its choices, and however few of the pool's nodes exist
    yet, no node ever holds more than the cap; and all replicas fit once enough nodes exist."""
    model = next(m for m in demo.models if m.pool == "shared-l4")
    model = model.model_copy(update={"max_replicas_per_node": cap, "replicas": replicas})
    pool = next(p for p in demo.pools if p.name == model.pool)
    pool = pool.model_copy(update={"max_nodes": max_nodes})
    pod = Pod("team", {"app.kubernetes.io/name": model.name},
              {"nodeSelector": {"pool": pool.name}, **node_rules(demo, model, pool)})
    nodes = [{"pool": pool.name, HOSTNAME: f"n{i}"} for i in range(max_nodes)]
    most, placed = _most_per_node(pod, nodes, replicas)
    assert most == min(cap, replicas)
    assert placed == min(replicas, cap * max_nodes)


def test_max_skew_alone_does_not_bound_a_node():
    """What a bare `maxSkew: k` allows: one eligible node takes every replica, and with two
    nodes and a cap of 2, four replicas land 3 and 1."""
    constraint = {"maxSkew": 2, "topologyKey": HOSTNAME,
                  "whenUnsatisfiable": "DoNotSchedule",
                  "labelSelector": {"matchLabels": {"app": "m"}}}
    pod = Pod("team", {"app": "m"}, {"topologySpreadConstraints": [constraint]})
    assert _most_per_node(pod, [{HOSTNAME: "a"}], 4) == (4, 4)
    assert _most_per_node(pod, [{HOSTNAME: "a"}, {HOSTNAME: "b"}],
                          4)[0] == 3


def test_emitted_constraints(demo):
    pools = {p.name: p for p in demo.pools}
    capped = [m for m in demo.models if m.max_replicas_per_node]
    assert capped
    for model in capped:
        rules = node_rules(demo, model, pools[model.pool])
        if model.max_replicas_per_node == 1:
            assert rules["affinity"]["podAntiAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"][0] == {
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": model.name}},
                "topologyKey": "kubernetes.io/hostname"}
            assert "topologySpreadConstraints" not in rules
        else:
            [spread] = rules["topologySpreadConstraints"]
            assert spread["maxSkew"] == model.max_replicas_per_node
            assert spread["minDomains"] == node_ceiling(pools[model.pool]) + 1
            assert spread["whenUnsatisfiable"] == "DoNotSchedule"


def _node_scope(root: Path) -> Path:
    """The demo with both conflict rules node-scope: interactive and batch models never on
    one node, a dedicated tenant's models never on a node with another team's."""
    write_demo(root)
    edit_yaml(root / "policy.yaml",
              lambda d: [rule.update(scope="node") for rule in d["conflicts"]])
    return root


def _by_model(manifests: Manifests) -> dict[str, Pod]:
    return {pod.model: pod for pod in pods_of(manifests)}


@pytest.fixture(scope="module")
def node_scope(tmp_path_factory) -> tuple[Plan, Manifests]:
    tmp = tmp_path_factory.mktemp("node-scope")
    args = ["plan", "--registry", str(_node_scope(tmp / "registry")), "--solver", "greedy"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp / "out")])
    assert result.exit_code == 0, result.stderr
    plan = load_plan(tmp / "out" / "plan.yaml")
    return plan, Manifests.read(tmp / "out" / "manifests")


def test_gpu_scope_rules_keep_nothing_apart_on_nodes(demo):
    assert all(m.apart_on_node == [] for m in demo.models)


def test_node_scope_rules_are_in_the_plan(node_scope):
    plan, _ = node_scope
    apart = {m.name: set(m.apart_on_node) for m in plan.models}
    dedicated = {m.name for m in plan.models if m.labels.get("tenant-scope") == "dedicated"}
    interactive = {m.name for m in plan.models if m.labels.get("latency-class") == "interactive"}
    batch = {m.name for m in plan.models if m.labels.get("latency-class") == "batch"}
    assert dedicated and interactive and batch
    for name in interactive:
        assert batch <= apart[name]
    for name in dedicated:
        team = plan.model(name).team
        assert {m.name for m in plan.models if m.team != team} <= apart[name]
    for pool in plan.pools:
        for node in pool.nodes:
            on_node = {r.model for g in node.gpus for r in g.replicas}
            for name in on_node:
                assert not (apart[name] & on_node), (node.name, name)


def test_node_scope_conflicts_become_anti_affinity(node_scope):
    plan, manifests = node_scope
    pods = _by_model(manifests)
    pairs = {(m.name, other) for m in plan.models for other in m.apart_on_node}
    assert len(pairs) >= 20
    # the pod a model runs in: its own, or its lazy cache's server (which carries the
    # conflicts of all its members)
    runs = {m.name: m.name if m.cache is None else
            next(c.workload for p in plan.pools for c in p.caches if c.name == m.cache)
            for m in plan.models}
    apart = {(runs[a], runs[b]) for a, b in pairs}
    node = {HOSTNAME: "n"}
    for a, b in apart:
        assert (b, a) in apart
        assert filters.anti_affinity_refusal(pods[a], node, [(node, pods[b])])
    for one in set(runs.values()):  # every other pair may meet
        for other in set(runs.values()):
            if other != one and (one, other) not in apart:
                assert None is filters.anti_affinity_refusal(pods[one], node,
                                                             [(node, pods[other])])


def test_a_removed_anti_affinity_is_caught(node_scope):
    """Both sides of a conflict carry the term, so either alone keeps them apart (the
    scheduler checks the existing pods' terms too); with both removed the filter lets them
    meet."""
    plan, manifests = node_scope
    [(a, b), *_] = [(m.name, o) for m in plan.models for o in m.apart_on_node]
    pods = _by_model(manifests)
    node = {HOSTNAME: "n"}
    bare_a = Pod(pods[a].namespace, pods[a].labels, {**copy.deepcopy(pods[a].spec),
                                                     "affinity": {}})
    bare_b = Pod(pods[b].namespace, pods[b].labels, {**copy.deepcopy(pods[b].spec),
                                                     "affinity": {}})
    assert filters.anti_affinity_refusal(bare_a, node, [(node, pods[b])])
    assert filters.anti_affinity_refusal(pods[a], node, [(node, bare_b)])
    assert None is filters.anti_affinity_refusal(bare_a, node, [(node, bare_b)])


def test_the_node_scope_placement_passes_the_scheduler_filters(node_scope):
    plan, manifests = node_scope
    simulation = replay(plan, manifests)
    assert simulation.runs
    assert all(x.node == x.planned_node for x in simulation.landings)
    pods = _by_model(manifests)
    [term] = pods["pii-detector"].spec["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"][-1:]
    assert term["namespaceSelector"] == {}
    assert term["topologyKey"] == "kubernetes.io/hostname"


def test_a_spread_constraint_without_min_domains_is_caught(demo):
    """A cap of 2 emitted as a bare maxSkew lets a single node take three of four replicas."""
    pools = {p.name: p for p in demo.pools}
    model = next(m for m in demo.models if m.pool == "shared-l4").model_copy(
        update={"max_replicas_per_node": 2, "replicas": 4})
    rules = node_rules(demo, model, pools[model.pool])
    del rules["topologySpreadConstraints"][0]["minDomains"]
    pod = Pod("team", {"app.kubernetes.io/name": model.name}, rules)
    nodes = [{HOSTNAME: "a"}, {HOSTNAME: "b"}]
    assert _most_per_node(pod, nodes, 4)[0] == 3


def test_an_optional_zone_spread(tmp_path):
    """`spread.zone_max_skew: 1` adds a zone constraint to every model of several replicas;
    with three zones holding 1/1/0 of a model's pods, the next goes to the empty zone."""
    write_demo(tmp_path / "registry")
    edit_yaml(tmp_path / "registry" / "policy.yaml",
              lambda d: d["spread"].update(zone_max_skew=1))
    result = CliRunner().invoke(app, ["plan", "--registry", str(tmp_path / "registry"),
                                      "--solver", "greedy", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    plan = load_plan(tmp_path / "out" / "plan.yaml")
    pods = _by_model(Manifests.read(tmp_path / "out" / "manifests"))
    for model in plan.models:
        if model.cache is not None:  # in its lazy cache's servers: no pods of its own
            continue
        zone = [c for c in pods[model.name].spec.get("topologySpreadConstraints", [])
                if c["topologyKey"] == ZONE]
        assert (model.zone_max_skew, len(zone)) == ((1, 1) if model.replicas > 1 else (None, 0))
    model = next(m for m in plan.models if m.replicas > 1)
    pod = pods[model.name]
    selector = pod.spec["nodeSelector"]
    nodes = [{**selector, ZONE: f"zone{i}", HOSTNAME: f"n{i}"} for i in range(3)]
    placed = [(nodes[0], pod), (nodes[1], pod)]
    assert [n[ZONE] for n in nodes if filters.spread_refusal(pod, n, nodes, placed) is None] == \
        ["zone2"]
