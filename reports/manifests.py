"""Kubernetes manifests that enforce a plan, built as data and dumped as YAML.

Per model a Deployment (or a KServe InferenceService) pinned to its pool, requesting the GPU
resource its pool's sharing mode advertises, with a PodDisruptionBudget when it has several
replicas; per pool the NVIDIA device-plugin config (and the MIG layouts) and a Karpenter
NodePool; for the cluster a PriorityClass per priority and a Namespace per team.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

import yaml

from planner.planfile import ModelPlan, Plan, PoolPlan
from planner.registry.kubernetes import DEVICE_PLUGIN_CONFIG_LABEL, MIG_CONFIG_LABEL, pool_label

MANAGED_BY = {"app.kubernetes.io/managed-by": "placement-planner"}
GPU_OPERATOR_NAMESPACE = "gpu-operator"


def _domain(plan: Plan) -> str:
    return plan.metadata.label_domain


def pool_selector(plan: Plan, pool: PoolPlan) -> dict[str, str]:
    """The node labels a pod of `pool` selects: labels the pool's NodePools set, nothing that
    appears only after a node joins (Karpenter could not tell which NodePool provides it)."""
    return {**pool.labels, pool_label(_domain(plan)): pool.name}


def namespace(plan: Plan, team: str) -> str:
    return f"{plan.metadata.namespace_prefix}{team}"


def gpu_resource(model: ModelPlan, pool: PoolPlan) -> tuple[str, int]:
    """The extended resource a replica requests, and how many."""
    if model.whole_gpus:
        return "nvidia.com/gpu", model.gpus_per_replica
    if pool.sharing == "mig":
        return f"nvidia.com/mig-{model.mig_slice}", 1
    return "nvidia.com/gpu.shared", 1


def _dump(documents: list[dict]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, width=100)


def _pod_spec(plan: Plan, model: ModelPlan, pool: PoolPlan, container_name: str) -> dict:
    resource, count = gpu_resource(model, pool)
    limits = {"max_concurrency": model.limits.max_concurrency,
              "queue_limit": model.limits.queue_limit, "timeout_ms": model.limits.timeout_ms}
    container = {
        "name": container_name,
        "image": model.serving.image,
        "ports": [{"name": "http", "containerPort": model.serving.port}],
        "env": [{"name": key.upper(), "value": str(value)} for key, value in limits.items()],
        "resources": {
            "requests": {"cpu": f"{model.serving.cpu_milli}m",
                         "memory": f"{model.serving.host_memory_mib}Mi", resource: str(count)},
            "limits": {"memory": f"{model.serving.host_memory_mib}Mi", resource: str(count)},
        },
        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 5,
                           "failureThreshold": 3},
    }
    spec: dict = {
        "priorityClassName": model.priority,
        "nodeSelector": pool_selector(plan, pool),
        "tolerations": [{"key": t.key, "operator": "Equal", "value": t.value,
                         "effect": t.effect} for t in pool.taints],
        "containers": [container],
    }
    if model.max_replicas_per_node is not None:
        spec["topologySpreadConstraints"] = [{
            "maxSkew": model.max_replicas_per_node,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": model.name}},
        }]
    return spec


def _metadata(plan: Plan, model: ModelPlan) -> tuple[dict, dict]:
    labels = {"app.kubernetes.io/name": model.name, **MANAGED_BY,
              f"{_domain(plan)}/team": model.team, f"{_domain(plan)}/pool": model.pool,
              **model.labels}
    annotations = {f"{_domain(plan)}/max-concurrency": str(model.limits.max_concurrency),
                   f"{_domain(plan)}/queue-limit": str(model.limits.queue_limit),
                   f"{_domain(plan)}/timeout-ms": str(model.limits.timeout_ms),
                   f"{_domain(plan)}/loading": model.loading,
                   f"{_domain(plan)}/cost-per-hour": f"{model.cost_per_hour:.4f}"}
    return labels, annotations


def deployment(plan: Plan, model: ModelPlan, pool: PoolPlan) -> dict:
    labels, annotations = _metadata(plan, model)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": model.name, "namespace": namespace(plan, model.team),
                     "labels": labels, "annotations": annotations},
        "spec": {
            "replicas": model.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": model.name}},
            "template": {"metadata": {"labels": labels, "annotations": annotations},
                         "spec": _pod_spec(plan, model, pool, "server")},
        },
    }


def inference_service(plan: Plan, model: ModelPlan, pool: PoolPlan) -> dict:
    labels, annotations = _metadata(plan, model)
    spec = _pod_spec(plan, model, pool, "kserve-container")
    predictor = {
        "minReplicas": 0 if model.loading == "lazy" else model.replicas,
        "maxReplicas": model.replicas,
        "containerConcurrency": model.limits.max_concurrency,
        "timeout": math.ceil(model.limits.timeout_ms / 1000),
        **spec,
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": model.name, "namespace": namespace(plan, model.team),
                     "labels": labels, "annotations": annotations},
        "spec": {"predictor": predictor},
    }


def disruption_budget(plan: Plan, model: ModelPlan) -> dict:
    return {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": model.name, "namespace": namespace(plan, model.team),
                     "labels": {"app.kubernetes.io/name": model.name, **MANAGED_BY}},
        "spec": {"maxUnavailable": 1,
                 "selector": {"matchLabels": {"app.kubernetes.io/name": model.name}}},
    }


def _replicas_per_gpu(pool: PoolPlan) -> int:
    return max((len(g.replicas) for n in pool.nodes for g in n.gpus), default=1)


def device_plugin_config(plan: Plan, pool: PoolPlan) -> dict:
    """The device plugin's per-node config for this pool's nodes (selected by node label)."""
    if pool.sharing == "mig":
        body: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": "mixed"}}
    else:
        kind = {"time-slicing": "timeSlicing", "mps": "mps"}[pool.sharing]
        body = {"version": "v1", "flags": {"migStrategy": "none"},
                "sharing": {kind: {"renameByDefault": True, "failRequestsGreaterThanOne": True,
                                   "resources": [{"name": "nvidia.com/gpu",
                                                  "replicas": _replicas_per_gpu(pool)}]}}}
        if pool.sharing == "mps":
            body["sharing"]["mps"].pop("failRequestsGreaterThanOne")
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"device-plugin-{pool.name}", "namespace": GPU_OPERATOR_NAMESPACE,
                     "labels": {**MANAGED_BY, f"{_domain(plan)}/pool": pool.name}},
        "data": {pool.name: yaml.safe_dump(body, sort_keys=False)},
    }


def _node_layout(node) -> list[dict]:
    """A node's MIG layout as mig-parted device entries (unlisted GPUs stay whole)."""
    return [{"devices": [gpu.index], "mig-enabled": True,
             "mig-devices": dict(sorted(Counter(gpu.mig_layout).items()))}
            for gpu in node.gpus if gpu.mig_layout]


