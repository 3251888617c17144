"""The pods each workload makes, with what the scheduler reads of them: namespace, labels,
spec, the summed resource requests, and the priority its PriorityClass gives it."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from planner.rules import modelmesh
from planner.simulation.manifests import Manifests

CPU = "cpu"  # millicores
MEMORY = "memory"  # MiB
PODS = "pods"

# resource.Quantity's suffixes (k8s.io/apimachinery pkg/api/resource/suffix.go)
_SUFFIXES = {suffix: Decimal(2) ** (10 * power)
             for power, suffix in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), start=1)}
_SUFFIXES.update({suffix: Decimal(10) ** power for suffix, power in
                  (("n", -9), ("u", -6), ("m", -3), ("", 0), ("k", 3), ("M", 6), ("G", 9),
                   ("T", 12), ("P", 15), ("E", 18))})
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$")


def quantity(value: object) -> Decimal:
    """A Kubernetes quantity (`2000m`, `4Gi`, `1e3`, `8`) as a number of base units."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"'{value}' is not a Kubernetes quantity")
    number, exponent, suffix = match.groups()
    try:
        amount = Decimal(number + (exponent or ""))
    except InvalidOperation:
        raise ValueError(f"'{value}' is not a Kubernetes quantity") from None
    return amount * _SUFFIXES[suffix or ""]


def _amount(resource: str, value: object) -> int:
    """Requests in the simulation's units: CPU in millicores, memory in MiB (rounded up, as a
    request of a byte more needs that byte), anything else as a count."""
    amount = quantity(value)
    if resource == CPU:
        return math.ceil(amount * 1000)
    if resource == MEMORY:
        return math.ceil(amount / 2**20)
    return math.ceil(amount)


def requests(spec: dict) -> dict[str, int]:
    """What the scheduler counts for a pod: per resource the sum over its containers, or the
    largest init container's when that is more (an extended resource requested only in limits
    is requested at its limit)."""

    def of(container: dict) -> dict[str, int]:
        resources = container.get("resources") or {}
        asked = dict(resources.get("requests") or {})
        for name, value in (resources.get("limits") or {}).items():
            if name not in asked and name not in (CPU, MEMORY):
                asked[name] = value
        return {name: _amount(name, value) for name, value in asked.items()}

    total: dict[str, int] = {}
    for container in spec.get("containers") or []:
        for name, amount in of(container).items():
            total[name] = total.get(name, 0) + amount
    for container in spec.get("initContainers") or []:
        for name, amount in of(container).items():
            total[name] = max(total.get(name, 0), amount)
    return total


@dataclass(frozen=True)
class Pod:
    """A pod as the scheduler reads it. `model` and `replica` say which planned replica it is."""

    namespace: str
    labels: dict[str, str]
    spec: dict
    name: str = ""
    model: str = ""
    replica: int = 0
    priority: int = 0
    preempts: bool = True
    requests: dict[str, int] = field(default_factory=dict)
    refused: str | None = None
    """Why the API server would not create the pod, if it would not."""


NAME_LABEL = "app.kubernetes.io/name"
ARCH = "kubernetes.io/arch"


@dataclass(frozen=True)
class Workload:
    """A Deployment, a Job or a CronJob's Job (one run, its `parallelism` pods at once), or an
    InferenceService's predictor (which runs up to maxReplicas pods): its pod template, and
    the model it serves (its pods' `app.kubernetes.io/name`)."""

    name: str
    model: str
    namespace: str
    labels: dict[str, str]
    spec: dict
    replicas: int


