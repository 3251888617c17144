"""The manifests as their consumers read them: Karpenter (NodePool, NodeOverlay), the NVIDIA
GPU Operator (ClusterPolicy, device plugin and MIG manager configs) and KServe, validated
against their vendored CRDs with unknown fields refused, and checked by a model of how each
consumer acts on them (`tests/consumers.py`), for the demo and for a registry with every
sharing mode."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.planfile import Plan, load_plan
from planner.registry.locate import write_demo
from reports.manifests import render_manifests
from scripts.update_goldens import COMMAND
from tests import consumers, crds
from tests.conftest import add_cpu_pool, edit_yaml
from tests.test_pricing import write_spot_offer_demo


def _every_sharing_mode(root: Path) -> Path:
    """The demo with its batch pool on MPS and a CPU pool: time-slicing, MPS, MIG, exclusive
    and CPU-only pools."""
    write_demo(root)
    edit_yaml(root / "cluster.yaml", lambda d: next(
        p for p in d["pools"] if p["name"] == "batch-t4").update(sharing="mps"))
    return add_cpu_pool(root)


def with_small_l4_nodes(root: Path) -> Path:
    """The demo whose shared L4 pool may also buy 1-GPU g6.4xlarge nodes (AWS us-east-1
    on-demand, 16 vCPU, 64 GiB; the reserve worked out as for the demo's other types)."""
    write_demo(root)

    def add_shape(cluster: dict) -> None:
        cluster["instance_types"]["g6.4xlarge"] = {
            "cpu_milli": 16000, "memory_mib": 65536,
            "reserved": {"cpu_milli": 360, "memory_mib": 6993}}
        next(p for p in cluster["pools"] if p["name"] == "shared-l4")["other_shapes"] = [
            {"instance_type": "g6.4xlarge", "gpus_per_node": 1, "price_per_node_hour": 1.3232}]

    edit_yaml(root / "cluster.yaml", add_shape)
    return root


@pytest.fixture(scope="module", params=["demo", "every-sharing-mode", "node-shapes",
                                        "spot-offer"])
def planned(request, tmp_path_factory) -> tuple[Plan, dict[str, str], dict[str, str]]:
    """A plan with its manifests for Deployments and for KServe."""
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "demo":
        args = [*COMMAND]
    elif request.param == "node-shapes":
        args = ["plan", "--registry", str(with_small_l4_nodes(tmp / "registry"))]
    elif request.param == "spot-offer":  # spot and on-demand nodes of one instance type
        args = ["plan", "--registry", str(write_spot_offer_demo(tmp / "registry")),
                "--deterministic"]
    else:
        args = ["plan", "--registry", str(_every_sharing_mode(tmp / "registry")),
                "--solver", "greedy"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp / "out")])
    assert result.exit_code == 0, result.stderr
    plan = load_plan(tmp / "out" / "plan.yaml")
    deployments = {str(p.relative_to(tmp / "out")): p.read_text()
                   for p in (tmp / "out" / "manifests").rglob("*.yaml")}
    return plan, deployments, render_manifests(plan, target="kserve")


def test_every_sharing_mode_is_planned(planned):
    plan, _, _ = planned
    modes = {p.sharing for p in plan.pools if p.nodes}
    assert modes >= {"time-slicing", "mig", "exclusive"}


