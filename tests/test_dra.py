"""`sharing_backend: dra`: each replica pinned to its planned GPU through ResourceClaims of
NVIDIA's DRA driver, checked against the Kubernetes 1.34 schemas, the driver's GpuConfig and
DeviceClasses (tests/data/dra/README.md), and against the plan: every claim a pod names exists,
the replicas on each claim request are the plan's replicas on that GPU, and every claim asks
for devices the pool's node has.

The registry is the demo with `batch-t4` switched to MPS, so every sharing mode is used.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import Counter
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.planfile import GpuPlan, Plan, ReplicaSlot, load_plan
from planner.registry.kubernetes import last_gpu_slot
from planner.registry.loader import load_registry
from planner.registry.locate import write_demo
from planner.review.check import CheckResult
from planner.review.diff import diff_plans
from planner.rules.admission import admitting_pools
from planner.rules.batch import CRONJOB_NAME_MAX
from planner.schemas import Cluster
from planner.simulation import claims, devices
from planner.simulation.claims import Claim
from planner.simulation.manifests import Manifests
from planner.simulation.node_loss import node_loss_report
from planner.simulation.nodes import Device, Node
from planner.simulation.replay import replay
from reports.dra import node_claim, requests
from reports.pr_comment import render_check_markdown
from tests.conftest import add_cpu_pool, edit_yaml
from tests.consumers import WORKLOAD_KINDS, pod_template

DATA = Path(__file__).resolve().parent / "data" / "dra"
GPU_RULES = "GPU-scope conflicts (interactive-vs-batch, dedicated-tenants)"


def make_dra_registry(root: Path) -> Path:
    registry = root / "registry"
    write_demo(registry)
    edit_yaml(registry / "planner.yaml", lambda d: d.update(kubernetes_version="1.34"))

    def cluster(data: dict) -> None:
        data["sharing_backend"] = "dra"
        batch = next(p for p in data["pools"] if p["name"] == "batch-t4")
        batch.update(sharing="mps")
        batch.pop("spot")  # one shape, so that greedy packs the MPS pool as it always has

    edit_yaml(registry / "cluster.yaml", cluster)
    return add_cpu_pool(registry)  # a CPU pool, which DRA leaves alone


@pytest.fixture(scope="module")
def dra(tmp_path_factory) -> tuple[Plan, Path, Cluster]:
    root = tmp_path_factory.mktemp("dra")
    registry = make_dra_registry(root)
    result = CliRunner().invoke(app, ["plan", "--registry", str(registry), "--solver",
                                      "greedy", "--out", str(root / "out")])
    assert result.exit_code == 0, result.stderr
    cluster = Cluster.model_validate(yaml.safe_load((registry / "cluster.yaml").read_text()))
    return load_plan(root / "out" / "plan.yaml"), root / "out", cluster


def _documents(out: Path) -> list[dict]:
    return [d for path in sorted((out / "manifests").rglob("*.yaml"))
            for d in yaml.safe_load_all(path.read_text())]


def _device_classes() -> dict[str, str]:
    """The driver's DeviceClasses by name, with their CEL selector (Helm lines dropped)."""
    classes = {}
    for name in ("deviceclass-gpu.yaml", "deviceclass-mig.yaml"):
        text = "\n".join(line for line in (DATA / name).read_text().splitlines()
                         if not line.strip().startswith("{{"))
        text = re.sub(r"\{\{.*?\}\}", "resource.k8s.io/v1", text)
        for document in yaml.safe_load_all(text):
            if document:
                classes[document["metadata"]["name"]] = \
                    document["spec"]["selectors"][0]["cel"]["expression"]
    return classes


