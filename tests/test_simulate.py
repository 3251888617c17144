"""`planner simulate`: the manifests replayed on the nodes their NodePools would create, with
the scheduler's filters and the device plugin's allocation, for the demo and for a registry
with every sharing mode and every rule kind; manifests mutated to break a rule are caught,
each in its own test; and every node lost in turn."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.planfile import Plan, dump_plan, load_plan
from planner.registry.locate import write_demo
from planner.simulation import filters
from planner.simulation.manifests import Manifests
from planner.simulation.node_loss import node_loss_report
from planner.simulation.pods import pods_of, quantity, requests
from planner.simulation.replay import (
    CONFLICTS,
    MPS_MEMORY,
    PLACEMENT,
    REPLICAS,
    RUNS,
    SLICED_MEMORY,
    SPREAD,
    Simulation,
    replay,
)
from reports.manifests import render_manifests
from reports.rollout import Rollout, rollout
from scripts.update_goldens import COMMAND
from tests.conftest import edit_yaml


def _plan(args: list[str], out: Path) -> tuple[Plan, Path]:
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return load_plan(out / "plan.yaml"), out


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Plan, Path]:
    return _plan(list(COMMAND), tmp_path_factory.mktemp("demo") / "out")


def _every_rule(root: Path) -> Path:
    """The demo with its batch pool on MPS (time-slicing, MPS, MIG and exclusive pools), the
    dedicated-tenant rule node-scope beside the GPU-scope interactive-vs-batch rule, and a zone
    spread, and a model of four replicas at least (a cap of two per node, a topology spread
    constraint where the others get anti-affinity): every sharing mode and every kind of
    rule."""
    write_demo(root)
    edit_yaml(root / "models" / "intent-classifier.yaml",
              lambda d: d["replicas"].update(min=4))
    def batch_on_mps(cluster: dict) -> None:
        batch = next(p for p in cluster["pools"] if p["name"] == "batch-t4")
        batch.update(sharing="mps")
        batch.pop("spot")  # one capacity type: the zone NodePools' limits are its pool's

    edit_yaml(root / "cluster.yaml", batch_on_mps)

    def rules(policy: dict) -> None:
        next(r for r in policy["conflicts"] if r["name"] == "dedicated-tenants")["scope"] = \
            "node"
        policy["spread"]["zone_max_skew"] = 1

    edit_yaml(root / "policy.yaml", rules)
    return root


@pytest.fixture(scope="module")
def every_rule(tmp_path_factory) -> tuple[Plan, Path]:
    tmp = tmp_path_factory.mktemp("every-rule")
    return _plan(["plan", "--registry", str(_every_rule(tmp / "registry")), "--solver",
                  "greedy"], tmp / "out")


def _replay(plan: Plan, out: Path, zones: int = 1) -> Simulation:
    return replay(plan, Manifests.read(out / "manifests"), zones=zones)


def _rule(simulation: Simulation, name: str):
    return next(r for r in simulation.rules if r.rule == name)


def _as_planned(plan: Plan, simulation: Simulation) -> None:
    """Every planned replica runs on its planned node and every enforced rule holds."""
    servers = sum(c.servers for p in plan.pools for c in p.caches if c.reserved and c.placed
                  and c.server is not None)
    assert len(simulation.landings) == sum(m.replicas for m in plan.models
                                           if m.cache is None) + servers
    assert [x.pod for x in simulation.landings if x.node != x.planned_node] == []
    assert all(x.planned_node is not None for x in simulation.landings)
    for name in (RUNS, REPLICAS, PLACEMENT, SPREAD, CONFLICTS):
        assert _rule(simulation, name).holds is True, _rule(simulation, name)
    assert simulation.runs


@pytest.mark.parametrize("zones", [1, 3])
def test_the_demo_runs_as_planned(demo, zones):
    plan, out = demo
    _as_planned(plan, _replay(plan, out, zones))


def test_the_demo_as_kserve_services_runs_as_planned(demo):
    plan, _ = demo
    simulation = replay(plan, Manifests.of(render_manifests(plan, target="kserve")))
    _as_planned(plan, simulation)


def test_every_sharing_mode_and_rule_kind_runs_as_planned(every_rule):
    plan, out = every_rule
    assert {p.sharing for p in plan.pools if p.nodes} == {"time-slicing", "mps", "mig",
                                                          "exclusive"}
    caps = Counter(m.max_replicas_per_node for m in plan.models if m.max_replicas_per_node)
    assert caps[1] and sum(n for cap, n in caps.items() if cap > 1)  # anti-affinity and spread
    assert any(m.apart_on_node for m in plan.models)
    assert any(m.zone_max_skew for m in plan.models)
    assert any(not e.enforced and "GPU-scope" in e.rule for e in plan.enforcement)
    simulation = _replay(plan, out)
    _as_planned(plan, simulation)
    assert _rule(simulation, MPS_MEMORY).holds is True


def test_gpus_follow_the_device_plugin(demo):
    """Whole-GPU replicas get GPUs of their own; MIG pods get slices of their profile; a GPU
    shared by time-slicing holds at most the replicas the device plugin advertises of it."""
    plan, out = demo
    simulation = _replay(plan, out)
    for node in simulation.cluster.nodes.values():
        used = Counter(i for b in simulation.cluster.on(node.name) for i in b.devices)
        assert all(count <= node.devices[i].replicas for i, count in used.items())
    for landing in simulation.landings:
        model = plan.model(landing.model)  # None: a lazy cache's server, on one shared GPU
        assert len(landing.gpus) == (model.gpus_per_replica if model and model.whole_gpus
                                     else 1)


def _mutate(out: Path, tmp: Path, model: str, change) -> Path:
    """A copy of the output folder whose `model` workload `change` edits."""
    copy = tmp / "mutated"
    shutil.copytree(out, copy)
    path = copy / "manifests" / "models" / f"{model}.yaml"
    documents = list(yaml.safe_load_all(path.read_text()))
    change(documents[0]["spec"]["template"]["spec"])
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return copy


def _simulate(folder: Path, *args: str):
    return CliRunner().invoke(app, ["simulate", "--plan", str(folder / "plan.yaml"),
                                    "--no-node-loss", *args])


def test_the_demo_exits_0(demo):
    _, out = demo
    result = _simulate(out, "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["runs"] is True
    assert all(p["node"] == p["planned_node"] for p in data["pods"])


def test_a_dropped_toleration_is_caught(demo, tmp_path):
    plan, out = demo
    model = next(m for m in plan.models if m.pool == "shared-l4")
    mutated = _mutate(out, tmp_path, model.name, lambda spec: spec.pop("tolerations"))
    result = _simulate(mutated)
    assert result.exit_code == 1
    assert result.stderr.strip() == "the plan does not hold in the cluster: every pod runs"
    simulation = _replay(plan, mutated)
    pending = [x for x in simulation.landings if x.node is None]
    assert {x.model for x in pending} == {model.name}
    assert len(pending) == model.replicas
    assert all(x.reason.endswith("node(s) had untolerated taint {nvidia.com/gpu: present}")
               for x in pending)


def test_a_raised_memory_request_is_caught(demo, tmp_path):
    """A model's replicas asking for all of a node's memory: they take nodes of their own
    (they come first in the queue), and the replicas planned there find no memory left."""
    plan, out = demo
    pool = next(p for p in plan.pools if p.name == "shared-l4")
    model = next(m for m in plan.models if m.pool == pool.name)

    def raise_memory(spec: dict) -> None:
        resources = spec["containers"][0]["resources"]
        resources["requests"]["memory"] = resources["limits"]["memory"] = \
            f"{pool.node_memory_mib}Mi"

    mutated = _mutate(out, tmp_path, model.name, raise_memory)
    assert _simulate(mutated).exit_code == 1
    simulation = _replay(plan, mutated)
    assert _rule(simulation, RUNS).holds is False
    pending = [x for x in simulation.landings if x.node is None]
    assert any(x.reason.endswith(": Insufficient memory") for x in pending)


def test_a_replica_over_its_mps_share_is_caught(every_rule, tmp_path):
    """An MPS client is capped at its share of the GPU's memory: a replica planned above it
    would run out of memory."""
    plan, out = every_rule
    pool = next(p for p in plan.pools if p.sharing == "mps" and p.nodes)
    model = next(m for m in plan.models if m.pool == pool.name)
    share = pool.gpu_memory_mib // pool.replicas_per_gpu
    assert model.memory_mib <= share
    raised = plan.model_copy(update={"models": [
        m.model_copy(update={"memory_mib": share + 1}) if m.name == model.name else m
        for m in plan.models]})
    folder = tmp_path / "raised"
    shutil.copytree(out, folder)
    (folder / "plan.yaml").write_text(dump_plan(raised))
    assert _simulate(folder).exit_code == 1
    check = _rule(_replay(raised, folder), MPS_MEMORY)
    assert check.holds is False
    assert check.problems[0] == f"{model.name}-0: {share + 1} MiB, its MPS client limit on " \
                                f"{_node_of(plan, model.name)} is {share} MiB"


def _node_of(plan: Plan, model: str) -> str:
    """The node of `model`'s first replica."""
    return next(n.name for p in plan.pools for n in p.nodes for g in n.gpus
                for r in g.replicas if r.model == model and r.replica == 0)