def mig_node_configs(pool: PoolPlan) -> dict[str, list[dict]]:
    """mig-parted configs, one per distinct node layout, named `<pool>-layout-<n>`."""
    layouts: list[list[dict]] = []
    for node in pool.nodes:
        if _node_layout(node) not in layouts:
            layouts.append(_node_layout(node))
    return {f"{pool.name}-layout-{i}": layout for i, layout in enumerate(layouts)}


def mig_layout_config(plan: Plan, pool: PoolPlan) -> dict:
    configs = mig_node_configs(pool)
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"mig-parted-{pool.name}", "namespace": GPU_OPERATOR_NAMESPACE,
                     "labels": {**MANAGED_BY, f"{_domain(plan)}/pool": pool.name}},
        "data": {"config.yaml": yaml.safe_dump({"version": "v1", "mig-configs": configs},
                                               sort_keys=False)},
    }


def node_pools(plan: Plan, pool: PoolPlan) -> list[dict]:
    """Karpenter NodePools: one per pool, or one per distinct MIG node layout."""
    groups: dict[str | None, int] = defaultdict(int)
    if pool.sharing == "mig":
        configs = mig_node_configs(pool)
        for node in pool.nodes:
            groups[next(n for n, c in configs.items() if c == _node_layout(node))] += 1
    else:
        groups[None] = len(pool.nodes)
    result = []
    for layout, nodes in groups.items():
        labels = {**pool_selector(plan, pool), DEVICE_PLUGIN_CONFIG_LABEL: pool.name}
        if layout:
            labels[MIG_CONFIG_LABEL] = layout
        requirements = [{"key": "karpenter.sh/capacity-type", "operator": "In",
                         "values": ["on-demand"]}]
        if pool.instance_type:
            requirements.insert(0, {"key": "node.kubernetes.io/instance-type",
                                    "operator": "In", "values": [pool.instance_type]})
        result.append({
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            "metadata": {"name": layout or pool.name, "labels": dict(MANAGED_BY)},
            "spec": {
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeClassRef": dict(pool.node_class),
                        "requirements": requirements,
                        "taints": [{"key": t.key, "value": t.value, "effect": t.effect}
                                   for t in pool.taints],
                        "expireAfter": "720h",
                    },
                },
                "limits": {"nvidia.com/gpu": str(nodes * pool.gpus_per_node)},
                "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m",
                               "budgets": [{"nodes": "1"}]},
            },
        })
    return result


def cluster_objects(plan: Plan) -> list[dict]:
    classes = [{
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": name, "labels": dict(MANAGED_BY)},
        "value": pc.value, "preemptionPolicy": pc.preemption, "globalDefault": False,
        "description": pc.description or f"{name} models",
    } for name, pc in plan.priority_classes.items()]
    teams = sorted({m.team for m in plan.models} | {u.team for u in plan.unplaced})
    namespaces = [{"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": namespace(plan, team),
                                "labels": {**MANAGED_BY, f"{_domain(plan)}/team": team}}}
                  for team in teams]
    return classes + namespaces


def render_manifests(plan: Plan, target: str = "deployment") -> dict[str, str]:
    """Manifest files by relative path under the output folder."""
    pools = {p.name: p for p in plan.pools}
    files = {"manifests/cluster.yaml": _dump(cluster_objects(plan))}
    for pool in plan.pools:
        if not pool.nodes:
            continue
        documents = []
        if pool.sharing in ("time-slicing", "mps", "mig"):
            documents.append(device_plugin_config(plan, pool))
        if pool.sharing == "mig":
            documents.append(mig_layout_config(plan, pool))
        documents += node_pools(plan, pool)
        files[f"manifests/pools/{pool.name}.yaml"] = _dump(documents)
    for model in plan.models:
        pool = pools[model.pool]
        workload = (inference_service if target == "kserve" else deployment)(plan, model, pool)
        documents = [workload]
        if model.replicas > 1:
            documents.append(disruption_budget(plan, model))
        files[f"manifests/models/{model.name}.yaml"] = _dump(documents)
    return files