def semantic_problems(plan: Plan, cluster: Cluster, documents: list[dict]) -> list[str]:
    """What a schema misses: claims and requests the pods name exist in their namespace,
    each claim request carries exactly the replicas the plan puts on that GPU or slice, and
    each claim asks for devices of classes the driver installs that the pool's node has."""
    problems = []
    classes = _device_classes()
    claims = {(d["metadata"]["namespace"], d["metadata"]["name"]): d
              for d in documents if d["kind"] == "ResourceClaim"}
    templates = {(d["metadata"]["namespace"], d["metadata"]["name"])
                 for d in documents if d["kind"] == "ResourceClaimTemplate"}
    on_request: Counter[tuple[str, str, str]] = Counter()
    for workload in (d for d in documents if d["kind"] in WORKLOAD_KINDS):
        namespace = workload["metadata"]["namespace"]
        template, replicas = pod_template(workload)
        pod = template["spec"]
        model = template["metadata"]["labels"]["app.kubernetes.io/name"]
        references = {c["name"]: c for c in pod.get("resourceClaims", [])}
        for container in pod["containers"]:
            for use in container["resources"].get("claims", []):
                reference = references.get(use["name"])
                if reference is None:
                    problems.append(f"{model}: container claim '{use['name']}' is not a pod "
                                    "claim")
                    continue
                if "resourceClaimTemplateName" in reference:
                    if (namespace, reference["resourceClaimTemplateName"]) not in templates:
                        problems.append(f"{model}: no template "
                                        f"{reference['resourceClaimTemplateName']}")
                    continue
                claim = claims.get((namespace, reference["resourceClaimName"]))
                if claim is None:
                    problems.append(f"{model}: no claim {reference['resourceClaimName']} in "
                                    f"{namespace}")
                    continue
                names = {r["name"] for r in claim["spec"]["devices"]["requests"]}
                if use.get("request") not in names:
                    problems.append(f"{model}: claim {reference['resourceClaimName']} has no "
                                    f"request {use.get('request')}")
                    continue
                on_request[reference["resourceClaimName"], use["request"], model] += replicas
    planned: Counter[tuple[str, str, str]] = Counter()
    pools = {p.name: p for p in plan.pools}
    for pool in plan.pools:
        if pool.sharing == "exclusive":
            continue
        for node in pool.nodes:
            first_gpu = {}
            for gpu in node.gpus:
                free = list(enumerate(gpu.mig_layout or []))
                for replica in gpu.replicas:
                    request = f"gpu-{gpu.index}"
                    if gpu.whole:
                        key = (replica.model, replica.replica)
                        if key in first_gpu:
                            continue  # one request holds all GPUs of a whole-GPU replica
                        first_gpu[key] = gpu.index
                    elif gpu.mig_layout:
                        j = next(j for j, profile in free if profile == replica.slice)
                        free.remove((j, replica.slice))
                        request = f"gpu-{gpu.index}-slice-{j}"
                    planned[node.name, request, replica.model] += 1
    if on_request != planned:
        problems.append(f"replicas on claim requests differ from the plan: "
                        f"{sorted((on_request - planned).items())} more, "
                        f"{sorted((planned - on_request).items())} fewer")
    for claim in claims.values():
        pool = pools[claim["metadata"]["labels"]["planner.example.com/pool"]]
        gpu_type = cluster.gpu_types[pool.gpu_type]
        requests = claim["spec"]["devices"]["requests"]
        by_gpu: dict[str, list[str]] = {}
        for request in requests:
            exactly = request["exactly"]
            expression = classes.get(exactly["deviceClassName"])
            if expression is None:
                problems.append(f"{claim['metadata']['name']}: no DeviceClass "
                                f"{exactly['deviceClassName']}")
                continue
            kind = re.search(r"\.type == '(\w+)'", expression)
            gpu = request["name"].split("-slice-")[0]
            if kind and kind.group(1) == "mig":
                [selector] = exactly["selectors"]
                profile = re.fullmatch(r"device\.attributes\['gpu\.nvidia\.com'\]\.profile == "
                                       r"'([\w.]+)'", selector["cel"]["expression"])
                if profile is None or profile.group(1) not in gpu_type.mig_profiles:
                    problems.append(f"{claim['metadata']['name']}: {request['name']} asks for "
                                    f"a slice {pool.gpu_type} does not have")
                    continue
                by_gpu.setdefault(gpu, []).append(profile.group(1))
            else:
                for _ in range(exactly.get("count", 1)):
                    by_gpu.setdefault(f"{gpu}/{len(by_gpu)}", [])
        [node] = [n for n in pool.nodes if n.name == claim["metadata"]["name"]]
        gpus = pool.shape(node).gpus_per_node
        if len(by_gpu) != gpus:
            problems.append(f"{claim['metadata']['name']}: {len(by_gpu)} GPUs, not the "
                            f"{gpus} of its node")
        layouts = [Counter(layout) for layout in gpu_type.mig_layouts]
        for gpu, slices in by_gpu.items():
            if slices and Counter(slices) not in layouts:
                problems.append(f"{claim['metadata']['name']}: {gpu} slices {sorted(slices)} "
                                f"are no MIG layout of {pool.gpu_type}")
        grouped = {tuple(c["requests"]) for c in claim["spec"]["devices"].get("constraints", [])
                   if c.get("matchAttribute") == "gpu.nvidia.com/parentUUID"}
        for gpu, slices in by_gpu.items():
            names = tuple(r["name"] for r in requests if r["name"].split("-slice-")[0] == gpu)
            if len(slices) > 1 and names not in grouped:
                problems.append(f"{claim['metadata']['name']}: the slices of {gpu} are not "
                                "held to one parent GPU")
    return problems


