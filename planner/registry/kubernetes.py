"""Rules that keep the manifests of a plan acceptable to the cluster that applies them.

Single values are checked by their schemas (`planner.k8s_names`); what is checked here combines
files or settings: the one provider of a cluster, names the manifests compose from several
values, labels the planner sets itself, and sharing configs the device plugin accepts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from planner import k8s_names
from planner.errors import Problem
from planner.registry.yamlsource import YamlDocument, format_loc
from planner.rules.batch import CRONJOB_NAME_MAX, JOB_NAME_MAX
from planner.rules.capacity import replicas_per_gpu
from planner.schemas import Cluster, ModelSpec, PlannerConfig, Policy, Pool

DRA_MIN_MINOR = 34  # resource.k8s.io/v1 is served, and DRA on by default, from Kubernetes 1.34

DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
KSERVE_PREDICTOR_SUFFIX = "-predictor"


def pool_label(domain: str) -> str:
    """The node label that names a node's pool; pods select their pool by it."""
    return f"{domain}/pool"


class _Taint(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def effect(self) -> str: ...


def tolerations(taints: Iterable[_Taint]) -> list[dict]:
    """What lets a pod onto a pool's nodes: each of the pool's taints tolerated exactly (its
    key, value and effect)."""
    return [{"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
            for t in taints]


def gpu_request_name(gpu: int, slice_index: int | None = None) -> str:
    """A request of a node's ResourceClaim under DRA: one GPU of the node, or one slice of its
    MIG layout."""
    return f"gpu-{gpu}" if slice_index is None else f"gpu-{gpu}-slice-{slice_index}"


def gpu_slot(node_index: int, request: str) -> str:
    """Under DRA, the planned GPU or slice of one of a model's workloads: the value of its pods'
    slot label, and the end of the workload's name (`<model>-<slot>`)."""
    return f"{node_index}-{request}"


def last_gpu_slot(cluster: Cluster, pool: Pool) -> str | None:
    """The longest slot a replica in `pool` may be planned on (its last node, GPU and MIG
    slice), or None where the pool's replicas get no slot: no DRA, no GPUs, or whole GPUs of
    an exclusive pool, claimed from a template."""
    if cluster.sharing_backend != "dra" or pool.gpu_type is None or pool.sharing == "exclusive":
        return None
    shapes = pool.shapes()
    last_node = sum(shape.max_nodes or 0 for shape in shapes) - 1
    last_gpu = max(shape.gpus_per_node for shape in shapes) - 1
    gpu = cluster.gpu_types.get(pool.gpu_type)
    last_slice = None
    if pool.sharing == "mig" and gpu is not None and gpu.mig_layouts:
        last_slice = max(len(layout) for layout in gpu.mig_layouts) - 1
    return gpu_slot(last_node, gpu_request_name(last_gpu, last_slice))


def batch_name_problems(model: ModelSpec, cluster: Cluster, pools: list[Pool]) -> list[str]:
    """A batch model's longest workload name, where the API server would refuse it: a CronJob's
    name has at most CRONJOB_NAME_MAX characters (its Jobs' names add 11), a Job's at most
    JOB_NAME_MAX (its pods carry it as a label). Under DRA a model has one per planned GPU or
    slice, named after it (`gpu_slot`): the longest is its name and the last slot of a pool
    that admits it. Every admitting pool counts, not only the one a plan chooses: the
    registry is checked before placement, and a later plan (other traffic, prices or pools)
    may place the model in any of them, so a name valid for one plan must stay valid."""
    if model.batch is None:
        return []
    if model.batch.schedule is not None:
        limit, rule = CRONJOB_NAME_MAX, (f"a CronJob's name has at most {CRONJOB_NAME_MAX} "
                                         "characters (its Jobs add 11)")
    else:
        limit, rule = JOB_NAME_MAX, (f"a Job's name has at most {JOB_NAME_MAX} characters (its "
                                     "pods carry it as a label)")
    if len(model.name) > limit:
        return [f"{rule}, and '{model.name}' has {len(model.name)}; shorten it"]
    slots = [(len(slot), pool.name, slot) for pool in pools
             if (slot := last_gpu_slot(cluster, pool)) is not None]
    if not slots:
        return []
    _, pool, slot = max(slots)
    name = f"{model.name}-{slot}"
    if len(name) <= limit:
        return []
    return [f"{rule}; under sharing_backend dra the model has one per planned GPU or slice, "
            f"named after it, and in pool {pool} the last is '{name}', {len(name)} characters; "
            f"shorten the model's name by {len(name) - limit}"]


def mig_layout_name(pool: str, index: int) -> str:
    """The MIG manager config (and NodePool) of a MIG pool's `index`-th node layout."""
    return f"{pool}-layout-{index}"


def zone_node_pool_name(node_pool: str, zone: str) -> str:
    """The NodePool of a pool (or MIG layout) `node_pool` in one of its pool's zones."""
    return f"{node_pool}-{zone}"


def _at(doc: YamlDocument, loc: tuple, message: str) -> Problem:
    return Problem(doc.path, doc.line_of(loc), format_loc(loc) or None, message)


def cluster_problems(config: PlannerConfig, cluster: Cluster, doc: YamlDocument,
                     policy: Policy) -> list[Problem]:
    """One provider, labels the planner owns, MIG layout names, sharing the plugin accepts."""
    problems = []
    provider = cluster.node_class
    owned = {pool_label(config.label_domain), DEVICE_PLUGIN_CONFIG_LABEL, MIG_CONFIG_LABEL}
    for i, pool in enumerate(cluster.pools):
        for field in ("group", "kind"):
            value = getattr(pool.node_class, field, None) if pool.node_class else None
            if value is not None and value != getattr(provider, field):
                problems.append(_at(doc, ("pools", i, "node_class", field),
                                    f"'{value}' differs from the cluster's node class "
                                    f"{provider.group}/{provider.kind}; one Karpenter "
                                    "installation runs one provider, so a pool may only name "
                                    "another node class of it (node_class: {name: ...}); plan "
                                    "another provider's pools in a registry of their own"))
        for key in pool.labels:
            if key in owned:
                problems.append(_at(doc, ("pools", i, "labels", key),
                                    f"the planner sets '{key}' on the pool's nodes itself; "
                                    "remove it"))
        if pool.sharing in ("time-slicing", "mps") and replicas_per_gpu(pool, policy) < 2:
            problems.append(_at(doc, ("pools", i, "max_models_per_gpu"),
                                f"a {pool.sharing} pool shares each GPU among at least 2 "
                                "replicas (the device plugin refuses fewer); raise "
                                "max_models_per_gpu or set sharing: exclusive"))
        if cluster.sharing_backend == "dra" and pool.gpu_type is not None \
                and pool.sharing != "exclusive":
            namespace = f"{config.namespace_prefix}{pool.name}"
            reason = k8s_names.dns1123_label_problem(namespace)
            if reason:
                problems.append(_at(doc, ("pools", i, "name"),
                                    f"under sharing_backend dra the pool's models run in its "
                                    f"namespace '{namespace}' (namespace_prefix + pool), which "
                                    f"is {reason}; shorten the pool's name or the prefix"))
        gpu = cluster.gpu_types.get(pool.gpu_type or "")
        if pool.sharing == "mig" and gpu is not None and gpu.mig_layouts:
            longest = mig_layout_name(pool.name, len(gpu.mig_layouts) - 1)
            reason = k8s_names.label_value_problem(longest)
            if reason:
                problems.append(_at(doc, ("pools", i, "name"),
                                    f"the MIG layout name '{longest}' built from it is "
                                    f"{reason}; shorten the pool's name"))
        base = mig_layout_name(pool.name, max(len(gpu.mig_layouts) - 1, 0)) \
            if pool.sharing == "mig" and gpu is not None else pool.name
        if pool.sharing != "mig" and len({s.capacity_type for s in pool.shapes()}) > 1:
            base += "-spot"  # its spot NodePool's, where the plan may buy both capacity types
        for z, zone in enumerate(pool.zones):
            name = zone_node_pool_name(base, zone)
            reason = k8s_names.label_value_problem(name)
            if reason:
                problems.append(_at(doc, ("pools", i, "zones", z),
                                    f"the NodePool name '{name}' built from the pool and this "
                                    f"zone (karpenter.sh/nodepool label) is {reason}; shorten "
                                    "the pool's name"))
    minor = int(config.kubernetes_version.split(".")[1])
    if cluster.sharing_backend == "dra" and minor < DRA_MIN_MINOR:
        problems.append(_at(doc, ("sharing_backend",),
                            f"dra needs Kubernetes 1.{DRA_MIN_MINOR} or later (resource.k8s.io/v1, "
                            f"Dynamic Resource Allocation on by default), but planner.yaml's "
                            f"kubernetes_version is {config.kubernetes_version}; raise it or use "
                            "sharing_backend: device-plugin"))
    return problems


def namespace_problems(config: PlannerConfig, models: dict[str, ModelSpec],
                       documents: dict[str, YamlDocument]) -> list[Problem]:
    """Every team's Namespace, `namespace_prefix` + team, must be a DNS-1123 label."""
    problems = []
    for name, model in models.items():
        namespace = f"{config.namespace_prefix}{model.team}"
        reason = k8s_names.dns1123_label_problem(namespace)
        if reason:
            problems.append(_at(documents[name], ("team",),
                                f"the team's namespace '{namespace}' (namespace_prefix + team) "
                                f"is {reason}; shorten the team or the prefix"))
    return problems


def kserve_name_problem(name: str) -> str | None:
    """Why KServe refuses `name` for an InferenceService: it must start with a letter, and its
    predictor's objects (`<name>-predictor`) must stay DNS-1123 labels."""
    predictor = f"{name}{KSERVE_PREDICTOR_SUFFIX}"
    if not name[:1].isalpha():
        return "does not start with a letter, which KServe requires"
    if k8s_names.dns1123_label_problem(predictor):
        return (f"makes the predictor name '{predictor}' longer than "
                f"{k8s_names.DNS1123_LABEL_MAX} characters")
    return None


def kserve_problems(models: dict[str, ModelSpec],
                    documents: dict[str, YamlDocument]) -> list[Problem]:
    """Models whose names KServe refuses, located in their files."""
    return [_at(documents[name], ("name",),
                f"'{name}' {reason}; rename the model for --target kserve")
            for name in models if (reason := kserve_name_problem(name))]