def test_the_mps_registry_plans_an_mps_pool(tmp_path):
    result = CliRunner().invoke(app, ["plan", "--registry",
                                      str(_every_sharing_mode(tmp_path / "r")), "--solver",
                                      "greedy", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    plan = load_plan(tmp_path / "out" / "plan.yaml")
    assert {p.sharing for p in plan.pools if p.nodes} == {"time-slicing", "mps", "mig",
                                                           "exclusive", "none"}
    [config] = [d for d in yaml.safe_load_all(
        (tmp_path / "out" / "manifests" / "gpu-operator" / "configmaps.yaml").read_text())
        if d["metadata"]["name"] == "placement-planner-device-plugin"]
    mps = yaml.safe_load(config["data"]["batch-t4"])["sharing"]["mps"]
    assert mps["resources"] == [{"name": "nvidia.com/gpu", "replicas": 8}]
    assert "cpu-general" not in config["data"]  # no device plugin runs on a CPU pool's nodes


@pytest.mark.parametrize("target", ["deployment", "kserve"])
def test_custom_resources_validate_against_their_crds(planned, target):
    plan, deployments, kserve = planned
    manifests = consumers.Manifests.of(deployments if target == "deployment" else kserve)
    checked = 0
    for kind in ("NodePool", "NodeOverlay", "InferenceService", "ServingRuntime"):
        for document in manifests.kind(kind):
            assert crds.errors(document) == [], (kind, document["metadata"]["name"])
            checked += 1
    for runtime in manifests.kind("ServingRuntime"):
        assert crds.errors(runtime, crd=crds.MODELMESH_RUNTIMES) == []
    [patch] = manifests.kind("ClusterPolicy")
    assert crds.errors(crds.merge_patch(crds.cluster_policy_sample(), patch)) == []
    # Every NodePool is checked, and with it the overlay of the shared or MIG resources it
    # advertises; exclusive and CPU pools have none, and a pool's spot and on-demand
    # NodePools share theirs.
    bare = sum(1 for p in plan.pools if p.nodes and p.sharing in ("exclusive", "none"))
    split = sum(1 for p in plan.pools if len({s.capacity_type for s in p.chosen_shapes}) > 1)
    assert checked >= len(manifests.kind("NodePool")) * 2 - bare - split
    # KServe runs the models' pods only for --target kserve; ModelMesh's members are there
    # whatever the target
    assert (target == "kserve") == bool(consumers.kserve_services(manifests))


def test_crd_validation_refuses_unknown_fields(planned):
    _, deployments, kserve = planned
    [node_pool, *_] = consumers.Manifests.of(deployments).kind("NodePool")
    wrong = copy.deepcopy(node_pool)
    wrong["spec"]["template"]["spec"]["nodeSelector"] = {"a": "b"}
    assert crds.errors(wrong) == ["spec.template.spec: Additional properties are not allowed "
                                  "('nodeSelector' was unexpected)"]
    [service, *_] = consumers.kserve_services(consumers.Manifests.of(kserve))
    wrong = copy.deepcopy(service)
    wrong["spec"]["predictor"]["containers"][0]["port"] = 80
    assert "Additional properties are not allowed ('port' was unexpected)" in \
        crds.errors(wrong)[0]
    [patch] = consumers.Manifests.of(deployments).kind("ClusterPolicy")
    wrong = crds.merge_patch(patch, {"spec": {"devicePlugin": {"configs": {"name": "x"}}}})
    assert crds.errors(crds.merge_patch(crds.cluster_policy_sample(), wrong)) == [
        "spec.devicePlugin: Additional properties are not allowed ('configs' was unexpected)"]


@pytest.mark.parametrize("target", ["deployment", "kserve"])
def test_every_pod_fits_a_node_of_its_planned_pool(planned, target):
    plan, deployments, kserve = planned
    manifests = consumers.Manifests.of(deployments if target == "deployment" else kserve)
    assert consumers.pod_problems(plan, manifests) == []
    # a reserved cache's Triton servers are one workload for all its members
    served = [c for p in plan.pools for c in p.caches if c.server is not None and c.reserved]
    assert len(consumers.pod_specs(manifests)) == len(
        [m for m in plan.models if m.cache is None]) + len(served)


def test_overlays_declare_what_the_device_plugin_advertises(planned):
    plan, deployments, _ = planned
    manifests = consumers.Manifests.of(deployments)
    assert consumers.overlay_problems(plan, manifests) == []
    shared = [p for p in plan.pools if p.sharing in ("time-slicing", "mps") and p.nodes]
    overlays = {o["metadata"]["name"]: o for o in manifests.kind("NodeOverlay")}
    for pool in shared:
        for shape in pool.chosen_shapes:  # one overlay per instance type of several
            name = f"{pool.name}-{shape.instance_type.replace('.', '-')}" if pool.shapes \
                else pool.name
            assert overlays[name]["spec"]["capacity"] == {
                "nvidia.com/gpu.shared": str(shape.gpus_per_node * pool.replicas_per_gpu)}


def test_config_keys_match_node_labels(planned):
    plan, deployments, _ = planned
    manifests = consumers.Manifests.of(deployments)
    assert consumers.config_key_problems(manifests) == []
    [config] = [c for c in manifests.kind("ConfigMap")
                if c["metadata"]["name"] == "placement-planner-device-plugin"]
    assert set(config["data"]) == {"default"} | {p.name for p in plan.pools
                                                  if p.nodes and p.gpu_type is not None}
    for key, text in config["data"].items():
        assert consumers.plugin_entry_problems(key, text) == []
    assert consumers.mig_config_problems(plan, manifests) == []


def test_cluster_policy_sets_the_mig_strategy_the_plan_needs(planned):
    plan, deployments, _ = planned
    [patch] = consumers.Manifests.of(deployments).kind("ClusterPolicy")
    assert patch["metadata"]["name"] == "cluster-policy"
    assert patch["spec"]["mig"] == {"strategy": "mixed"}
    assert any(p.sharing == "mig" and p.nodes for p in plan.pools)


def test_no_mig_pool_leaves_the_mig_settings_alone(planned):
    plan, _, _ = planned
    without = plan.model_copy(update={"pools": [p for p in plan.pools if p.sharing != "mig"],
                                      "models": [m for m in plan.models if not m.mig_slice]})
    manifests = consumers.Manifests.of(render_manifests(without))
    [patch] = manifests.kind("ClusterPolicy")
    assert set(patch["spec"]) == {"devicePlugin"}
    assert "placement-planner-mig-parted" not in {
        c["metadata"]["name"] for c in manifests.kind("ConfigMap")}
    assert consumers.config_key_problems(manifests) == []
    assert consumers.pod_problems(without, manifests) == []


def test_node_pool_limits_are_the_pools_ceiling(planned):
    plan, deployments, _ = planned
    assert consumers.limit_problems(plan, consumers.Manifests.of(deployments)) == []


@pytest.mark.parametrize("target", ["deployment", "kserve"])
def test_names_labels_and_plain_yaml(planned, target):
    _, deployments, kserve = planned
    manifests = consumers.Manifests.of(deployments if target == "deployment" else kserve)
    assert consumers.name_problems(manifests) == []


def test_the_checks_catch_what_a_cluster_would_refuse(planned):
    """Each check fails on the defect it is there for."""
    plan, deployments, _ = planned
    files = dict(deployments)
    model = next(m for m in plan.models if m.pool == "shared-l4")
    path = f"manifests/models/{model.name}.yaml"
    documents = list(yaml.safe_load_all(files[path]))
    documents[0]["spec"]["template"]["spec"]["nodeSelector"]["nvidia.com/gpu.product"] = "L4"
    files[path] = yaml.safe_dump_all(documents)
    files["manifests/pools/shared-l4.yaml"] = yaml.safe_dump_all(
        [d for d in yaml.safe_load_all(files["manifests/pools/shared-l4.yaml"])
         if d["kind"] != "NodeOverlay"])
    manifests = consumers.Manifests.of(files)
    problems = consumers.pod_problems(plan, manifests)
    assert f"{model.name}: selects 'nvidia.com/gpu.product', a label Karpenter does not " \
           "know before a node exists" in problems
    assert f"{model.name}: Karpenter sees no nvidia.com/gpu.shared on shared-l4" in problems
    assert consumers.overlay_problems(plan, manifests)[0].startswith("shared-l4: overlays "
                                                                     "declare {}")
    assert consumers.plugin_entry_problems("x", "version: v1\nsharing: {timeSlicing: "
                                           "{resources: [{name: nvidia.com/gpu, replicas: 1}]}}"
                                           ) == ["x: number of replicas must be >= 2"]
    files["manifests/cluster.yaml"] += "---\n" + yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "Team_A", "labels": {"a": "b c"}}})
    names = consumers.name_problems(consumers.Manifests.of(files))
    assert any(p.startswith("Namespace Team_A: not a DNS-1123 label") for p in names)
    assert any(p.startswith("Namespace Team_A: label a=b c") for p in names)