def test_every_manifest_validates_strictly_for_kubernetes_1_34(dra):
    plan, out, _ = dra
    kinds: Counter[str] = Counter()
    for document in _documents(out):
        if document["apiVersion"] in ("v1", "apps/v1", "policy/v1", "scheduling.k8s.io/v1",
                                      "resource.k8s.io/v1"):
            kubernetes_validate.validate(document, plan.metadata.kubernetes_version,
                                         strict=True)
            kinds[document["kind"]] += 1
    exclusive = {p.name for p in plan.pools if p.sharing == "exclusive"}
    claimed_nodes = sum(len(p.nodes) for p in plan.pools  # no claims on CPU nodes
                        if p.name not in exclusive and p.sharing != "none")
    assert kinds["ResourceClaim"] == claimed_nodes == 4 + 2 + 3
    assert kinds["ResourceClaimTemplate"] == len(
        [m for m in plan.models if m.pool in exclusive]) == 5


def test_a_claim_with_an_unknown_field_fails_the_strict_schema(dra):
    _, out, _ = dra
    claim = next(d for d in _documents(out) if d["kind"] == "ResourceClaim")
    claim["spec"]["devices"]["requests"][0]["exactly"]["gpus"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(claim, "1.34", strict=True)


def _gpu_configs(out: Path) -> list[dict]:
    return [c["opaque"]["parameters"] for d in _documents(out) if d["kind"] == "ResourceClaim"
            for c in d["spec"]["devices"].get("config", [])]


def test_every_gpu_config_is_the_drivers_shape(dra):
    plan, out, _ = dra
    schema = json.loads((DATA / "gpuconfig.schema.json").read_text())
    configs = _gpu_configs(out)
    for config in configs:
        jsonschema.validate(config, schema)
    shared = Counter(p.sharing for p in plan.pools for n in p.nodes for g in n.gpus
                     if not g.whole and p.sharing in ("time-slicing", "mps"))
    assert shared == {"time-slicing": 14, "mps": 4}
    assert Counter(c["sharing"]["strategy"] for c in configs) == {"TimeSlicing": 14, "MPS": 4}
    broken = {**configs[0], "sharing": {"strategy": "TimeSlicing", "mpsConfig": {}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_the_claims_hold_the_plan(dra):
    plan, out, cluster = dra
    assert semantic_problems(plan, cluster, _documents(out)) == []


def _deployment(documents: list[dict], name: str) -> dict:
    return next(d for d in documents if d["kind"] == "Deployment"
                and d["metadata"]["name"] == name)


def test_a_pod_naming_a_missing_claim_is_caught(dra):
    plan, out, cluster = dra
    documents = [d for d in _documents(out) if not (d["kind"] == "ResourceClaim" and
                                                    d["metadata"]["name"] == "shared-l4-0")]
    problems = semantic_problems(plan, cluster, documents)
    assert "ocr-service: no claim shared-l4-0 in shared-l4" in problems


def _ocr_on_node_0(documents: list[dict]) -> tuple[dict, str, str]:
    """ocr-service's Deployment on node shared-l4-0, the request it uses and another request
    of that node's claim."""
    deployment = next(d for d in documents if d["kind"] == "Deployment"
                      and d["metadata"]["name"].startswith("ocr-service-0-gpu-"))
    request = deployment["metadata"]["name"].removeprefix("ocr-service-0-")
    claim = next(d for d in documents if d["kind"] == "ResourceClaim"
                 and d["metadata"]["name"] == "shared-l4-0")
    other = next(r["name"] for r in claim["spec"]["devices"]["requests"] if r["name"] != request)
    return deployment, request, other


def test_a_pod_moved_to_another_gpu_is_caught(dra):
    plan, out, cluster = dra
    documents = _documents(out)
    deployment, request, other = _ocr_on_node_0(documents)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["claims"][0]["request"] == request
    pod["containers"][0]["resources"]["claims"][0]["request"] = other
    [problem] = semantic_problems(plan, cluster, documents)
    assert problem.startswith("replicas on claim requests differ from the plan: "
                              f"[(('shared-l4-0', '{other}', 'ocr-service'), 1)] more, "
                              f"[(('shared-l4-0', '{request}', 'ocr-service'), 1)] fewer")


def test_an_extra_replica_on_a_gpu_is_caught(dra):
    plan, out, cluster = dra
    documents = _documents(out)
    deployment, request, _ = _ocr_on_node_0(documents)
    deployment["spec"]["replicas"] = 2
    [problem] = semantic_problems(plan, cluster, documents)
    assert f"(('shared-l4-0', '{request}', 'ocr-service'), 1)] more" in problem


def test_a_slice_the_gpu_type_lacks_is_caught(dra):
    plan, out, cluster = dra
    documents = _documents(out)
    claim = next(d for d in documents if d["kind"] == "ResourceClaim"
                 and d["metadata"]["name"] == "mig-a100-0")
    claim["spec"]["devices"]["requests"][0]["exactly"]["selectors"][0]["cel"]["expression"] = \
        "device.attributes['gpu.nvidia.com'].profile == '1g.5gb'"
    assert "mig-a100-0: gpu-0-slice-0 asks for a slice a100-80gb does not have" in \
        semantic_problems(plan, cluster, documents)


def test_mig_slices_request_whole_layouts_held_to_one_gpu(dra):
    plan, out, cluster = dra
    claim = next(d for d in _documents(out) if d["kind"] == "ResourceClaim"
                 and d["metadata"]["name"] == "mig-a100-0")
    [node] = [n for n in plan.pools[2].nodes if n.name == "mig-a100-0"]
    layouts = {gpu.index: gpu.mig_layout for gpu in node.gpus}
    requests = claim["spec"]["devices"]["requests"]
    slices = [r for r in requests if r["exactly"]["deviceClassName"] == "mig.nvidia.com"]
    assert len(slices) == sum(len(layout or []) for layout in layouts.values()) > 0
    # the node's other GPUs, MIG off, held idle so that the claim takes the node to itself
    assert [r["name"] for r in requests if r not in slices] == [
        f"gpu-{i}" for i in range(plan.pools[2].gpus_per_node) if not layouts.get(i)]
    constraints = claim["spec"]["devices"]["constraints"]
    assert all(c["matchAttribute"] == "gpu.nvidia.com/parentUUID" for c in constraints)
    assert len(constraints) == sum(len(layout or []) > 1 for layout in layouts.values())


def test_mps_claims_bound_each_client_to_the_share_it_was_packed_under(dra):
    plan, out, _ = dra
    [pool] = [p for p in plan.pools if p.name == "batch-t4"]
    share_mib = pool.gpu_memory_mib // pool.replicas_per_gpu
    mps = [c for c in _gpu_configs(out) if c["sharing"]["strategy"] == "MPS"]
    assert {json.dumps(c["sharing"]["mpsConfig"]) for c in mps} == {json.dumps({
        "defaultActiveThreadPercentage": 100 // pool.replicas_per_gpu,
        "defaultPinnedDeviceMemoryLimit": f"{share_mib}Mi"})}
    slots = [r for n in pool.nodes for g in n.gpus for r in g.replicas]
    assert slots and max(r.memory_mib for r in slots) <= share_mib


def test_no_pod_requests_a_device_plugin_resource(dra):
    _, out, _ = dra
    documents = _documents(out)
    for workload in (d for d in documents if d["kind"] == "Deployment"):
        pod = workload["spec"]["template"]["spec"]
        cpu_only = workload["metadata"]["labels"]["planner.example.com/pool"] == "cpu-general"
        assert bool(pod.get("resourceClaims")) != cpu_only  # a CPU pod claims no GPU
        resources = pod["containers"][0]["resources"]
        assert not any(key.startswith("nvidia.com/") for part in ("requests", "limits")
                       for key in resources[part])
    # nothing advertises extended resources, so no NodeOverlay declares them
    assert {d["kind"] for d in documents if d["kind"].startswith("Node")} == {"NodePool"}
    [policy] = [d for d in documents if d["kind"] == "ClusterPolicy"]
    assert policy["spec"]["devicePlugin"] == {"enabled": False}
    assert not any(d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("device-plugin")
                   for d in documents)


def test_shared_pools_run_in_their_own_namespace(dra):
    plan, out, _ = dra
    documents = _documents(out)
    namespaces = {d["metadata"]["name"] for d in documents if d["kind"] == "Namespace"}
    assert {"shared-l4", "mig-a100", "batch-t4"} <= namespaces
    for model in plan.models:
        pool = next(p for p in plan.pools if p.name == model.pool)
        expected = model.team if pool.sharing in ("exclusive", "none") else pool.name
        workloads = [d for d in documents if d["kind"] in WORKLOAD_KINDS and d["metadata"][
            "labels"]["app.kubernetes.io/name"] == model.name]
        assert {w["metadata"]["namespace"] for w in workloads} == {expected}
        assert sum(pod_template(w)[1] for w in workloads) == model.replicas


def test_the_dra_plan_says_what_is_enforced(dra):
    plan, out, _ = dra
    unenforced = {e.rule: e.pools for e in plan.enforcement if not e.enforced}
    assert unenforced == {"per-GPU memory packing": ["shared-l4"],
                          "per-GPU compute share (target_utilization)": ["shared-l4"]}
    enforced = {e.rule: e.pools for e in plan.enforcement if e.enforced}
    assert enforced[GPU_RULES] == ["shared-l4", "mig-a100", "batch-t4"]
    assert enforced["placement on the planned GPU and node"] == ["shared-l4", "mig-a100",
                                                                "batch-t4"]
    assert enforced["per-GPU memory and compute"] == ["batch-t4"]
    summary = (out / "summary.md").read_text()
    assert ("- **Not enforced by the cluster** (held only by the plan): per-GPU memory packing "
            "in shared-l4; per-GPU compute share (target_utilization) in shared-l4.\n") in summary
    assert f"| {GPU_RULES} | shared-l4, mig-a100, batch-t4 | yes | the DRA driver: each " \
           "planned node is one ResourceClaim holding all of its GPUs, a request per GPU or " \
           "slice used only by the replicas planned on it |" in summary
    assert "Install the driver with its feature gates `TimeSlicingSettings` and `MPSSupport` " \
           "on" in summary
    comment = render_check_markdown(CheckResult(plan, plan, diff_plans(plan, plan), []))
    section = comment.split("### Not enforced by the cluster\n\n")[1].split("\n\n")[0]
    assert [line.split(":")[0] for line in section.splitlines()] == [
        "- **per-GPU memory packing** in shared-l4",
        "- **per-GPU compute share (target\\_utilization)** in shared-l4"]


def test_dra_needs_kubernetes_1_34(cli, tmp_path):
    registry = make_dra_registry(tmp_path)
    edit_yaml(registry / "planner.yaml", lambda d: d.update(kubernetes_version="1.33"))
    line = next(i for i, text in enumerate((registry / "cluster.yaml").read_text().splitlines(),
                                           1) if text.startswith("sharing_backend:"))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {registry / 'cluster.yaml'}:{line}: sharing_backend: dra needs Kubernetes "
        "1.34 or later (resource.k8s.io/v1, Dynamic Resource Allocation on by default), but "
        "planner.yaml's kubernetes_version is 1.33; raise it or use sharing_backend: "
        "device-plugin\n")


def test_dra_refuses_kserve(cli, tmp_path):
    registry = make_dra_registry(tmp_path)
    result = cli("plan", "--registry", registry, "--solver", "greedy", "--target", "kserve",
                 "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {registry / 'cluster.yaml'}: sharing_backend: dra pins each replica to its "
        "GPU through a claim named in its pod template, and KServe has one pod template per "
        "model; use --target deployment, or sharing_backend: device-plugin for KServe\n")
    assert not (tmp_path / "out").exists()


def test_monitoring_finds_the_pods_of_every_per_gpu_deployment(dra):
    _, out, _ = dra
    documents = _documents(out)
    checked = 0
    for rule in (d for d in documents if d["kind"] == "PrometheusRule"):
        model = rule["metadata"]["name"]
        pods = [f"{d['metadata']['name']}-5d8f7c9b4-x7k2p" for d in documents
                if d["kind"] == "Deployment"
                and d["metadata"]["labels"]["app.kubernetes.io/name"] == model]
        for alert in rule["spec"]["groups"][0]["rules"]:
            found = re.search(r'namespace="([^"]+)", pod=~"([^"]+)"', alert["expr"])
            if found:
                assert found.group(1) == rule["metadata"]["namespace"]
                assert all(re.fullmatch(found.group(2), pod) for pod in pods), (model, pods)
                checked += 1
    assert checked >= 2


def test_a_whole_gpu_replica_in_a_shared_pool_takes_its_gpus_through_one_request(dra):
    plan, _, _ = dra
    [pool] = [p for p in plan.pools if p.name == "shared-l4"]
    node = pool.nodes[-1]
    assert {g.index for g in node.gpus} == {0, 1}
    slot = ReplicaSlot(model="big", replica=0, memory_mib=20000, compute_milli=1000,
                       gpu_fraction=1.0)
    node = node.model_copy(update={"gpus": [*node.gpus, *(
        GpuPlan(index=i, whole=True, replicas=[slot]) for i in (2, 3))]})
    found = {r.name: r for r in requests(pool, node)}
    assert sorted(found) == ["gpu-0", "gpu-1", "gpu-2"]
    assert (found["gpu-2"].replicas, found["gpu-2"].count, found["gpu-2"].shared) == \
        (("big",), 2, False)
    claim = node_claim(plan, pool, node, {})
    kubernetes_validate.validate(claim, "1.34", strict=True)
    assert claim["spec"]["devices"]["requests"][2] == {"name": "gpu-2", "exactly": {
        "deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount", "count": 2}}
    assert [c["requests"] for c in claim["spec"]["devices"]["config"]] == [["gpu-0"], ["gpu-1"]]


def test_every_batch_run_is_named_within_the_bound_the_registry_check_takes(dra):
    """Under DRA a batch model has a CronJob or Job per planned GPU or slice, named after it;
    the name check at load bounds them all by the pool's last slot."""
    plan, out, cluster = dra
    runs = [d for d in _documents(out) if d["kind"] in ("CronJob", "Job")]
    assert any(d["kind"] == "CronJob" for d in runs)
    for document in runs:
        model = plan.model(document["metadata"]["labels"]["app.kubernetes.io/name"])
        assert model is not None
        last = last_gpu_slot(cluster, next(p for p in cluster.pools if p.name == model.pool))
        assert last is not None
        name = document["metadata"]["name"]
        assert name.startswith(f"{model.name}-") and len(name) <= len(f"{model.name}-{last}")


def _rename(registry: Path, old: str, new: str) -> None:
    """The model `old` named `new`: its file, its name and its profiles' folder."""
    (registry / "models" / f"{old}.yaml").rename(registry / "models" / f"{new}.yaml")
    edit_yaml(registry / "models" / f"{new}.yaml", lambda d: d.update(name=new))
    (registry / "profiles" / old).rename(registry / "profiles" / new)
    for path in (registry / "profiles" / new).glob("*.yaml"):
        edit_yaml(path, lambda d: d.update(model=new))


def test_a_cronjob_name_too_long_with_its_gpu_slot_is_exit_2(cli, tmp_path):
    registry = make_dra_registry(tmp_path)
    fleet = load_registry(registry)
    model = fleet.models["feed-ranker-batch"]
    last = max((s for pool, _ in admitting_pools(model, fleet.cluster, fleet.policy)
                if (s := last_gpu_slot(fleet.cluster, pool)) is not None), key=len)
    fits = "feed-ranker-batch-" + "x" * (CRONJOB_NAME_MAX - len(last) - 19)
    assert len(f"{fits}-{last}") == CRONJOB_NAME_MAX
    _rename(registry, "feed-ranker-batch", fits)
    assert cli("validate", "--registry", registry).exit_code == 0
    long = fits + "x"
    _rename(registry, fits, long)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert re.fullmatch(
        rf"error: {re.escape(str(registry / 'models' / long))}\.yaml:\d+: name: a CronJob's "
        rf"name has at most 52 characters \(its Jobs add 11\); under sharing_backend dra the "
        rf"model has one per planned GPU or slice, named after it, and in pool [a-z0-9-]+ the "
        rf"last is '{long}-{last}', 53 characters; shorten the model's name by 1\n",
        result.stderr)


def _plain_allocation(claim: Claim, node: Node, taken: set[int]
                      ) -> dict[str, tuple[int, ...]] | None:
    """The allocator's search with nothing cut short: every request in order from the first
    free devices, backtracking over every choice where a request is held to one GPU."""

    def place(index: int, picked: dict, used: set[int], gpus: dict[int, int]) -> dict | None:
        if index == len(claim.requests):
            return picked
        request = claim.requests[index]
        group = next((i for i, g in enumerate(claim.same_gpu) if request.name in g), None)
        candidates = [i for i, d in enumerate(node.devices) if i not in taken | used
                      and claims._matches(d, request)
                      and (group not in gpus or d.gpu == gpus[group])]
        choices = itertools.combinations(candidates, request.count) if group is not None \
            else [tuple(candidates[:request.count])] * (len(candidates) >= request.count)
        for choice in choices:
            parents = {node.devices[i].gpu for i in choice}
            if group is not None and len(parents) > 1:
                continue
            fixed = {**gpus, group: parents.pop()} if group is not None and parents else gpus
            found = place(index + 1, {**picked, request.name: choice}, used | set(choice),
                          fixed)
            if found is not None:
                return found
        return None

    return place(0, {}, set(), {})


def _mig_node(slices: list[list[str | None]]) -> Node:
    """A node of GPUs, each whole (`[None]`) or cut into the MIG slices listed."""
    devices = tuple(Device("nvidia.com/gpu" if s is None else f"nvidia.com/mig-{s}", gpu, s)
                    for gpu, layout in enumerate(slices) for s in layout)
    return Node("n", "p", "p", {}, (), {}, devices, 81920, 1.0)


def _claim(groups: list[list[tuple[str, str | None, int]]]) -> Claim:
    """Requests (device class, MIG profile, count) in groups held to one GPU each; a group
    of one request is held to none."""
    requests, same_gpu = [], []
    for g, group in enumerate(groups):
        named = [claims.Request(f"r{g}-{i}", cls, profile, count)
                 for i, (cls, profile, count) in enumerate(group)]
        requests += named
        if len(named) > 1:
            same_gpu.append(tuple(r.name for r in named))
    return Claim(("ns", "claim"), tuple(requests), tuple(same_gpu), {})


def test_allocations_are_the_plain_searchs():
    """On random nodes and claims (MIG slices of three profiles, whole GPUs, requests held to
    one GPU or not, devices already taken), the allocator finds the allocation the plain
    search finds, or none where it finds none."""
    rng = random.Random(0)
    profiles = [None, "1g.10gb", "2g.20gb", "3g.40gb"]
    results = Counter()
    for _ in range(400):
        node = _mig_node([[None] if rng.random() < 0.3 else
                          [rng.choice(profiles[1:]) for _ in range(rng.randint(2, 5))]
                          for _ in range(rng.randint(2, 5))])
        claim = _claim([[(claims.GPU_CLASS, None, 1) if rng.random() < 0.1 else
                         (claims.MIG_CLASS, rng.choice(profiles), rng.randint(1, 2))
                         for _ in range(rng.randint(1, 3))] for _ in range(rng.randint(1, 3))])
        taken = {i for i in range(len(node.devices)) if rng.random() < 0.15}
        found = claims.allocate(claim, node, taken)
        assert found == _plain_allocation(claim, node, taken), (claim, node, taken)
        results[found is not None] += 1
    assert min(results.values()) > 40  # both outcomes, many times


def test_a_claim_no_node_can_hold_is_refused_after_a_short_search(monkeypatch):
    """A node's claim of six GPUs' three slices each and four slices of one more, on a node
    of eight GPUs of three slices: 24 slices for 22, but no GPU holds four. The plain search
    tries every order of the slices and every GPU for each group (over 20 million device
    matches, unfinished); the allocator explores each set of used slices once. A node with
    one whole GPU too few is refused before any search."""
    calls = Counter()
    matches = claims._matches
    monkeypatch.setattr(claims, "_matches",
                        lambda d, r: calls.update(["match"]) or matches(d, r))
    claim = _claim([[(claims.MIG_CLASS, "1g.10gb", 1)] * 3] * 6
                   + [[(claims.MIG_CLASS, "1g.10gb", 1)] * 4])
    assert claims.allocate(claim, _mig_node([["1g.10gb"] * 3] * 8), set()) is None
    assert calls["match"] < 200_000
    assert claims.allocate(claim, _mig_node([["1g.10gb"] * 4] + [["1g.10gb"] * 3] * 7),
                           set()) is not None
    calls.clear()
    whole = _claim([[(claims.GPU_CLASS, None, 1)]] * 6 + [[(claims.MIG_CLASS, "1g.10gb", 1)]
                                                           * 7])
    assert claims.allocate(whole, _mig_node([[None]] * 5 + [["1g.10gb"] * 7] * 3),
                           set()) is None
    assert calls["match"] <= 2 * 26


def test_node_loss_and_headroom_are_the_plain_searchs(dra, monkeypatch):
    """Each node lost in turn and the cheapest spare nodes per pool (spares of another MIG
    layout than the lost node's claim among them) come out as under the plain search."""
    plan, out, _ = dra
    found = node_loss_report(plan, replay(plan, Manifests.read(out / "manifests")))
    assert found.headroom
    monkeypatch.setattr(devices, "allocate", _plain_allocation)
    assert node_loss_report(plan, replay(plan, Manifests.read(out / "manifests"))) == found