def test_a_removed_anti_affinity_is_caught(demo, tmp_path):
    """A cap of one replica per node without its anti-affinity: the plan's placement still
    fits, but the scheduler would admit a second replica on a node."""
    plan, out = demo
    model = next(m for m in plan.models if m.max_replicas_per_node == 1)
    mutated = _mutate(out, tmp_path, model.name, lambda spec: spec.pop("affinity"))
    assert _simulate(mutated).exit_code == 1
    check = _rule(_replay(plan, mutated), SPREAD)
    assert check.holds is False
    assert check.problems == (f"{model.name}: the manifests admit a replica beyond 1 on "
                              f"{_node_of(plan, model.name)}",)


def test_a_spread_constraint_without_min_domains_is_caught(every_rule, tmp_path):
    """A cap of two as a bare maxSkew: once every node holds two, a third is admitted."""
    plan, out = every_rule
    model = next(m for m in plan.models if (m.max_replicas_per_node or 0) > 1)
    assert _rule(_replay(plan, out), SPREAD).holds is True
    mutated = _mutate(out, tmp_path, model.name, lambda spec: [
        c.pop("minDomains", None) for c in spec["topologySpreadConstraints"]])
    assert _rule(_replay(plan, mutated), SPREAD).holds is False


def test_a_removed_node_scope_anti_affinity_is_caught(every_rule, tmp_path):
    """Both sides of a node-scope conflict carry the term; with both removed the scheduler
    would let the two models share a node."""
    plan, out = every_rule
    pods = {p.model: p for p in pods_of(Manifests.read(out / "manifests"))}
    model, other = next((m.name, o) for m in plan.models for o in m.apart_on_node
                        if pods[o].spec["nodeSelector"] == pods[m.name].spec["nodeSelector"])

    def drop_conflict_terms(spec: dict) -> None:
        anti = spec["affinity"]["podAntiAffinity"]
        terms = anti["requiredDuringSchedulingIgnoredDuringExecution"]
        terms[:] = [t for t in terms if "namespaceSelector" not in t]

    first = _mutate(out, tmp_path / "a", model, drop_conflict_terms)
    assert _rule(_replay(plan, first), CONFLICTS).holds is True  # the other side holds it
    both = _mutate(first, tmp_path / "b", other, drop_conflict_terms)
    check = _rule(_replay(plan, both), CONFLICTS)
    assert check.holds is False
    pair = sorted([model, other])
    assert any(p.startswith(f"{pair[0]} and {pair[1]}: the manifests let them share ")
               for p in check.problems)


