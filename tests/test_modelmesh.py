"""A reserved lazy cache held by KServe ModelMesh (the demo's: its members run on Triton and
keep their model repositories in object storage): a ServingRuntime whose capacity is the
planned cache memory, an InferenceService per member in ModelMesh mode, both valid against
their CRDs and ModelMesh's own checks, the runtime's pods placed as planned, and the
mutations that would leave a member unloaded caught by `planner simulate`."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import pytest
import yaml

from planner.planfile import LazyCachePlan, Plan, load_plan
from planner.rules import modelmesh
from planner.simulation.manifests import Manifests
from planner.simulation.replay import CACHE_MEMBERS, REPLICAS, replay
from reports.manifests import render_manifests
from tests import crds
from tests.conftest import edit_yaml

MEMBERS = ["doc-layout-parser", "nsfw-detector", "sentiment-analyzer", "spell-corrector",
           "ticket-router"]
CACHE_FILE = Path("manifests") / "caches" / "shared-l4-lazy-cache.yaml"


def _cache(plan: Plan) -> LazyCachePlan:
    [cache] = [c for p in plan.pools for c in p.caches]
    return cache


def _documents(path: Path) -> list[dict]:
    return list(yaml.safe_load_all(path.read_text()))


def _capacity_bytes(container_memory_mib: int, buffer_bytes: int) -> int:
    """The capacity ModelMesh's Triton adapter reports (`CapacityInBytes`): the container's
    memory request less `memBufferBytes`."""
    return container_memory_mib * 2**20 - buffer_bytes


def _modelmesh_refuses(runtime: dict) -> list[str]:
    """What ModelMesh Serving's ServingRuntime webhook refuses
    (controllers/servingruntime_validator.go, v0.12.0)."""
    spec = runtime["spec"]
    problems = []
    server_type = spec["builtInAdapter"]["serverType"]
    if server_type not in ("triton", "mlserver", "ovms", "torchserve"):
        problems.append(f"unrecognized built-in runtime server type {server_type}")
    if server_type not in [c["name"] for c in spec["containers"]]:
        problems.append(f"must include runtime container with name {server_type}")
    for container in spec["containers"]:
        if container["name"] in ("mm", "rest-proxy", "puller") or \
                container["name"].startswith("mm-"):
            problems.append(f"container name {container['name']} is reserved")
        if "readinessProbe" in container or "lifecycle" in container:
            problems.append("ReadinessProbe and Lifecycle are managed by modelmesh")
        for port in container.get("ports", []):
            if port["name"] in modelmesh.RESERVED_PORT_NAMES or port["name"].startswith("mm-"):
                problems.append(f"port name {port['name']} is reserved")
            if port["containerPort"] in modelmesh.RESERVED_PORTS:
                problems.append(f"port {port['containerPort']} is reserved")
    return problems


def test_the_cache_runs_as_a_modelmesh_serving_runtime(greedy_demo_out: Path):
    plan = load_plan(greedy_demo_out / "plan.yaml")
    cache = _cache(plan)
    assert (cache.server, cache.reserved, cache.placed) == ("modelmesh", True, True)
    runtime, *services = _documents(greedy_demo_out / CACHE_FILE)
    assert (runtime["kind"], runtime["metadata"]["name"], runtime["metadata"]["namespace"]) == (
        "ServingRuntime", "shared-l4-lazy-cache", "shared-l4")
    spec = runtime["spec"]
    assert (spec["multiModel"], spec["replicas"]) == (True, cache.servers)
    assert spec["supportedModelFormats"] == [{"name": "triton", "version": "2",
                                              "autoSelect": False}]
    [container] = spec["containers"]
    assert container["image"] == "nvcr.io/nvidia/tritonserver:25.10-py3"
    assert "--model-control-mode=explicit" in container["args"][1]
    assert container["resources"]["requests"]["nvidia.com/gpu.shared"] == "1"
    assert spec["nodeSelector"] == {"planner.example.com/pool": "shared-l4"}
    assert spec["labels"]["app.kubernetes.io/name"] == "shared-l4-lazy-cache"
    assert crds.errors(runtime) == []
    assert crds.errors(runtime, crd=crds.MODELMESH_RUNTIMES) == []
    assert _modelmesh_refuses(runtime) == []
    # an InferenceService per member, in ModelMesh mode, naming the runtime
    assert [s["metadata"]["name"] for s in services] == MEMBERS
    for service in services:
        assert crds.errors(service) == []
        assert service["metadata"]["namespace"] == "shared-l4"
        assert service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == \
            "ModelMesh"
        model = service["spec"]["predictor"]["model"]
        assert model["runtime"] == "shared-l4-lazy-cache"
        assert model["modelFormat"]["name"] in {f["name"] for f in spec["supportedModelFormats"]}
    ticket = next(s for s in services if s["metadata"]["name"] == "ticket-router")
    assert ticket["spec"]["predictor"]["model"]["storageUri"] == \
        "s3://models.example.com/support/ticket-router"
    # the members run no pods of their own; ModelMesh's controller serves the namespace
    for name in MEMBERS:
        assert not (greedy_demo_out / "manifests" / "models" / f"{name}.yaml").exists()
    [namespace] = [d for d in _documents(greedy_demo_out / "manifests" / "cluster.yaml")
                   if d["kind"] == "Namespace" and d["metadata"]["name"] == "shared-l4"]
    assert namespace["metadata"]["labels"]["modelmesh-enabled"] == "true"


def test_modelmesh_enforces_the_planned_cache_size(greedy_demo_out: Path):
    """ModelMesh's capacity per pod is the Triton container's memory request less
    memBufferBytes (the adapter's CapacityInBytes): the plan's cache memory per server. The
    pod, with the containers the controller adds, requests what the plan packs."""
    plan = load_plan(greedy_demo_out / "plan.yaml")
    cache = _cache(plan)
    [runtime, *_] = _documents(greedy_demo_out / CACHE_FILE)
    [container] = runtime["spec"]["containers"]
    request_mib = int(container["resources"]["requests"]["memory"].removesuffix("Mi"))
    buffer = runtime["spec"]["builtInAdapter"]["memBufferBytes"]
    assert _capacity_bytes(request_mib, buffer) == cache.memory_mib * 2**20 \
        == 2176 * 2**20
    # the members' host memory at once (4 x 4096 MiB) is more than the cache and its buffer
    assert request_mib == 16384
    assert container["resources"]["limits"]["memory"] == f"{request_mib}Mi"
    # mm 448, rest-proxy 96, adapter 96 MiB; 300, 50 and 50 milli-CPU
    assert cache.host_memory_mib == request_mib + 640
    assert cache.cpu_milli == int(container["resources"]["requests"]["cpu"][:-1]) + 400 == 2400


def test_a_small_host_memory_leaves_the_buffer_of_the_built_in_runtime():
    assert modelmesh.server_memory_mib(2176, 1024) == 2176 + 128
    assert modelmesh.mem_buffer_bytes(modelmesh.server_memory_mib(2176, 1024), 2176) \
        == 128 * 2**20 == 134217728
    assert modelmesh.server_memory_of_pod(modelmesh.pod_memory_mib(2176, 1024)) == 2176 + 128
    assert _capacity_bytes(2304, 134217728) == 2176 * 2**20


def test_the_runtime_pods_are_placed_as_planned(cli, greedy_demo_out: Path):
    plan = load_plan(greedy_demo_out / "plan.yaml")
    cache = _cache(plan)
    planned = [n.name for p in plan.pools for n in p.nodes for g in n.gpus for _ in g.caches]
    simulation = replay(plan, Manifests.read(greedy_demo_out / "manifests"))
    servers = [x for x in simulation.landings if x.model == cache.workload]
    assert [x.pod for x in servers] == ["modelmesh-serving-shared-l4-lazy-cache-0"]
    assert [(x.node, x.planned_node) for x in servers] == [(n, n) for n in planned]
    assert not [x for x in simulation.landings if x.model in MEMBERS]
    [members] = [r for r in simulation.rules if r.rule == CACHE_MEMBERS]
    assert (members.holds, members.problems) == (True, ())
    assert simulation.runs
    result = cli("simulate", "--plan", greedy_demo_out / "plan.yaml", "--no-node-loss")
    assert result.exit_code == 0, result.stdout


def _mutated(out: Path, tmp: Path, change) -> Path:
    copy_ = tmp / "mutated"
    shutil.copytree(out, copy_)
    path = copy_ / CACHE_FILE
    documents = _documents(path)
    change(documents)
    path.write_text(yaml.safe_dump_all(documents))
    return copy_


def _member(documents: list[dict], name: str) -> dict:
    return next(d for d in documents if d["metadata"]["name"] == name)


@pytest.mark.parametrize(("change", "problem"), [
    (lambda docs: _member(docs, "ticket-router")["spec"]["predictor"]["model"].update(
        runtime="triton-2.x"),
     "ticket-router: ModelMesh would not load it into shared-l4/lazy-cache: its predictor "
     "names runtime 'triton-2.x', not the cache's 'shared-l4-lazy-cache'"),
    (lambda docs: docs[0]["metadata"].update(name="shared-l4-cache"),
     "ticket-router: ModelMesh would not load it into shared-l4/lazy-cache: no "
     "ServingRuntime 'shared-l4-lazy-cache' in its namespace 'shared-l4'"),
    (lambda docs: _member(docs, "ticket-router")["spec"]["predictor"]["model"].update(
        modelFormat={"name": "onnx"}),
     "ticket-router: ModelMesh would not load it into shared-l4/lazy-cache: its model format "
     "'onnx' is not among the runtime's (triton)"),
    (lambda docs: docs.remove(_member(docs, "ticket-router")),
     "ticket-router: no InferenceService for shared-l4/lazy-cache's ModelMesh runtime to load"),
])
def test_a_member_modelmesh_would_not_load_fails_the_replay(cli, greedy_demo_out: Path,
                                                           tmp_path: Path, change, problem):
    out = _mutated(greedy_demo_out, tmp_path, change)
    result = cli("simulate", "--plan", out / "plan.yaml", "--no-node-loss")
    assert result.exit_code == 1
    simulation = replay(load_plan(out / "plan.yaml"), Manifests.read(out / "manifests"))
    [check] = [r for r in simulation.rules if r.rule == CACHE_MEMBERS]
    assert problem in check.problems


def test_a_member_not_in_modelmesh_mode_fails_the_replay(cli, greedy_demo_out: Path,
                                                         tmp_path: Path):
    """Without the annotation KServe, not ModelMesh, takes the InferenceService: the member
    would run pods of its own, and ModelMesh would never load it."""
    def raw(documents):
        _member(documents, "ticket-router")["metadata"]["annotations"].pop(
            "serving.kserve.io/deploymentMode")

    out = _mutated(greedy_demo_out, tmp_path, raw)
    result = cli("simulate", "--plan", out / "plan.yaml", "--no-node-loss")
    assert result.exit_code == 1
    simulation = replay(load_plan(out / "plan.yaml"), Manifests.read(out / "manifests"))
    [members] = [r for r in simulation.rules if r.rule == CACHE_MEMBERS]
    assert members.problems == (
        "ticket-router: its InferenceService is not in ModelMesh mode "
        "(serving.kserve.io/deploymentMode: ModelMesh), so shared-l4/lazy-cache never loads it",)
    [replicas] = [r for r in simulation.rules if r.rule == REPLICAS]
    assert replicas.problems == ("ticket-router: 1 pods of its own in the manifests, planned "
                                 "in shared-l4/lazy-cache",)


def test_more_runtime_pods_than_planned_fail_the_replay(greedy_demo_out: Path, tmp_path: Path):
    out = _mutated(greedy_demo_out, tmp_path, lambda d: d[0]["spec"].update(replicas=2))
    simulation = replay(load_plan(out / "plan.yaml"), Manifests.read(out / "manifests"))
    [check] = [r for r in simulation.rules if r.rule == REPLICAS]
    assert check.problems == ("shared-l4/lazy-cache: 2 servers in the manifests, 1 planned",)


def test_the_pod_monitor_names_each_series_after_its_member(greedy_demo_out: Path):
    [monitor] = _documents(greedy_demo_out / "manifests" / "monitoring"
                           / "shared-l4-lazy-cache.yaml")
    assert crds.errors(monitor) == []
    [runtime, *_] = _documents(greedy_demo_out / CACHE_FILE)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= runtime["spec"]["labels"].items()
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    [port] = runtime["spec"]["containers"][0]["ports"]
    assert endpoint["port"] == port["name"] == "metrics"
    [rename] = endpoint["metricRelabelings"]
    # ModelMesh's model id for an InferenceService: NAME__isvc-HASH (predictor_controller.go)
    model_id = "ticket-router__isvc-6b2ad3c9a4"
    renamed = re.sub(f"^(?:{rename['regex']})$",
                     rename["replacement"].replace("${1}", r"\1"), model_id)
    assert renamed == "ticket-router"


def test_the_plan_and_summary_say_modelmesh_holds_the_cache(greedy_demo_out: Path):
    plan = load_plan(greedy_demo_out / "plan.yaml")
    ticket = plan.model("ticket-router")
    assert ticket is not None
    assert any(r.startswith("lazy: loaded on demand into shared-l4/lazy-cache") and
               "held by KServe ModelMesh (ServingRuntime shared-l4-lazy-cache, Triton through "
               "ModelMesh's adapter), which loads it on its first request" in r
               for r in ticket.reasons)
    summary = (greedy_demo_out / "summary.md").read_text()
    assert "| KServe ModelMesh, ServingRuntime `shared-l4-lazy-cache` (loads on a miss) |" \
        in summary
    assert "ModelMesh counts container memory" in summary


def test_kserve_target_runs_the_same_runtime(greedy_demo_out: Path):
    plan = load_plan(greedy_demo_out / "plan.yaml")
    files = render_manifests(plan, target="kserve")
    assert files[str(CACHE_FILE)] == (greedy_demo_out / CACHE_FILE).read_text()
    assert not [name for name in MEMBERS if f"manifests/models/{name}.yaml" in files]


@pytest.mark.parametrize(("repository", "uri"), [
    ("s3://models.example.com/support", "s3://models.example.com/support/ticket-router"),
    ("gs://bucket/repo/", "gs://bucket/repo/ticket-router"),
    ("as://account/container/repo",
     "https://account.blob.core.windows.net/container/repo/ticket-router"),
    ("as://account", None),  # no container for ModelMesh to read
    ("/models/support", None),
])
def test_where_modelmesh_pulls_a_member_from(repository, uri):
    assert modelmesh.storage_uri(repository, "ticket-router") == uri


def test_one_repository_in_the_image_keeps_the_triton_server(cli, registry: Path,
                                                             tmp_path: Path):
    edit_yaml(registry / "models" / "ticket-router.yaml",
              lambda d: d["serving"].update(model_repository="/models/support"))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--solver",
                 "greedy")
    assert result.exit_code == 0, result.stderr
    plan = load_plan(tmp_path / "out" / "plan.yaml")
    assert _cache(plan).server == "triton"
    [deployment, *_] = _documents(tmp_path / "out" / CACHE_FILE)
    assert deployment["kind"] == "Deployment"
    ticket = plan.model("ticket-router")
    assert ticket is not None and any(
        "held by Triton servers with explicit model control, not KServe ModelMesh "
        "(ticket-router's model repository /models/support is a folder in the server's image, "
        "which ModelMesh cannot pull from): whatever routes its requests must load it" in r
        for r in ticket.reasons)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "Nothing in these manifests loads one" in summary


def test_a_runtime_with_another_server_type_is_refused_by_modelmesh(greedy_demo_out: Path):
    [runtime, *_] = _documents(greedy_demo_out / CACHE_FILE)
    wrong = copy.deepcopy(runtime)
    wrong["spec"]["containers"][0]["name"] = "tritonserver"
    wrong["spec"]["containers"][0]["ports"][0]["containerPort"] = 8080
    assert _modelmesh_refuses(wrong) == ["must include runtime container with name triton",
                                         "port 8080 is reserved"]
    wrong = copy.deepcopy(runtime)
    wrong["spec"]["builtInAdapter"]["memoryBuffer"] = 1
    assert crds.errors(wrong) != [] and crds.errors(wrong, crd=crds.MODELMESH_RUNTIMES) != []


def test_several_servers_get_a_disruption_budget(greedy_demo_out: Path):
    from reports.modelmesh import runtime_objects

    plan = load_plan(greedy_demo_out / "plan.yaml")
    pool = next(p for p in plan.pools if p.caches)
    cache = _cache(plan).model_copy(update={"servers": 2})
    documents = runtime_objects(plan, cache, pool, {}, {})
    assert documents[0]["spec"]["replicas"] == 2
    [budget] = [d for d in documents if d["kind"] == "PodDisruptionBudget"]
    assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {
        "app.kubernetes.io/name": "shared-l4-lazy-cache"}}}
    assert budget["spec"]["selector"]["matchLabels"].items() <= \
        documents[0]["spec"]["labels"].items()
    assert len(runtime_objects(plan, _cache(plan), pool, {}, {})) == 1 + len(MEMBERS)


def test_the_runtime_cost_is_split_over_the_members(greedy_demo_out: Path):
    """As for Triton's own servers (`test_cache_server` checks the proportions): the members'
    shares add up to the cache's cost, and no replica of theirs is on a GPU."""
    plan = load_plan(greedy_demo_out / "plan.yaml")
    cache = _cache(plan)
    members = [m for m in plan.models if m.cache == cache.name]
    assert sorted(m.name for m in members) == MEMBERS
    assert sum(m.cost_per_hour for m in members) == pytest.approx(cache.cost_per_hour, abs=5e-4)
    placed = {r.model for p in plan.pools for n in p.nodes for g in n.gpus for r in g.replicas}
    assert not placed & set(MEMBERS)


def test_a_member_kserve_would_refuse_as_a_name_keeps_the_triton_server(cli, registry: Path,
                                                                      tmp_path: Path):
    """ModelMesh's members are InferenceServices, whose names must start with a letter."""
    models, profiles = registry / "models", registry / "profiles"
    (models / "ticket-router.yaml").rename(models / "2nd-ticket-router.yaml")
    edit_yaml(models / "2nd-ticket-router.yaml", lambda d: d.update(name="2nd-ticket-router"))
    (profiles / "ticket-router").rename(profiles / "2nd-ticket-router")
    edit_yaml(profiles / "2nd-ticket-router" / "l4.yaml",
              lambda d: d.update(model="2nd-ticket-router"))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--solver",
                 "greedy")
    assert result.exit_code == 0, result.stderr
    plan = load_plan(tmp_path / "out" / "plan.yaml")
    assert _cache(plan).server == "triton"
    member = plan.model("2nd-ticket-router")
    assert member is not None and any(
        "not KServe ModelMesh (2nd-ticket-router does not start with a letter, which KServe "
        "requires, so it cannot be an InferenceService)" in r for r in member.reasons)
