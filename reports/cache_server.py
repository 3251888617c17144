"""The servers of a reserved lazy cache: Triton Inference Server with explicit model control.

A cache the plan reserves with `server: triton` runs as one Deployment of `servers` pods on
its pool's time-shared GPUs, packed where the plan put the cache (one item per server). Each
pod starts `tritonserver --model-control-mode=explicit` over its members' model repositories
(`serving.model_repository`): in explicit mode Triton loads no model at start-up; a model is
loaded by `POST /v2/repository/models/<name>/load` and its memory freed by
`POST /v2/repository/models/<name>/unload` (Triton's model repository extension). Whatever
routes the members' requests (a gateway, or the client) loads a model on a miss and unloads the
least recently used when the cache holds `slots` models, which is what `planner
simulate-traffic` replays; the pods carry the slots and the planned memory as annotations. The
members run no pods of their own.

A Service names the server's ports (HTTP 8000, gRPC 8001, metrics 8002), and a ServiceMonitor
scrapes the metrics port: Triton labels each model's series with `model`, so the members'
alerts select them by name as they do a model of its own (`reports.observability`).
"""

from __future__ import annotations

from typing import Final

from planner.money import decimal
from planner.planfile import LazyCachePlan, Plan, PoolPlan
from planner.registry.kubernetes import tolerations
from reports.dra import pool_namespace
from reports.gpu_operator import SHARED_GPU
from reports.metrics import TRITON_METRICS_PORT

TRITON_HTTP_PORT: Final = 8000
TRITON_GRPC_PORT: Final = 8001
READY_PATH: Final = "/v2/health/ready"  # ready once the server is up: no model loads at start
NAME_LABEL: Final = "app.kubernetes.io/name"
HOSTNAME: Final = "kubernetes.io/hostname"


def triton_args(repositories: list[str]) -> list[str]:
    """`tritonserver`'s flags: explicit model control over every member's repository, and
    the latency summaries the alerts read (`reports.metrics`)."""
    return ["--model-control-mode=explicit",
            *[f"--model-repository={r}" for r in sorted(set(repositories))],
            f"--http-port={TRITON_HTTP_PORT}", f"--grpc-port={TRITON_GRPC_PORT}",
            f"--metrics-port={TRITON_METRICS_PORT}",
            "--metrics-config=summary_latencies=true"]


def cache_labels(plan: Plan, cache: LazyCachePlan, pool: PoolPlan,
            common: dict[str, str]) -> dict[str, str]:
    domain = plan.metadata.label_domain
    return {NAME_LABEL: cache.workload, **common, f"{domain}/pool": pool.name,
            f"{domain}/loading": "lazy"}


def cache_annotations(plan: Plan, cache: LazyCachePlan) -> dict[str, str]:
    domain = plan.metadata.label_domain
    return {f"{domain}/cache-members": ",".join(cache.members),
            f"{domain}/cache-slots": str(cache.slots),
            f"{domain}/cache-memory-mib": str(cache.memory_mib),
            # one pod's share of the cache's cost
            f"{domain}/cost-per-hour": f"{decimal(cache.cost_per_hour) / cache.servers:.4f}"}


def _pod_spec(plan: Plan, cache: LazyCachePlan, pool: PoolPlan,
              node_selector: dict[str, str]) -> dict:
    repositories = [m.serving.model_repository for name in cache.members
                    if (m := plan.model(name)) is not None and m.serving.model_repository]
    memory = f"{cache.host_memory_mib}Mi"
    container = {
        "name": "triton",
        "image": cache.image,
        "command": ["tritonserver"],
        "args": triton_args(repositories),
        "ports": [{"name": "http", "containerPort": TRITON_HTTP_PORT},
                  {"name": "grpc", "containerPort": TRITON_GRPC_PORT},
                  {"name": "metrics", "containerPort": TRITON_METRICS_PORT}],
        "resources": {"requests": {"cpu": f"{cache.cpu_milli}m", "memory": memory,
                                   SHARED_GPU: "1"},
                      "limits": {"memory": memory, SHARED_GPU: "1"}},
        "readinessProbe": {"httpGet": {"path": READY_PATH, "port": "http"},
                           "periodSeconds": 5, "failureThreshold": 3},
    }
    spec: dict = {
        "priorityClassName": cache.priority,
        "nodeSelector": node_selector,
        "tolerations": tolerations(pool.taints),
        "containers": [container],
    }
    if cache.apart_on_node:
        spec["affinity"] = apart(cache)
    return spec


def apart(cache: LazyCachePlan) -> dict:
    """The affinity that keeps the cache's servers off the nodes of the models it conflicts
    with."""
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchExpressions": [{"key": NAME_LABEL, "operator": "In",
                                                "values": list(cache.apart_on_node)}]},
        "namespaceSelector": {}, "topologyKey": HOSTNAME}]}}


def server_objects(plan: Plan, cache: LazyCachePlan, pool: PoolPlan,
                   node_selector: dict[str, str], common: dict[str, str]) -> list[dict]:
    """The cache's Deployment, its Service and, with several servers, a PodDisruptionBudget.

    A server is replaced in place (`maxSurge: 0`): a new server starts empty, so a surge pod
    would keep no model warm, only ask for room the plan does not hold."""
    # the pool's namespace, since the cache's members may belong to several teams
    namespace = pool_namespace(plan, pool)
    labels = cache_labels(plan, cache, pool, common)
    selector = {NAME_LABEL: cache.workload}
    annotations = cache_annotations(plan, cache)
    documents: list[dict] = [{
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": cache.workload, "namespace": namespace, "labels": labels,
                     "annotations": annotations},
        "spec": {
            "replicas": cache.servers,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "template": {"metadata": {"labels": dict(labels), "annotations": dict(annotations)},
                         "spec": _pod_spec(plan, cache, pool, node_selector)},
        },
    }, {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": cache.workload, "namespace": namespace, "labels": dict(labels)},
        "spec": {"selector": dict(selector),
                 "ports": [{"name": name, "port": port, "targetPort": name}
                           for name, port in (("http", TRITON_HTTP_PORT),
                                              ("grpc", TRITON_GRPC_PORT),
                                              ("metrics", TRITON_METRICS_PORT))]},
    }]
    if cache.servers > 1:
        documents.append(disruption_budget(cache, namespace, common))
    return documents


def disruption_budget(cache: LazyCachePlan, namespace: str, common: dict[str, str]) -> dict:
    """At most one of the cache's servers evicted at a time."""
    return {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": cache.workload, "namespace": namespace,
                     "labels": {NAME_LABEL: cache.workload, **common}},
        "spec": {"maxUnavailable": 1,
                 "selector": {"matchLabels": {NAME_LABEL: cache.workload}}},
    }