def test_every_surging_deployment_has_room(planned):
    plan, deployments, _ = planned
    manifests = consumers.Manifests.of(deployments)
    assert consumers.surge_problems(plan, manifests) == []
    strategies = {d["metadata"]["name"]: d["spec"]["strategy"]
                  for d in manifests.kind("Deployment")}
    # ModelMesh's controller makes its runtimes' Deployments, not the manifests
    servers = [c.workload for p in plan.pools for c in p.caches
               if c.reserved and c.placed and c.server == "triton"]
    assert len(strategies) == len([m for m in plan.models
                                   if m.cache is None and m.batch is None]) + len(servers)
    # a cache server starts empty: replaced in place, never surged
    assert all(strategies[name]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
               for name in servers)


@pytest.fixture(scope="module")
def full_pools(tmp_path_factory) -> tuple[Plan, Path]:
    """The demo with three pools at their ceiling: no node can be added for a surge pod."""
    tmp = tmp_path_factory.mktemp("full")
    write_demo(tmp / "registry")
    ceilings = {"dedicated-h100": 2, "exclusive-l4": 2, "shared-l4": 4}
    edit_yaml(tmp / "registry" / "cluster.yaml", lambda d: [
        p.update(max_nodes=ceilings[p["name"]]) for p in d["pools"] if p["name"] in ceilings])
    result = CliRunner().invoke(app, ["plan", "--registry", str(tmp / "registry"), "--out",
                                      str(tmp / "out"), "--seed", "0"])
    assert result.exit_code == 0, result.stderr
    plan = load_plan(tmp / "out" / "plan.yaml")
    assert {p.name: len(p.nodes) for p in plan.pools if p.name in ceilings} == ceilings
    return plan, tmp / "out"


