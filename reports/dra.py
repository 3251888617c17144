"""Kubernetes Dynamic Resource Allocation with NVIDIA's DRA driver for GPUs: the claims that put
each replica on the GPU (or MIG slice) and the node the plan chose for it.

Under the device plugin a pod asks for "one shared GPU" and the plugin picks which; a
ResourceClaim instead names devices, and a device is allocated to one claim at a time. So
each planned node of a pool that shares GPUs becomes one ResourceClaim with a request per GPU
of the node: a shared GPU, the GPUs of a whole-GPU replica, each slice of a MIG GPU's layout
(held to one parent GPU by its UUID), or a GPU the plan leaves idle. Holding every GPU of a
node, the claim takes a node of its own, and only the replicas planned on a GPU reference its
request: every pod of a claim runs on the node the claim was allocated on, and no other pod
can reach its GPUs. Time-slicing or MPS settings go in the request's opaque `GpuConfig`
(api/nvidia.com/resource/v1beta1 of the driver); MPS clients get the equal share of memory
and SMs the plan packed them under. In exclusive pools nothing is shared: each pod gets a
claim of its own from a ResourceClaimTemplate.

A pod can use claims of its own namespace only, and one GPU may carry several teams' models,
so the models of a pool that shares GPUs run in the pool's namespace (`<prefix><pool>`), each
pod labelled with its team. A Deployment has one pod template, so a model gets one Deployment
per planned GPU (or slice) it uses.

The DeviceClasses are the ones the driver's Helm chart installs (`gpu.nvidia.com`,
`mig.nvidia.com`); the driver's `TimeSlicingSettings` and `MPSSupport` feature gates accept
the sharing settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.planfile import ModelPlan, NodePlan, Plan, PoolPlan
from planner.registry.kubernetes import gpu_request_name, gpu_slot

API_VERSION = "resource.k8s.io/v1"
DRIVER = "gpu.nvidia.com"
GPU_CLASS = "gpu.nvidia.com"
MIG_CLASS = "mig.nvidia.com"
GPU_CONFIG_API_VERSION = "resource.nvidia.com/v1beta1"
PARENT_UUID = f"{DRIVER}/parentUUID"
POD_CLAIM = "gpu"  # the name a pod gives the claim it references
FEATURE_GATES = ("TimeSlicingSettings", "MPSSupport")


def uses_dra(plan: Plan) -> bool:
    return plan.metadata.sharing_backend == "dra"


def pins(plan: Plan, pool: PoolPlan) -> bool:
    """Whether `pool`'s replicas use node claims (DRA, and GPUs shared or sliced;
    a CPU pool has none)."""
    return uses_dra(plan) and pool.gpu_type is not None and pool.sharing != "exclusive"


def pool_namespace(plan: Plan, pool: PoolPlan) -> str:
    """Where the claims of a pool that shares GPUs, and the models that use them, live."""
    return f"{plan.metadata.namespace_prefix}{pool.name}"


def claim_name(node: NodePlan) -> str:
    return node.name


@dataclass(frozen=True)
class Slot:
    """One request of a node claim and the replicas of one model planned on it."""

    node: NodePlan
    request: str
    replicas: int


@dataclass(frozen=True)
class Request:
    """One request of a node claim, and the replicas planned on it: a shared GPU (`shared`,
    with the pool's sharing settings), the GPUs of one whole-GPU replica (`count`), one slice of
    a MIG GPU's layout (`profile`), or a GPU the plan leaves idle (no replicas)."""

    gpu: int
    name: str
    replicas: tuple[str, ...]
    profile: str | None = None
    count: int = 1
    shared: bool = False


def requests(pool: PoolPlan, node: NodePlan) -> list[Request]:
    """The node claim's requests: every GPU of the node, idle ones and the free slices of a
    MIG layout included, so the claim holds all of the node's GPUs and takes a node of its
    own: the replicas planned on a node share a node with each other only."""
    found = []
    by_index = {gpu.index: gpu for gpu in node.gpus}
    whole: dict[tuple[str, int], list[int]] = {}
    for planned in node.gpus:
        if planned.whole:
            for replica in planned.replicas:
                whole.setdefault((replica.model, replica.replica), []).append(planned.index)
    for (model, _), indexes in whole.items():
        found.append(Request(indexes[0], gpu_request_name(indexes[0]), (model,),
                             count=len(indexes)))
    for index in range(pool.shape(node).gpus_per_node):
        gpu = by_index.get(index)
        if gpu is None:
            found.append(Request(index, gpu_request_name(index), ()))
        elif gpu.mig_layout:
            waiting = list(gpu.replicas)
            for j, profile in enumerate(gpu.mig_layout):
                taken = next((r for r in waiting if r.slice == profile), None)
                if taken is not None:
                    waiting.remove(taken)
                found.append(Request(index, gpu_request_name(index, j),
                                     (taken.model,) if taken else (), profile=profile))
        elif not gpu.whole:
            found.append(Request(index, gpu_request_name(index),
                                 tuple(r.model for r in gpu.replicas), shared=True))
    return sorted(found, key=lambda r: (r.gpu, r.name))


def slot_label(plan: Plan) -> str:
    """The pod label that tells a model's per-GPU Deployments apart."""
    return f"{plan.metadata.label_domain}/gpu-request"


def slot_value(slot: Slot) -> str:
    """The slot's label value, which ends the names of its workloads."""
    return gpu_slot(slot.node.index, slot.request)


def slots(pool: PoolPlan, model: ModelPlan) -> list[Slot]:
    """The requests `model`'s replicas use in `pool`, in node and GPU order."""
    return [Slot(node, request.name, request.replicas.count(model.name))
            for node in pool.nodes for request in requests(pool, node)
            if model.name in request.replicas]


def _gpu_config(pool: PoolPlan) -> dict:
    """The driver's GpuConfig for one shared GPU of `pool`."""
    if pool.sharing == "mps":
        sharing = {"strategy": "MPS", "mpsConfig": {
            "defaultActiveThreadPercentage": 100 // pool.replicas_per_gpu,
            "defaultPinnedDeviceMemoryLimit":
                f"{pool.gpu_memory_mib // pool.replicas_per_gpu}Mi"}}
    else:
        sharing = {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Default"}}
    return {"apiVersion": GPU_CONFIG_API_VERSION, "kind": "GpuConfig", "sharing": sharing}


def _profile_selector(profile: str) -> list[dict]:
    return [{"cel": {"expression": f"device.attributes['{DRIVER}'].profile == '{profile}'"}}]


def _device_request(request: Request) -> dict:
    if request.profile is not None:
        return {"name": request.name, "exactly": {"deviceClassName": MIG_CLASS,
                                                  "selectors": _profile_selector(request.profile)}}
    exactly: dict = {"deviceClassName": GPU_CLASS}
    if request.count > 1:
        exactly |= {"allocationMode": "ExactCount", "count": request.count}
    return {"name": request.name, "exactly": exactly}


def node_claim(plan: Plan, pool: PoolPlan, node: NodePlan,
               managed_by: dict[str, str]) -> dict:
    """The ResourceClaim of a planned node: a request per GPU, whole-GPU replica or MIG slice
    on it, the slices of one GPU constrained to one parent GPU."""
    found = requests(pool, node)
    devices: dict = {"requests": [_device_request(r) for r in found]}
    groups = [[r.name for r in found if r.gpu == gpu.index and r.profile is not None]
              for gpu in node.gpus]
    constraints = [{"requests": group, "matchAttribute": PARENT_UUID}
                   for group in groups if len(group) > 1]
    if constraints:
        devices["constraints"] = constraints
    config = [{"requests": [r.name], "opaque": {"driver": DRIVER,
                                                 "parameters": _gpu_config(pool)}}
              for r in found if r.shared]
    if config:
        devices["config"] = config
    return {"apiVersion": API_VERSION, "kind": "ResourceClaim",
            "metadata": {"name": claim_name(node), "namespace": pool_namespace(plan, pool),
                         "labels": {**managed_by, f"{plan.metadata.label_domain}/pool":
                                    pool.name}},
            "spec": {"devices": devices}}


def whole_gpu_template(model: ModelPlan, namespace: str, managed_by: dict[str, str]) -> dict:
    """A ResourceClaimTemplate: each pod of `model` gets its own claim of whole GPUs."""
    return {"apiVersion": API_VERSION, "kind": "ResourceClaimTemplate",
            "metadata": {"name": template_name(model), "namespace": namespace,
                         "labels": {**managed_by, "app.kubernetes.io/name": model.name}},
            "spec": {"spec": {"devices": {"requests": [{"name": "gpus", "exactly": {
                "deviceClassName": GPU_CLASS, "allocationMode": "ExactCount",
                "count": model.gpus_per_replica}}]}}}}


def template_name(model: ModelPlan) -> str:
    return f"{model.name}-gpus"


def pod_claims(model: ModelPlan, slot: Slot | None) -> tuple[list[dict], list[dict]]:
    """The pod's `resourceClaims` and its container's `resources.claims`: its slot's request
    of the node claim, or a claim of whole GPUs from the model's template."""
    if slot is None:
        return ([{"name": POD_CLAIM, "resourceClaimTemplateName": template_name(model)}],
                [{"name": POD_CLAIM}])
    return ([{"name": POD_CLAIM, "resourceClaimName": claim_name(slot.node)}],
            [{"name": POD_CLAIM, "request": slot.request}])


def claim_objects(plan: Plan, managed_by: dict[str, str]) -> dict[str, list[dict]]:
    """Every pool's node claims by pool name (pools that share GPUs, with planned nodes)."""
    result = {}
    for pool in plan.pools:
        if pins(plan, pool):
            if pool.nodes:
                result[pool.name] = [node_claim(plan, pool, node, managed_by)
                                     for node in pool.nodes]
    return result
