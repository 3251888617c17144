"""A model of how the manifests' consumers read them: nodes as Karpenter would launch them
from the NodePools and NodeOverlays, and as the GPU Operator's device plugin and MIG manager
would then make them advertise GPUs; pods as Karpenter would match them. The scheduler's
filters are the product's own (`planner.simulation`, which `planner simulate` runs).

Each check returns the problems it finds (empty when the manifests hold), so tests can also
show that a broken manifest is caught.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import yaml

from planner import k8s_names
from planner.planfile import NodePlan, Plan, PoolPlan
from planner.simulation import filters
from planner.simulation import manifests as simulation
from reports.gpu_operator import SHARED_GPU, gpu_resource, mig_node_layouts, node_pool_of

# Labels Karpenter knows before a node exists (sigs.k8s.io/karpenter pkg/apis/v1/labels.go,
# WellKnownLabels), beside those a NodePool's template sets.
KARPENTER_WELL_KNOWN = {
    "karpenter.sh/nodepool", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "node.kubernetes.io/instance-type", "kubernetes.io/arch", "kubernetes.io/os",
    "karpenter.sh/capacity-type", "node.kubernetes.io/windows-build",
}
DEVICE_PLUGIN_LABEL = "nvidia.com/device-plugin.config"
MIG_LABEL = "nvidia.com/mig.config"
WHOLE = "nvidia.com/gpu"
SHARED = "nvidia.com/gpu.shared"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"


class Manifests(simulation.Manifests):
    """Every document of an output folder's `manifests/`, by kind."""

    @classmethod
    def of(cls, files: dict[str, str]) -> Manifests:
        return super().of({path: text for path, text in files.items()
                           if path.startswith("manifests/")})

    def config_map(self, name: str) -> dict:
        [found] = [c for c in self.kind("ConfigMap") if c["metadata"]["name"] == name]
        return found


@dataclass
class Node:
    """A node of one NodePool: Karpenter's view before launch, the device plugin's after."""

    node_pool: str
    labels: dict[str, str]
    taints: list[dict]
    karpenter_capacity: dict[str, int]
    advertised: dict[str, int]


def _requirement_labels(node_pool: dict) -> dict[str, str]:
    """The labels a node gets from requirements that allow exactly one value."""
    return {r["key"]: r["values"][0] for r in node_pool["spec"]["template"]["spec"]["requirements"]
            if r["operator"] == "In" and len(r["values"]) == 1}


def _plugin_config(manifests: Manifests, labels: dict[str, str]) -> dict:
    [policy] = manifests.kind("ClusterPolicy")
    config = policy["spec"]["devicePlugin"]["config"]
    data = manifests.config_map(config["name"])["data"]
    return yaml.safe_load(data[labels.get(DEVICE_PLUGIN_LABEL, config["default"])])


def _mig_config(manifests: Manifests, labels: dict[str, str]) -> list[dict]:
    [policy] = manifests.kind("ClusterPolicy")
    manager = policy["spec"].get("migManager")
    if manager is None:
        return []
    configs = yaml.safe_load(manifests.config_map(manager["config"]["name"])["data"]
                             ["config.yaml"])["mig-configs"]
    return configs[labels.get(MIG_LABEL, manager["config"]["default"])]


def _advertised(manifests: Manifests, labels: dict[str, str], gpus: int) -> dict[str, int]:
    """What the device plugin advertises on a node with `gpus` GPUs, after the MIG manager
    applied the node's mig-parted config (mixed strategy: one resource per profile)."""
    resources: Counter[str] = Counter()
    mig_gpus: set[int] = set()
    for entry in _mig_config(manifests, labels):
        if not entry.get("mig-enabled"):
            continue
        devices = range(gpus) if entry["devices"] == "all" else entry["devices"]
        for index in devices:
            mig_gpus.add(index)
            for profile, count in entry.get("mig-devices", {}).items():
                resources[f"nvidia.com/mig-{profile}"] += count
    resources[WHOLE] = gpus - len(mig_gpus)
    config = _plugin_config(manifests, labels)
    for mode in ("timeSlicing", "mps"):
        sharing = config.get("sharing", {}).get(mode)
        if sharing:
            for resource in sharing["resources"]:
                whole = resources.pop(resource["name"])
                name = f"{resource['name']}.shared" if sharing.get("renameByDefault") \
                    else resource["name"]
                resources[name] += whole * resource["replicas"]
    return {name: count for name, count in resources.items() if count}