def test_bad_input_exits_2(tmp_path):
    result = _simulate(tmp_path)
    assert result.exit_code == 2
    (tmp_path / "plan.yaml").write_text("kind: PlacementPlan\n")
    assert _simulate(tmp_path).exit_code == 2


def test_unparseable_manifests_exit_2(demo, tmp_path):
    _, out = demo
    folder = tmp_path / "out"
    shutil.copytree(out, folder)
    (folder / "manifests" / "cluster.yaml").write_text("kind: [\n")
    result = _simulate(folder)
    assert result.exit_code == 2
    assert "cluster.yaml:2: not valid YAML" in result.stderr


# The node-loss report


def test_node_loss_on_the_demo(demo):
    """Losing a node of a pool whose models keep one replica per node drops them below their
    replicas.min; one spare node of that pool prevents it, at its price per month."""
    plan, out = demo
    report = node_loss_report(plan, _replay(plan, out))
    assert [x.node for x in report.losses] == [n.name for p in plan.pools for n in p.nodes]
    below = {b.model for x in report.losses for b in x.below_min}
    for loss in report.losses:
        for b in loss.below_min:
            model = plan.model(b.model)
            assert b.running < model.replicas_min and b.running < model.replicas
            assert model.pool == loss.pool
    assert below, "the demo keeps replicas.min through every loss"
    pools = {p.name: p for p in plan.pools}
    assert {h.pool for h in report.headroom} == {x.pool for x in report.losses if x.below_min}
    hours = Decimal(str(plan.metadata.hours_per_month))
    for spare in report.headroom:
        price = Decimal(str(pools[spare.pool].price_per_node_hour))
        assert spare.cost_per_month == (price * hours).quantize(Decimal("0.01"))
        assert spare.covers
    assert report.cost_per_month == sum(h.cost_per_month for h in report.headroom)


