"""The nodes the NodePools would create for a plan: as many as the plan places on each
NodePool, each named as the plan names it, with the labels and taints of the NodePool's
template, the allocatable CPU and memory of its instance type, and the GPUs the GPU Operator
would make it advertise (the device plugin's sharing entry and the MIG manager's layout that
the node's labels select)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from planner.planfile import Plan, PoolPlan, ShapePlan
from planner.registry.kubernetes import DEVICE_PLUGIN_CONFIG_LABEL, MIG_CONFIG_LABEL
from planner.simulation.filters import HOSTNAME
from planner.simulation.manifests import Manifests
from planner.simulation.pods import ARCH, CPU, MEMORY, PODS
from reports.gpu_operator import WHOLE_GPU, node_pool_of
from reports.karpenter import CAPACITY_TYPE_LABEL, INSTANCE_TYPE_LABEL

NODEPOOL_LABEL = "karpenter.sh/nodepool"
ZONE = "topology.kubernetes.io/zone"
# the kubelet labels every node with its architecture; Karpenter launches amd64 unless a
# NodePool requires another
NODE_ARCH = "amd64"
MAX_PODS = 110  # the kubelet's default maxPods
UNBOUNDED = 10**15  # a pool without an instance type: CPU and memory never run out


@dataclass(frozen=True)
class Device:
    """One schedulable device as the device plugin advertises it: a whole GPU, a MIG slice
    (`slice`), or a GPU shared by `replicas` pods (time-slicing or MPS, `sharing`)."""

    resource: str
    gpu: int
    slice: str | None = None
    replicas: int = 1
    sharing: str | None = None


@dataclass(frozen=True)
class Node:
    name: str
    pool: str
    node_pool: str
    labels: dict[str, str]
    taints: tuple[dict, ...]
    allocatable: dict[str, int]
    devices: tuple[Device, ...]
    gpu_memory_mib: int
    price_per_node_hour: float


def _requirement_labels(node_pool: dict) -> dict[str, str]:
    """The labels a node gets from requirements that allow exactly one value."""
    return {r["key"]: r["values"][0]
            for r in node_pool["spec"]["template"]["spec"].get("requirements") or []
            if r.get("operator") == "In" and len(r.get("values") or []) == 1}


def _config_data(manifests: Manifests, config: dict | None, labels: dict[str, str],
                 label: str) -> tuple[str, dict[str, str]] | None:
    """The entry name a node's label selects (else the default) and the data of the ConfigMap
    the ClusterPolicy names, as the GPU Operator reads them."""
    if not config:
        return None
    config_map = manifests.named("ConfigMap", config.get("name", ""))
    if config_map is None:
        return None
    return str(labels.get(label) or config.get("default") or ""), config_map.get("data") or {}


def _devices(manifests: Manifests, labels: dict[str, str], gpus: int) -> tuple[Device, ...]:
    """What the device plugin advertises on a node with `gpus` GPUs, after the MIG manager
    applied the node's mig-parted config (mixed strategy: one resource per profile), with
    the sharing entry's replicas and renaming applied."""
    [policy, *_] = manifests.kind("ClusterPolicy") or [{"spec": {}}]
    spec = policy.get("spec") or {}
    slices: dict[int, list[str]] = {}
    mig = _config_data(manifests, (spec.get("migManager") or {}).get("config"), labels,
                       MIG_CONFIG_LABEL)
    if mig is not None and "config.yaml" in mig[1]:
        key, data = mig
        configs = yaml.safe_load(data["config.yaml"]).get("mig-configs") or {}
        for entry in configs.get(key) or []:
            if entry.get("mig-enabled"):
                indexes = range(gpus) if entry["devices"] == "all" else entry["devices"]
                for index in indexes:
                    slices[index] = [profile for profile, count in
                                     sorted((entry.get("mig-devices") or {}).items())
                                     for _ in range(count)]
    plugin = _config_data(manifests, (spec.get("devicePlugin") or {}).get("config"), labels,
                          DEVICE_PLUGIN_CONFIG_LABEL)
    shared: dict[str, tuple[str, int, str]] = {}
    if plugin is not None and plugin[0] in plugin[1]:
        key, data = plugin
        for mode, sharing in (yaml.safe_load(data[key]).get("sharing") or {}).items():
            for resource in sharing.get("resources") or []:
                name = resource["name"]
                shared[name] = (f"{name}.shared" if sharing.get("renameByDefault") else name,
                                int(resource["replicas"]), mode)
    devices = []
    for index in range(gpus):
        for profile in slices.get(index, []) or [None]:  # type: ignore[list-item]
            resource = WHOLE_GPU if profile is None else f"nvidia.com/mig-{profile}"
            name, replicas, mode = shared.get(resource, (resource, 1, None))
            devices.append(Device(name, index, profile, replicas, mode))
    return tuple(devices)


def make_node(pool: PoolPlan, name: str, node_pool: dict, manifests: Manifests,
              zone: str, shape: ShapePlan | None = None) -> Node:
    """A node of `node_pool` named `name` (its hostname); of `shape` in a pool of several
    node shapes (its instance type and capacity type as labels, its GPUs and allocatable);
    in `zone` unless its NodePool allows one zone only."""
    template = node_pool["spec"]["template"]
    labels = {ARCH: NODE_ARCH, **(template.get("metadata") or {}).get("labels", {}), ZONE: zone,
              **_requirement_labels(node_pool),
              NODEPOOL_LABEL: node_pool["metadata"]["name"], HOSTNAME: name}
    cpu_milli, memory_mib = pool.node_cpu_milli, pool.node_memory_mib
    gpus, price = pool.gpus_per_node, pool.price_per_node_hour
    if shape is not None:
        labels |= {INSTANCE_TYPE_LABEL: shape.instance_type,
                   CAPACITY_TYPE_LABEL: shape.capacity_type}
        cpu_milli, memory_mib = shape.node_cpu_milli, shape.node_memory_mib
        gpus, price = shape.gpus_per_node, shape.price_per_node_hour
    devices = _devices(manifests, labels, gpus)
    allocatable = {CPU: cpu_milli or UNBOUNDED, MEMORY: memory_mib or UNBOUNDED,
                   PODS: MAX_PODS}
    for device in devices:
        allocatable[device.resource] = allocatable.get(device.resource, 0) + device.replicas
    return Node(name, pool.name, node_pool["metadata"]["name"], labels,
                tuple(template["spec"].get("taints") or []), allocatable, devices,
                pool.gpu_memory_mib, price)


def zone_name(index: int) -> str:
    return f"zone-{index + 1}"


def planned_nodes(plan: Plan, manifests: Manifests, zones: int = 1) -> tuple[list[Node],
                                                                              list[str]]:
    """The nodes of the plan, in the plan's order, each in the zone its NodePool pins it to
    (a pool that lists zones), the others assigned round-robin to `zones` zones (Karpenter
    picks theirs); and the planned nodes no NodePool of the manifests would create."""
    nodes, missing = [], []
    count = 0
    for pool in plan.pools:
        for planned in pool.nodes:
            node_pool = manifests.named("NodePool", node_pool_of(pool, planned))
            if node_pool is None:
                missing.append(f"{planned.name}: no NodePool '{node_pool_of(pool, planned)}' "
                               "in the manifests")
                continue
            nodes.append(make_node(pool, planned.name, node_pool, manifests,
                                   zone_name(count % zones),
                                   pool.shape(planned) if pool.shapes else None))
            count += 1
    return nodes, missing