def nodes(plan: Plan, manifests: Manifests) -> dict[str, Node]:
    """One node per NodePool and instance type it allows, as Karpenter and the GPU Operator
    would make it: keyed by the NodePool's name, or `NODEPOOL/TYPE` where it allows several."""
    gpus_of = {p.instance_type: p.gpus_per_node for p in plan.pools}
    gpus_of.update({s.instance_type: s.gpus_per_node for p in plan.pools for s in p.shapes})
    result = {}
    for node_pool in manifests.kind("NodePool"):
        name = node_pool["metadata"]["name"]
        template = node_pool["spec"]["template"]
        [types] = [r["values"] for r in template["spec"]["requirements"]
                   if r["key"] == INSTANCE_TYPE and r["operator"] == "In"]
        for instance_type in types:
            labels = {**template["metadata"]["labels"], **_requirement_labels(node_pool),
                      INSTANCE_TYPE: instance_type, "karpenter.sh/nodepool": name}
            gpus = gpus_of[instance_type]
            capacity = {WHOLE: gpus}  # what the cloud provider reports for the instance type
            for overlay in manifests.kind("NodeOverlay"):
                if all(labels.get(r["key"]) in r["values"]
                       for r in overlay["spec"]["requirements"]):
                    capacity.update({k: int(v) for k, v in overlay["spec"]["capacity"].items()})
            key = name if len(types) == 1 else f"{name}/{instance_type}"
            result[key] = Node(name, labels, template["spec"].get("taints", []), capacity,
                               _advertised(manifests, labels, gpus))
    return result


def launched_node(launched: dict[str, Node], pool: PoolPlan, planned: NodePlan) -> Node:
    """The node Karpenter launches for a planned node: of its NodePool, and of its shape."""
    node_pool = node_pool_of(pool, planned)
    return launched.get(f"{node_pool}/{pool.shape(planned).instance_type}") \
        or launched[node_pool]


def pod_template(workload: dict) -> tuple[dict, int]:
    """A Deployment's, Job's or CronJob's pod template and the pods it runs at once."""
    spec = workload["spec"]
    if workload["kind"] == "Deployment":
        return spec["template"], spec["replicas"]
    job = spec["jobTemplate"]["spec"] if workload["kind"] == "CronJob" else spec
    return job["template"], job["parallelism"]


WORKLOAD_KINDS = ("Deployment", "Job", "CronJob")


def kserve_services(manifests: Manifests) -> list[dict]:
    """The InferenceServices KServe runs as pods: not those ModelMesh loads into a
    ServingRuntime's pods (`serving.kserve.io/deploymentMode: ModelMesh`)."""
    return [s for s in manifests.kind("InferenceService")
            if (s["metadata"].get("annotations") or {}).get(
                "serving.kserve.io/deploymentMode") != "ModelMesh"]


def pod_specs(manifests: Manifests) -> dict[str, dict]:
    """Each model's pod spec, from its Deployment (a batch model's CronJob or Job) or its
    InferenceService's predictor."""
    specs = {}
    for kind in WORKLOAD_KINDS:
        for workload in manifests.kind(kind):
            specs[workload["metadata"]["name"]] = pod_template(workload)[0]["spec"]
    for service in kserve_services(manifests):
        specs[service["metadata"]["name"]] = service["spec"]["predictor"]
    for runtime in manifests.kind("ServingRuntime"):
        # the fields ModelMesh's controller passes to its runtime pods
        spec = runtime["spec"]
        specs[runtime["metadata"]["name"]] = {
            key: spec[key] for key in ("containers", "nodeSelector", "tolerations", "affinity")
            if key in spec}
    return specs