def _strategies(out: Path) -> dict[str, dict]:
    return {d["metadata"]["name"]: d["spec"]["strategy"]["rollingUpdate"]
            for path in (out / "manifests" / "models").glob("*.yaml")
            for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "Deployment"}


def test_full_pools_roll_out_without_surge_where_no_gpu_is_free(full_pools):
    plan, out = full_pools
    manifests = consumers.Manifests.of(
        {str(p.relative_to(out)): p.read_text() for p in (out / "manifests").rglob("*.yaml")})
    assert consumers.surge_problems(plan, manifests) == []
    strategies = _strategies(out)
    whole = [m for m in plan.models if m.pool == "exclusive-l4"]
    assert whole and all(strategies[m.name] == {"maxSurge": 0, "maxUnavailable": 1}
                         for m in whole)
    shared = [m for m in plan.models if m.pool == "shared-l4" and m.cache is None]
    assert shared and all(strategies[m.name] == {"maxSurge": 1, "maxUnavailable": 0}
                          for m in shared)  # free time-slicing replicas on planned nodes
    summary = (out / "summary.md").read_text()
    assert "| dedicated-h100 | 2 | 2 | none: at its ceiling, node replacement waits for a " \
           "node to drain |" in summary
    # dedicated-h100 has free H100s (10 of 16 used): whether a model there can surge depends
    # on where its replicas and the free GPUs are; every one that cannot says why
    held = [m for m in plan.models  # a batch model's runs have no rolling update
            if m.cache is None and m.batch is None and strategies[m.name]["maxSurge"] == 0]
    assert {m.name for m in whole} <= {m.name for m in held}
    for model in held:
        assert f"| {model.name} | {model.replicas} | pool {model.pool} is full: " in summary


def test_kserve_raw_by_default_with_the_deployment_strategy(planned):
    plan, deployments, kserve = planned
    strategies = {d["metadata"]["name"]: d["spec"]["strategy"]
                  for d in consumers.Manifests.of(deployments).kind("Deployment")}
    for service in consumers.kserve_services(consumers.Manifests.of(kserve)):
        name = service["metadata"]["name"]
        assert service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == \
            "RawDeployment"
        predictor = service["spec"]["predictor"]
        assert predictor["deploymentStrategy"] == strategies[name]
        assert predictor["minReplicas"] >= 1  # a raw Deployment does not scale to zero
        [port] = predictor["containers"][0]["ports"]
        assert port["name"] in ("", "h2c", "http1")  # what Knative's webhook accepts
        probe = predictor["containers"][0]["readinessProbe"]  # an LLM engine's: its health
        assert (probe.get("tcpSocket") or probe["httpGet"])["port"] == port["containerPort"]
        assert len(f"{name}-predictor") <= 63


def test_kserve_serverless_on_request(cli, tmp_path):
    out = tmp_path / "out"
    result = cli(*COMMAND, "--out", out, "--target", "kserve", "--kserve-mode", "serverless")
    assert result.exit_code == 0, result.stderr
    plan = load_plan(out / "plan.yaml")
    manifests = consumers.Manifests.of(
        {str(p.relative_to(out)): p.read_text() for p in (out / "manifests").rglob("*.yaml")})
    services = consumers.kserve_services(manifests)
    assert len(services) == len([m for m in plan.models if m.cache is None and m.batch is None])
    for service in services:
        assert crds.errors(service) == []
        assert service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == \
            "Serverless"
        assert "deploymentStrategy" not in service["spec"]["predictor"]
    lazy = next(m for m in plan.models if m.loading == "lazy" and m.cache is None)
    [service] = [s for s in services if s["metadata"]["name"] == lazy.name]
    assert service["spec"]["predictor"]["minReplicas"] == 0
    assert consumers.pod_problems(plan, manifests) == []
    summary = (out / "summary.md").read_text()
    assert "InferenceServices use `serving.kserve.io/deploymentMode: Serverless`." in summary
    for feature in ("nodeselector", "priorityclassname", "tolerations",
                    "affinity"):
        assert f"- `kubernetes.podspec-{feature}`" in summary