def test_node_loss_cli_names_the_models_and_the_cost(demo):
    plan, out = demo
    result = CliRunner().invoke(app, ["simulate", "--plan", str(out / "plan.yaml"),
                                      "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)["node_loss"]
    report = node_loss_report(plan, _replay(plan, out))
    assert data["cost_per_month"] == str(report.cost_per_month)
    named = {b["model"] for x in data["losses"] for b in x["below_min"]}
    assert named == {b.model for x in report.losses for b in x.below_min}


def test_a_model_with_room_reschedules():
    """On two nodes with room for three pods, losing one moves its pod to the other: nothing
    drops below min (a replay on a hand-made cluster)."""
    from planner.simulation.devices import Devices
    from planner.simulation.nodes import Node
    from planner.simulation.pods import Pod
    from planner.simulation.scheduler import Cluster

    def node(name: str) -> Node:
        return Node(name, "p", "p", {filters.HOSTNAME: name}, (), {"cpu": 3000, "pods": 110},
                    (), 0, 1.0)

    cluster = Cluster([node("a"), node("b")], Devices())
    pods = [Pod("ns", {"app": "m"}, {}, name=f"m-{i}", model="m", replica=i,
                requests={"cpu": 1000}) for i in range(3)]
    cluster.bind(pods[0], "a")
    cluster.bind(pods[1], "a")
    cluster.bind(pods[2], "b")
    after = cluster.copy()
    lost = after.remove_node("a")
    assert [after.schedule(p)[0] is not None for p in lost] == [True, True]
    assert after.refusal(Pod("ns", {}, {}, name="x", requests={"cpu": 1}), "b") == \
        "Insufficient cpu"


def test_preemption_evicts_the_lowest_priority_first():
    """A pod that fits nowhere evicts lower-priority pods, the fewest and least important."""
    from planner.simulation.devices import Devices
    from planner.simulation.nodes import Node
    from planner.simulation.pods import Pod
    from planner.simulation.scheduler import Cluster

    node = Node("a", "p", "p", {filters.HOSTNAME: "a"}, (), {"cpu": 2000, "pods": 110}, (),
                0, 1.0)
    cluster = Cluster([node], Devices())
    low = Pod("ns", {}, {}, name="low", priority=10, requests={"cpu": 1000})
    mid = Pod("ns", {}, {}, name="mid", priority=100, requests={"cpu": 1000})
    cluster.bind(low, "a")
    cluster.bind(mid, "a")
    high = Pod("ns", {}, {}, name="high", priority=1000, requests={"cpu": 1000})
    binding, victims, _ = cluster.schedule(high)
    assert binding is not None and victims == [low]
    never = Pod("ns", {}, {}, name="never", priority=10**6, preempts=False,
                requests={"cpu": 1000})
    assert cluster.schedule(never)[0] is None


# Quantities and requests as the API server reads them


@pytest.mark.parametrize(("text", "value"), [
    ("2000m", Decimal(2)), ("1.5", Decimal("1.5")), ("4Gi", Decimal(4 * 2**30)),
    ("128Mi", Decimal(128 * 2**20)), ("1e3", Decimal(1000)), ("2k", Decimal(2000)),
    ("500M", Decimal(500 * 10**6))])
def test_quantities(text, value):
    assert quantity(text) == value


def test_a_bad_quantity_is_refused():
    with pytest.raises(ValueError, match="'4 GB' is not a Kubernetes quantity"):
        quantity("4 GB")


def test_requests_sum_containers_and_take_the_largest_init_container():
    spec = {"containers": [{"resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                          "limits": {"nvidia.com/gpu": "1"}}},
                           {"resources": {"requests": {"cpu": "250m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "2"}}}]}
    assert requests(spec) == {"cpu": 2000, "memory": 1024, "nvidia.com/gpu": 1}


def test_tolerations_follow_the_api():
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert filters.tolerates({"key": "k", "operator": "Equal", "value": "v"}, taint)
    assert filters.tolerates({"key": "k", "operator": "Exists"}, taint)
    assert filters.tolerates({"operator": "Exists"}, taint)
    assert not filters.tolerates({"key": "k", "value": "w"}, taint)
    assert not filters.tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"},
                                 taint)


# Rollouts: a surge pod needs a node the scheduler admits it to


@pytest.fixture(scope="module")
def full_pools(tmp_path_factory) -> tuple[Plan, Path]:
    """The demo with three pools at their ceiling: no node can be added for a surge pod."""
    tmp = tmp_path_factory.mktemp("full")
    write_demo(tmp / "registry")
    ceilings = {"dedicated-h100": 2, "exclusive-l4": 2, "shared-l4": 4}
    edit_yaml(tmp / "registry" / "cluster.yaml", lambda d: [
        p.update(max_nodes=ceilings[p["name"]]) for p in d["pools"] if p["name"] in ceilings])
    plan, out = _plan(["plan", "--registry", str(tmp / "registry"), "--seed", "0"],
                      tmp / "out")
    assert {p.name: len(p.nodes) for p in plan.pools if p.name in ceilings} == ceilings
    return plan, out


def test_every_surge_pod_of_a_full_pool_finds_a_node(full_pools):
    """Where a Deployment of a pool at its ceiling surges, the surge pod (a copy of a running
    pod, beside all of them) passes the scheduler's filters on a planned node, without
    preempting anything; the spread cap counts the old pods."""
    plan, out = full_pools
    manifests = Manifests.read(out / "manifests")
    simulation = replay(plan, manifests)
    assert simulation.runs
    pools = {p.name: p for p in plan.pools}
    surging = 0
    for deployment in manifests.kind("Deployment"):
        if deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0:
            continue
        model = plan.model(deployment["metadata"]["name"])
        pool = pools[model.pool]
        if len(pool.nodes) < pool.max_nodes:
            continue
        surging += 1
        pod = next(p for p in simulation.pods if p.model == model.name)
        cluster = simulation.cluster.copy()
        binding, victims, why = cluster.schedule(dataclasses.replace(pod, name="surge"))
        assert binding is not None and victims == [], (model.name, why)
    assert surging


def test_a_surge_pod_respects_the_spread_cap(full_pools):
    """A full pool whose only free GPU replicas are on the nodes holding a model's replicas,
    one each, the model's cap: the scheduler admits no surge pod there, so the model replaces
    its pods one at a time."""
    plan, _ = full_pools
    pool = next(p for p in plan.pools if p.name == "shared-l4")
    model = next(m for m in plan.models
                 if m.pool == pool.name and m.max_replicas_per_node == 1 and m.replicas == 2)
    homes = [n for n in pool.nodes if any(r.model == model.name for g in n.gpus
                                          for r in g.replicas)]
    narrowed = plan.model_copy(update={"pools": [
        p.model_copy(update={"nodes": homes, "max_nodes": len(homes)}) if p is pool else p
        for p in plan.pools]})
    assert rollout(narrowed, model) == Rollout(
        0, 1, "pool shared-l4 is full: one of 2 replicas is replaced at a time")
    simulation = replay(narrowed, Manifests.of(render_manifests(narrowed)))
    cluster = simulation.cluster
    free = {n: cluster.nodes[n].allocatable["nvidia.com/gpu.shared"] - sum(
        b.pod.requests.get("nvidia.com/gpu.shared", 0) for b in cluster.on(n))
        for n in cluster.nodes if cluster.nodes[n].pool == pool.name}
    assert len(free) == 2 and all(units > 0 for units in free.values())
    pod = next(p for p in simulation.pods if p.model == model.name)
    assert cluster.copy().schedule(dataclasses.replace(pod, name="surge"))[0] is None


def test_a_surge_pod_of_a_zoned_full_pool_lands_where_the_rollout_says(tmp_path):
    """The full pools above in three zones, with a zone spread of 1 (planned without the
    node-loss replay, which is not the subject): each Deployment that surges has a first
    surge pod that passes the scheduler's filters, the zone spread counting the old pods, on
    the node its rollout names; each held back by the zone spread has none."""
    from planner.pipeline import SolverSettings, make_plan
    from planner.registry.loader import load_registry

    write_demo(tmp_path / "registry")
    ceilings = {"dedicated-h100": 2, "exclusive-l4": 2, "shared-l4": 4}
    edit_yaml(tmp_path / "registry" / "cluster.yaml", lambda d: [
        p.update(zones=["zone-a", "zone-b", "zone-c"], **(
            {"max_nodes": ceilings[p["name"]]} if p["name"] in ceilings else {}))
        for p in d["pools"]])
    edit_yaml(tmp_path / "registry" / "policy.yaml",
              lambda d: d["spread"].update(zone_max_skew=1))
    plan = make_plan(load_registry(tmp_path / "registry"),
                     SolverSettings(seed=0, deterministic=True))
    manifests = Manifests.of(render_manifests(plan))
    simulation = replay(plan, manifests)
    assert simulation.runs
    pools = {p.name: p for p in plan.pools}
    surging = moved = 0
    for deployment in manifests.kind("Deployment"):
        model = plan.model(deployment["metadata"]["name"])
        if model is None or len(pools[model.pool].nodes) < pools[model.pool].max_nodes:
            continue  # a cache's servers, or a pool where Karpenter may add a node
        plan_of = rollout(plan, model)
        pod = next(p for p in simulation.pods if p.model == model.name)
        binding, victims, why = simulation.cluster.copy().schedule(
            dataclasses.replace(pod, name="surge"))
        if plan_of.surge:
            surging += 1
            assert binding is not None and victims == [], (model.name, why)
            assert plan_of.why.startswith("a free ") and \
                plan_of.why.split(" (zone ")[0].endswith(f" on {binding.node}")
            unzoned = rollout(plan, model.model_copy(update={"zone_max_skew": None}))
            moved += not plan_of.why.startswith(unzoned.why)
        elif "zone spread" in plan_of.why:
            assert binding is None, model.name
    # the spread sent some surge pod past a free node of a zone that already holds more
    assert surging and moved


def _zoned(plan: Plan, free_in: str, max_skew: int | None) -> tuple[Plan, object]:
    """A pool at its ceiling of three nodes of three whole GPUs, one node per zone (a, b, c),
    and a model m of 4 replicas (a tenth of a CPU each, which the nodes have room for): two
    on node-a, one each on node-b and node-c, so zone a holds 2 and the others 1. Model x
    fills every other GPU but one, on the node of zone `free_in`."""
    from planner.planfile import GpuPlan, NodePlan, ReplicaSlot

    template = next(p for p in plan.pools if p.name == "exclusive-l4")
    base = next(m for m in plan.models if m.pool == template.name)
    m = base.model_copy(update={"name": "m", "pool": "p", "replicas": 4, "replicas_min": 1,
                                "whole_gpus": True, "gpus_per_replica": 1,
                                "max_replicas_per_node": None, "apart_on_node": [],
                                "zone_max_skew": max_skew, "serving": base.serving.model_copy(
                                    update={"cpu_milli": 100, "host_memory_mib": 100})})
    x = m.model_copy(update={"name": "x", "zone_max_skew": None})

    def slot(model: str, replica: int) -> ReplicaSlot:
        return ReplicaSlot(model=model, replica=replica, memory_mib=1, compute_milli=1000,
                           gpu_fraction=1.0)

    held = {"a": [slot("m", 0), slot("m", 1)], "b": [slot("m", 2)], "c": [slot("m", 3)]}
    nodes, extra = [], 0
    for index, zone in enumerate("abc"):
        slots = list(held[zone])
        while len(slots) < (2 if zone == free_in else 3):
            slots.append(slot("x", extra))
            extra += 1
        nodes.append(NodePlan(name=f"node-{zone}", index=index, zone=zone,
                              gpus=[GpuPlan(index=i, whole=True, replicas=[r])
                                    for i, r in enumerate(slots)]))
    pool = template.model_copy(update={"name": "p", "sharing": "exclusive", "gpus_per_node": 3,
                                       "max_nodes": 3, "zones": ["a", "b", "c"], "shapes": [],
                                       "nodes": nodes, "caches": []})
    x = x.model_copy(update={"replicas": extra})
    return plan.model_copy(update={"pools": [pool], "models": [m, x]}), m


@pytest.mark.parametrize(("free_in", "max_skew", "expected"), [
    ("b", 1, Rollout(1, 0, "a free nvidia.com/gpu on node-b (zone b: one more pod keeps the "
                           "zone spread of 1)")),
    ("a", 1, Rollout(0, 1, "pool p is full but for zones where one more pod would break the "
                           "zone spread of 1: one of 4 replicas is replaced at a time")),
    ("a", 2, Rollout(1, 0, "a free nvidia.com/gpu on node-a (zone a: one more pod keeps the "
                           "zone spread of 2)")),
    ("a", None, Rollout(1, 0, "a free nvidia.com/gpu on node-a")),
])
def test_a_surge_pod_keeps_the_zone_spread(full_pools, free_in, max_skew, expected):
    """Zone a holds 2 of m's pods, b and c one each. A surge pod in zone a would make it 3
    against 1: a skew of 2, which a zone_max_skew of 1 refuses and 2 allows; in zone b it
    makes 2 against 1. The scheduler agrees: the surge pod binds exactly where the rollout
    says it may."""
    plan, _ = full_pools
    zoned, model = _zoned(plan, free_in, max_skew)
    assert rollout(zoned, model) == expected
    simulation = replay(zoned, Manifests.of(render_manifests(zoned)))
    pod = next(p for p in simulation.pods if p.model == "m")
    binding, _, _ = simulation.cluster.copy().schedule(dataclasses.replace(pod, name="surge"))
    assert (binding is not None) == expected.surge
    if binding is not None:
        assert binding.node == f"node-{free_in}"


# Under DRA the manifests choose each replica's GPU: the replay checks GPUs too


@pytest.fixture(scope="module")
def dra(tmp_path_factory) -> tuple[Plan, Path]:
    from tests.test_dra import make_dra_registry

    root = tmp_path_factory.mktemp("dra")
    return _plan(["plan", "--registry", str(make_dra_registry(root)), "--solver", "greedy"],
                 root / "out")


def test_dra_claims_put_every_replica_on_its_planned_gpu(dra):
    """Every pod of a pool that shares GPUs (time-slicing, MPS, MIG) runs on a device its
    node's claim allocated, and the replicas sharing each GPU are the plan's; whole GPUs come
    from per-pod claims; MPS clients stay within their claim's memory limit."""
    plan, out = dra
    simulation = _replay(plan, out)
    _as_planned(plan, simulation)
    shared = {p.name for p in plan.pools  # a CPU pool's pods claim nothing
              if p.sharing not in ("exclusive", "none") and p.nodes}
    assert {x.model for x in simulation.landings if x.pinned} == \
        {m.name for m in plan.models if m.pool in shared or m.whole_gpus}
    assert _rule(simulation, PLACEMENT).note == ""
    assert _rule(simulation, MPS_MEMORY).holds is True
    assert _rule(simulation, SLICED_MEMORY).holds is True
    for binding in simulation.cluster.bindings.values():
        model = plan.model(binding.pod.model)
        assert len(binding.devices) == (model.gpus_per_replica if model.whole_gpus
                                        else min(model.gpus_per_replica, 1))  # CPU pods: none


def test_a_pod_moved_to_another_gpu_request_is_caught(dra, tmp_path):
    """A pod whose container names another request of its node's claim shares another GPU
    than the plan says: the replay finds the GPU groups changed."""
    plan, out = dra
    copy = tmp_path / "moved"
    shutil.copytree(out, copy)
    pool = next(p for p in plan.pools if p.sharing == "time-slicing" and p.nodes)
    node = next(n for n in pool.nodes if len(n.gpus) > 1)
    model = node.gpus[0].replicas[0].model
    path = copy / "manifests" / "models" / f"{model}.yaml"
    documents = list(yaml.safe_load_all(path.read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment"
                      and d["metadata"]["name"] == f"{model}-{node.index}-gpu-"
                                                   f"{node.gpus[0].index}")
    [claim] = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["claims"]
    claim["request"] = f"gpu-{node.gpus[1].index}"
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    simulation = _replay(plan, copy)
    check = _rule(simulation, PLACEMENT)
    assert check.holds is False
    assert [p.split(":")[0] for p in check.problems] == [node.name]
    assert _simulate(copy).exit_code == 1


def test_a_missing_claim_leaves_its_pods_pending(dra, tmp_path):
    plan, out = dra
    copy = tmp_path / "unclaimed"
    shutil.copytree(out, copy)
    pool = next(p for p in plan.pools if p.sharing == "time-slicing" and p.nodes)
    (copy / "manifests" / "claims" / f"{pool.name}.yaml").unlink()
    simulation = _replay(plan, copy)
    pending = [x for x in simulation.landings if x.node is None]
    assert {x.model for x in pending} == {m.name for m in plan.models if m.pool == pool.name}
    assert all("resourceclaim" in x.reason and "not found" in x.reason for x in pending)


def test_a_dra_node_loss_needs_a_spare_node(dra):
    """A node claim holds all of its node's planned GPUs: when the node is lost no other
    node has them free, so its pods wait for a spare node, which the headroom prices."""
    plan, out = dra
    report = node_loss_report(plan, _replay(plan, out))
    shared = next(p for p in plan.pools if p.sharing == "time-slicing" and p.nodes)
    loss = next(x for x in report.losses if x.node == shared.nodes[0].name)
    assert loss.lost and loss.rescheduled == () and set(loss.pending) == set(loss.lost)
    spare = next(h for h in report.headroom if h.pool == shared.name)
    assert spare.covers