def pod_problems(plan: Plan, manifests: Manifests) -> list[str]:
    """Can every pod run on a node of its planned pool, as Karpenter and the scheduler see it,
    and do the replicas planned on each node fit what that node advertises?"""
    problems = []
    launched = nodes(plan, manifests)
    pools = {p.name: p for p in plan.pools}
    specs = pod_specs(manifests)
    servers = [(c.workload, pool.name, 1) for pool in plan.pools for c in pool.caches
               if c.reserved and c.placed and c.server is not None]
    for name, pool_name, gpus in [(m.name, m.pool, m.gpus_per_replica) for m in plan.models
                                  if m.cache is None] + servers:
        pool = pools[pool_name]
        pod = specs[name]
        selector = pod.get("nodeSelector", {})
        for key in selector:
            template_keys = {k for n in launched.values() for k in n.labels}
            if key not in template_keys | KARPENTER_WELL_KNOWN:
                problems.append(f"{name}: selects '{key}', a label Karpenter does not "
                                "know before a node exists")
        matching = [n for n in launched.values()
                    if all(n.labels.get(k) == v for k, v in selector.items())]
        server_of = {c.name: c.workload for c in pool.caches}
        own = {node_pool_of(pool, node) for node in pool.nodes
               if any(name == model for model, _ in node.replicas())
               or any(server_of[s.cache] == name for g in node.gpus for s in g.caches)}
        if not own <= {n.node_pool for n in matching}:
            problems.append(f"{name}: its selector matches no NodePool of {pool.name}")
        # A GPU pool's NodePools carry its device-plugin entry's name; a CPU pool has one
        # NodePool, named after it.
        if {n.node_pool for n in matching} - {n.node_pool for n in launched.values()
                                              if n.labels.get(DEVICE_PLUGIN_LABEL) == pool.name
                                              or (pool.gpu_type is None
                                                  and n.node_pool == pool.name)}:
            problems.append(f"{name}: its selector also matches another pool's nodes")
        requests = pod["containers"][0]["resources"]["requests"]
        extended = {k: int(v) for k, v in requests.items() if k.startswith("nvidia.com/")}
        if gpus == 0 and extended:
            problems.append(f"{name}: a CPU-only pod requests {sorted(extended)}")
        for node in (n for n in launched.values() if n.node_pool in own):
            for taint in node.taints:
                if taint["effect"] in ("NoSchedule", "NoExecute") and not any(
                        filters.tolerates(t, taint) for t in pod.get("tolerations", [])):
                    problems.append(f"{name}: does not tolerate {taint['key']} of "
                                    f"{node.node_pool}")
            for resource, count in extended.items():
                if node.karpenter_capacity.get(resource, 0) < count:
                    problems.append(f"{name}: Karpenter sees no {resource} on "
                                    f"{node.node_pool}")
                if node.advertised.get(resource, 0) < count:
                    problems.append(f"{name}: {node.node_pool} nodes advertise no "
                                    f"{resource}")
    for pool in plan.pools:
        for planned in pool.nodes:
            node = launched_node(launched, pool, planned)
            wanted: Counter[str] = Counter()
            for model_name, _ in planned.replicas():
                gpu = gpu_resource(plan.model(model_name), pool)
                if gpu is not None:
                    wanted[gpu[0]] += gpu[1]
            wanted[SHARED_GPU] += sum(len(g.caches) for g in planned.gpus)
            wanted = +wanted  # a pool without cache servers asks for none
            for resource, count in wanted.items():
                if node.advertised.get(resource, 0) < count:
                    problems.append(f"{planned.name}: {count} {resource} planned, "
                                    f"{node.advertised.get(resource, 0)} advertised")
    return problems


def overlay_problems(plan: Plan, manifests: Manifests) -> list[str]:
    """Karpenter's view of each node's extended resources equals what the node advertises."""
    problems = []
    for node in nodes(plan, manifests).values():
        declared = {k: v for k, v in node.karpenter_capacity.items() if k != WHOLE}
        real = {k: v for k, v in node.advertised.items() if k != WHOLE}
        if declared != real:
            problems.append(f"{node.node_pool}: overlays declare {declared}, the device plugin "
                            f"advertises {real}")
    return problems