def workloads(manifests: Manifests) -> list[Workload]:
    """Every workload, by name."""
    found = []
    for deployment in manifests.kind("Deployment"):
        meta = deployment["metadata"]
        template = deployment["spec"]["template"]
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        found.append(Workload(meta["name"], labels.get(NAME_LABEL, meta["name"]),
                              meta.get("namespace", "default"), labels, template["spec"],
                              int(deployment["spec"].get("replicas", 1))))
    for kind, job_of in (("Job", lambda d: d["spec"]),
                         ("CronJob", lambda d: d["spec"]["jobTemplate"]["spec"])):
        for document in manifests.kind(kind):  # a run: its pods all start together
            meta, job = document["metadata"], job_of(document)
            template = job["template"]
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            found.append(Workload(meta["name"], labels.get(NAME_LABEL, meta["name"]),
                                  meta.get("namespace", "default"), labels, template["spec"],
                                  int(job.get("parallelism", 1))))
    for service in manifests.kind("InferenceService"):
        meta = service["metadata"]
        if modelmesh_mode(service):
            continue  # loaded into a ServingRuntime's pods
        predictor = service["spec"]["predictor"]
        labels = dict(meta.get("labels") or {})
        replicas = predictor.get("maxReplicas") or predictor.get("minReplicas") or 1
        found.append(Workload(meta["name"], labels.get(NAME_LABEL, meta["name"]),
                              meta.get("namespace", "default"), labels, predictor,
                              int(replicas)))
    found += [runtime_workload(runtime) for runtime in manifests.kind("ServingRuntime")]
    return sorted(found, key=lambda w: w.name)


def modelmesh_mode(service: dict) -> bool:
    """Whether an InferenceService is ModelMesh's to load, not KServe's to run as pods."""
    annotations = service["metadata"].get("annotations") or {}
    return annotations.get(modelmesh.DEPLOYMENT_MODE_ANNOTATION) == modelmesh.DEPLOYMENT_MODE


def runtime_workload(runtime: dict) -> Workload:
    """The Deployment the ModelMesh controller makes of a ServingRuntime: its containers with
    the ones the controller adds (`planner.rules.modelmesh.INJECTED`), the runtime's node
    selector, tolerations and affinity, and a node affinity to amd64 or arm64 nodes unless the
    runtime has one of its own. The pods carry the runtime's labels; the model they serve is
    their `app.kubernetes.io/name`, else the runtime's name."""
    meta, spec = runtime["metadata"], runtime["spec"]
    name = meta["name"]
    deployment = modelmesh.deployment_name(name)
    injected = [{"name": container, "resources": {"requests": {CPU: f"{cpu}m",
                                                               MEMORY: f"{memory}Mi"}}}
                for container, cpu, memory in modelmesh.INJECTED]
    containers = [*(spec.get("containers") or []), *injected]
    affinity = dict(spec.get("affinity") or {})
    affinity.setdefault("nodeAffinity", {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": ARCH, "operator": "In", "values": ["amd64", "arm64"]}]}]}})
    pod_spec = {"containers": containers, "nodeSelector": dict(spec.get("nodeSelector") or {}),
                "tolerations": list(spec.get("tolerations") or []), "affinity": affinity}
    labels = {"modelmesh-service": modelmesh.SERVICE_NAME, "name": deployment,
              NAME_LABEL: "modelmesh-controller", **(spec.get("labels") or {})}
    model = (spec.get("labels") or {}).get(NAME_LABEL, name)
    return Workload(deployment, model, meta.get("namespace", "default"), labels, pod_spec,
                    int(spec.get("replicas") or modelmesh.PODS_PER_RUNTIME))


def replicas_by_model(manifests: Manifests) -> dict[str, int]:
    """How many pods the workloads of each model run together."""
    counts: dict[str, int] = {}
    for workload in workloads(manifests):
        counts[workload.model] = counts.get(workload.model, 0) + workload.replicas
    return counts


def pods_of(manifests: Manifests) -> list[Pod]:
    """Every pod the workloads make, named `<workload>-<n>`, numbered per model across its
    workloads, with its priority. The Priority admission plugin refuses a pod whose
    PriorityClass does not exist."""
    classes = {c["metadata"]["name"]: c for c in manifests.kind("PriorityClass")}
    pods = []
    numbered: dict[str, int] = {}
    for workload in workloads(manifests):
        class_name = workload.spec.get("priorityClassName")
        priority_class = classes.get(class_name or "", {})
        refused = f"no PriorityClass '{class_name}'" if class_name and not priority_class \
            else None
        for index in range(workload.replicas):
            replica = numbered.get(workload.model, 0)
            numbered[workload.model] = replica + 1
            pods.append(Pod(workload.namespace, dict(workload.labels), workload.spec,
                            name=f"{workload.name}-{index}", model=workload.model,
                            replica=replica, priority=int(priority_class.get("value", 0)),
                            preempts=priority_class.get("preemptionPolicy") != "Never",
                            requests=requests(workload.spec), refused=refused))
    return pods