def config_key_problems(manifests: Manifests) -> list[str]:
    """Every node label names an entry of the ConfigMap the ClusterPolicy points at (a CPU
    pool's nodes have none: no device plugin runs there)."""
    problems = []
    [policy] = manifests.kind("ClusterPolicy")
    plugin = policy["spec"]["devicePlugin"]["config"]
    keys = set(manifests.config_map(plugin["name"])["data"])
    if plugin["default"] not in keys:
        problems.append(f"no '{plugin['default']}' entry in {plugin['name']}")
    manager = policy["spec"].get("migManager")
    mig_keys = set()
    if manager:
        mig_keys = set(yaml.safe_load(manifests.config_map(manager["config"]["name"])["data"]
                                      ["config.yaml"])["mig-configs"])
        if manager["config"]["default"] not in mig_keys:
            problems.append(f"no '{manager['config']['default']}' MIG config")
    for node_pool in manifests.kind("NodePool"):
        labels = node_pool["spec"]["template"]["metadata"]["labels"]
        name = node_pool["metadata"]["name"]
        if DEVICE_PLUGIN_LABEL in labels and labels[DEVICE_PLUGIN_LABEL] not in keys:
            problems.append(f"{name}: device-plugin config '{labels.get(DEVICE_PLUGIN_LABEL)}' "
                            "is not an entry of the ConfigMap")
        if MIG_LABEL in labels and labels[MIG_LABEL] not in mig_keys:
            problems.append(f"{name}: MIG config '{labels[MIG_LABEL]}' is not defined")
    return problems


_PLUGIN_KEYS = {"version", "flags", "resources", "sharing", "imex"}
_REPLICATED_KEYS = {"renameByDefault", "failRequestsGreaterThanOne", "resources"}


def plugin_entry_problems(key: str, text: str) -> list[str]:
    """What k8s-device-plugin's config parser (api/config/v1, v0.20.0) would refuse."""
    config = yaml.safe_load(text)
    problems = []
    if config.get("version") != "v1":
        problems.append(f"{key}: version is not v1")
    if set(config) - _PLUGIN_KEYS:
        problems.append(f"{key}: unknown keys {sorted(set(config) - _PLUGIN_KEYS)}")
    strategy = config.get("flags", {}).get("migStrategy")
    if strategy not in (None, "none", "single", "mixed"):
        problems.append(f"{key}: migStrategy {strategy}")
    for mode, sharing in config.get("sharing", {}).items():
        if mode not in ("timeSlicing", "mps") or set(sharing) - _REPLICATED_KEYS:
            problems.append(f"{key}: unknown sharing settings in {mode}")
            continue
        if not sharing.get("resources"):
            problems.append(f"{key}: no resources specified")
        for resource in sharing.get("resources", []):
            if resource.get("replicas", 0) < 2:
                problems.append(f"{key}: number of replicas must be >= 2")
    return problems


def mig_config_problems(plan: Plan, manifests: Manifests) -> list[str]:
    """Every mig-parted config names GPUs a node has and at most seven compute slices each."""
    problems = []
    [policy] = manifests.kind("ClusterPolicy")
    manager = policy["spec"].get("migManager")
    if manager is None:
        return problems
    configs = yaml.safe_load(manifests.config_map(manager["config"]["name"])["data"]
                             ["config.yaml"])
    if configs.get("version") != "v1":
        problems.append("mig-parted config version is not v1")
    most_gpus = max(p.gpus_per_node for p in plan.pools)
    for name, entries in configs["mig-configs"].items():
        for entry in entries:
            devices = entry["devices"]
            if devices != "all" and not all(0 <= d < most_gpus for d in devices):
                problems.append(f"{name}: devices {devices}")
            slices = sum(int(re.match(r"(\d+)g\.", profile).group(1)) * count  # type: ignore
                         for profile, count in entry.get("mig-devices", {}).items())
            if slices > 7:
                problems.append(f"{name}: {slices} compute slices on one GPU")
    return problems


def limit_problems(plan: Plan, manifests: Manifests) -> list[str]:
    """NodePool limits are the pool's ceiling: `max_nodes` nodes and their GPUs."""
    problems = []
    node_pools = {n["metadata"]["name"]: n for n in manifests.kind("NodePool")}
    for pool in plan.pools:
        if not pool.nodes:
            continue
        if pool.sharing == "mig":
            layouts = mig_node_layouts(pool)
            planned = sum(count for _, count in layouts.values())
            expected = {name: pool.max_nodes - planned + count
                        for name, (_, count) in layouts.items()}
        elif pool.shapes:
            # Several shapes: the ceilings of the shapes the plan buys, added up, per NodePool
            # (one per capacity type where the plan buys both spot and on-demand nodes).
            by_type: dict[str, list] = {}
            for shape in pool.shapes:
                if shape.nodes:
                    by_type.setdefault(shape.capacity_type, []).append(shape)
            for capacity_type, bought in by_type.items():
                name = f"{pool.name}-spot" if len(by_type) > 1 and capacity_type == "spot" \
                    else pool.name
                limits = node_pools[name]["spec"]["limits"]
                ceiling = {"nodes": str(sum(s.max_nodes for s in bought)),
                           WHOLE: str(sum(s.max_nodes * s.gpus_per_node for s in bought))}
                if limits != ceiling:
                    problems.append(f"{name}: limits {limits}, ceiling {ceiling}")
            continue
        else:
            expected = {pool.name: pool.max_nodes}
        for name, max_nodes in expected.items():
            limits = node_pools[name]["spec"]["limits"]
            gpus = {WHOLE: str(max_nodes * pool.gpus_per_node)} if pool.gpus_per_node else {}
            if limits != {"nodes": str(max_nodes), **gpus}:
                problems.append(f"{name}: limits {limits}, ceiling {max_nodes} nodes")
    return problems


def _label_problems(where: str, labels: dict[str, str]) -> list[str]:
    problems = []
    for key, value in labels.items():
        reason = k8s_names.qualified_name_problem(key) or k8s_names.label_value_problem(value)
        if reason:
            problems.append(f"{where}: label {key}={value}: {reason}")
    return problems


def name_problems(manifests: Manifests) -> list[str]:
    """Names, label keys and values, annotation keys and ConfigMap keys the API server takes;
    and plain YAML, without anchors."""
    problems = []
    label_named = {"Namespace", "InferenceService"}
    for kind, documents in manifests.by_kind.items():
        for document in documents:
            meta = document["metadata"]
            rule = k8s_names.dns1123_label_problem if kind in label_named \
                else k8s_names.dns1123_subdomain_problem
            if rule(meta["name"]):
                problems.append(f"{kind} {meta['name']}: {rule(meta['name'])}")
            problems += _label_problems(f"{kind} {meta['name']}", meta.get("labels", {}))
            for key in meta.get("annotations", {}):
                if k8s_names.qualified_name_problem(key):
                    problems.append(f"{kind} {meta['name']}: annotation {key}")
            if kind == "ConfigMap":
                problems += [f"ConfigMap {meta['name']}: key {key}"
                             for key in document["data"] if k8s_names.config_map_key_problem(key)]
            if kind == "NodePool":
                problems += _label_problems(f"NodePool {meta['name']}",
                                            document["spec"]["template"]["metadata"]["labels"])
                problems += [f"NodePool {meta['name']}: {key} is restricted"
                             for key in document["spec"]["template"]["metadata"]["labels"]
                             if k8s_names.reserved_domain(key) == "karpenter.sh"]
    problems += [f"{path}: YAML anchors" for path, text in manifests.texts.items()
                 if re.search(r"[&*]id\d{3}", text)]
    return problems


def surge_problems(plan: Plan, manifests: Manifests) -> list[str]:
    """A Deployment that surges has somewhere to put the surge pod: a planned node of its pool
    with a free unit of its GPU resource, or room below its NodePool's node limit."""
    problems = []
    launched = nodes(plan, manifests)
    limits = {n["metadata"]["name"]: int(n["spec"]["limits"]["nodes"])
              for n in manifests.kind("NodePool")}
    pools = {p.name: p for p in plan.pools}
    for deployment in manifests.kind("Deployment"):
        update = deployment["spec"]["strategy"]["rollingUpdate"]
        if update["maxSurge"] == 0:
            if update["maxUnavailable"] != 1:
                problems.append(f"{deployment['metadata']['name']}: neither surges nor "
                                "replaces a pod")
            continue
        model = plan.model(deployment["metadata"]["name"])
        pool = pools[model.pool]
        gpu = gpu_resource(model, pool)
        per_node_pool = Counter(node_pool_of(pool, n) for n in pool.nodes)
        if gpu is None:  # a CPU pod: room is a node below the NodePool's limit
            if not any(limits[np] > planned for np, planned in per_node_pool.items()):
                problems.append(f"{model.name}: surges, but {pool.name} has no room for the pod")
            continue
        resource, count = gpu
        if any(limits[np] > planned for np, planned in per_node_pool.items()
               if any(n.advertised.get(resource, 0) >= count for n in launched.values()
                      if n.node_pool == np)):
            continue
        free = False
        for planned in pool.nodes:
            used = sum(g[1] for m, _ in planned.replicas()
                       if (g := gpu_resource(plan.model(m), pool)) is not None
                       and g[0] == resource)
            node = launched_node(launched, pool, planned)
            free |= node.advertised.get(resource, 0) - used >= count
        if not free:
            problems.append(f"{model.name}: surges, but {pool.name} has no room for the pod")
    return problems


def pod_extended_requests(pod: dict) -> dict[str, int]:
    """The pod's requests of `nvidia.com/` resources as the scheduler adds them up: its
    containers and its native sidecars (init containers with `restartPolicy: Always`, which
    run beside them), or a one-off init container's alone where that is more."""
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    for container in pod.get("initContainers", []):
        own = {k: int(v) for k, v in container.get("resources", {}).get("requests", {}).items()
               if k.startswith("nvidia.com/")}
        if container.get("restartPolicy") == "Always":
            running = {k: running.get(k, 0) + own.get(k, 0) for k in {*running, *own}}
        else:
            peak = {k: max(peak.get(k, 0), running.get(k, 0) + own.get(k, 0))
                    for k in {*peak, *own}}
    for container in pod["containers"]:
        for key, value in container.get("resources", {}).get("requests", {}).items():
            if key.startswith("nvidia.com/"):
                running[key] = running.get(key, 0) + int(value)
    return {k: max(running.get(k, 0), peak.get(k, 0)) for k in {*running, *peak}}


def pool_pod_problems(plan: Plan, manifests: Manifests, pool_name: str, pod: dict,
                      who: str) -> list[str]:
    """Would a pod meant for `pool_name` (a profiling Job's, say) be admitted by a node of that
    pool, and by no other pool's? A node admits it when the pod's selector matches the node's
    labels (ones Karpenter knows before launch), the pod tolerates the node's NoSchedule and
    NoExecute taints, and Karpenter and the device plugin both count the GPU resource it
    requests. Empty when some node of the pool admits it and no other pool's node would."""
    launched = nodes(plan, manifests)
    selector = pod.get("nodeSelector", {})
    known = {k for n in launched.values() for k in n.labels} | KARPENTER_WELL_KNOWN
    problems = [f"{who}: selects '{key}', a label Karpenter does not know before a node exists"
                for key in selector if key not in known]
    extended = pod_extended_requests(pod)
    admitting, refusals = [], []
    for name, node in sorted(launched.items()):
        own = node.labels.get(DEVICE_PLUGIN_LABEL) == pool_name
        if not all(node.labels.get(k) == v for k, v in selector.items()):
            if own:
                refusals.append(f"{name}: the selector does not match")
            continue
        if not own:
            problems.append(f"{who}: its selector also matches {name}, a node of another pool")
            continue
        why = [f"does not tolerate {t['key']}" for t in node.taints
               if t["effect"] in ("NoSchedule", "NoExecute") and not any(
                   filters.tolerates(x, t) for x in pod.get("tolerations", []))]
        why += [f"Karpenter sees {node.karpenter_capacity.get(r, 0)} {r}, {c} requested"
                for r, c in extended.items() if node.karpenter_capacity.get(r, 0) < c]
        why += [f"advertises {node.advertised.get(r, 0)} {r}, {c} requested"
                for r, c in extended.items() if node.advertised.get(r, 0) < c]
        if why:
            refusals.append(f"{name}: {'; '.join(why)}")
        else:
            admitting.append(name)
    if not admitting:
        problems.append(f"{who}: no node of {pool_name} admits it ("
                        + ("; ".join(refusals) or "the pool has no NodePool") + ")")
    return problems
