"""A reserved lazy cache served by KServe ModelMesh: a ServingRuntime and an InferenceService
per member.

ModelMesh loads a member into one of the runtime's pods on its first request and, when the
pod's capacity is used, evicts the least recently used model: nothing outside it has to load
or unload. The ServingRuntime (`multiModel: true`) runs Triton through ModelMesh's built-in
Triton adapter, with `replicas` the cache's planned servers, on the pool's nodes and
time-shared GPUs (`nvidia.com/gpu.shared`); each member is an InferenceService in ModelMesh
mode (`serving.kserve.io/deploymentMode: ModelMesh`) naming the runtime and pulling the
member's directory of its Triton model repository (`serving.model_repository`).

ModelMesh's capacity is the Triton container's memory request less `memBufferBytes`
(`planner.rules.modelmesh`): container memory, not GPU memory. The request is the members'
host memory, and at least the cache's planned memory and the built-in runtime's 128 MiB
buffer; `memBufferBytes` is the request less the planned memory, so the capacity ModelMesh
enforces is the planned cache memory per server. ModelMesh sizes a Triton model by its files
on disk (times 1.25), so the plan's GPU memory holds only as far as those estimates follow
the models' GPU memory; nothing caps the GPU memory Triton takes.

The ServingRuntime has no priority class field: its pods run at the cluster's default
priority. A PodMonitor scrapes Triton's metrics port on the runtime's pods; ModelMesh loads a
model into Triton under `<name>__isvc-<hash>`, which the monitor relabels to the member's
name, so the members' alerts read their series as they would Triton's own.
"""

from __future__ import annotations

from typing import Final

from planner.money import decimal
from planner.planfile import LazyCachePlan, Plan, PoolPlan
from planner.registry.kubernetes import tolerations
from planner.rules import modelmesh
from reports.cache_server import (
    NAME_LABEL,
    apart,
    cache_annotations,
    cache_labels,
    disruption_budget,
)
from reports.dra import pool_namespace
from reports.gpu_operator import SHARED_GPU
from reports.metrics import TRITON_METRICS_PORT

SERVING_API: Final = "serving.kserve.io/v1alpha1"
ISVC_API: Final = "serving.kserve.io/v1beta1"
ADAPTER_PORT: Final = 8085  # the built-in adapter's gRPC port (`grpcEndpoint`)
TRITON_GRPC_PORT: Final = 8001  # Triton's gRPC port, which the adapter drives
ISVC_MODEL_ID: Final = r"(.+)__isvc-[0-9a-f]+"  # the Triton model name of a ModelMesh model
# The built-in Triton runtime's command (kserve/modelmesh-serving config/runtimes/triton-2.x),
# with the latency summaries the alerts read (`reports.metrics`).
TRITON_COMMAND: Final = (
    "mkdir -p /models/_triton_models; chmod 777 /models/_triton_models; exec tritonserver "
    '"--model-repository=/models/_triton_models" "--model-control-mode=explicit" '
    '"--strict-model-config=false" "--strict-readiness=false" "--allow-http=true" '
    f'"--allow-sagemaker=false" "--metrics-port={TRITON_METRICS_PORT}" '
    '"--metrics-config=summary_latencies=true"')


def runtime_name(cache: LazyCachePlan) -> str:
    return cache.workload


def _container(cache: LazyCachePlan) -> dict:
    memory = f"{modelmesh.server_memory_of_pod(cache.host_memory_mib)}Mi"
    return {
        "name": modelmesh.SERVER_TYPE,
        "image": cache.image,
        "command": ["/bin/sh"],
        "args": ["-c", TRITON_COMMAND],
        "ports": [{"name": "metrics", "containerPort": TRITON_METRICS_PORT}],
        "resources": {"requests": {"cpu": f"{cache.cpu_milli - modelmesh.INJECTED_CPU_MILLI}m",
                                   "memory": memory, SHARED_GPU: "1"},
                      "limits": {"memory": memory, SHARED_GPU: "1"}},
        # ModelMesh owns readiness; Triton listens on localhost, so liveness asks from inside
        "livenessProbe": {"exec": {"command": ["curl", "--fail", "--silent", "--show-error",
                                               "--max-time", "9",
                                               "http://localhost:8000/v2/health/live"]},
                          "initialDelaySeconds": 5, "periodSeconds": 30,
                          "timeoutSeconds": 10},
    }


def serving_runtime(plan: Plan, cache: LazyCachePlan, pool: PoolPlan,
                    node_selector: dict[str, str], common: dict[str, str]) -> dict:
    """The cache's ServingRuntime: `cache.servers` pods of Triton behind ModelMesh."""
    labels = cache_labels(plan, cache, pool, common)
    annotations = cache_annotations(plan, cache)
    spec: dict = {
        "supportedModelFormats": [{"name": modelmesh.MODEL_FORMAT,
                                   "version": modelmesh.MODEL_FORMAT_VERSION,
                                   "autoSelect": False}],
        "protocolVersions": ["grpc-v2"],
        "multiModel": True,
        "replicas": cache.servers,
        "grpcEndpoint": f"port:{ADAPTER_PORT}",
        "grpcDataEndpoint": f"port:{TRITON_GRPC_PORT}",
        "containers": [_container(cache)],
        "builtInAdapter": {"serverType": modelmesh.SERVER_TYPE,
                           "runtimeManagementPort": TRITON_GRPC_PORT,
                           # ModelMesh's capacity: the planned cache memory per server
                           "memBufferBytes": modelmesh.mem_buffer_bytes(
                               modelmesh.server_memory_of_pod(cache.host_memory_mib),
                               cache.memory_mib),
                           "modelLoadingTimeoutMillis": modelmesh.MODEL_LOADING_TIMEOUT_MS},
        "nodeSelector": node_selector,
        "tolerations": tolerations(pool.taints),
        # the runtime's pods: their labels and annotations
        "labels": dict(labels),
        "annotations": dict(annotations),
    }
    if cache.apart_on_node:
        spec["affinity"] = apart(cache)
    return {"apiVersion": SERVING_API, "kind": "ServingRuntime",
            "metadata": {"name": runtime_name(cache), "namespace": pool_namespace(plan, pool),
                         "labels": labels, "annotations": annotations},
            "spec": spec}


def member_service(plan: Plan, cache: LazyCachePlan, pool: PoolPlan, member: str,
                   common: dict[str, str]) -> dict:
    """A member as an InferenceService that ModelMesh loads into the cache's runtime."""
    model = plan.model(member)
    assert model is not None and model.serving.model_repository is not None
    uri = modelmesh.storage_uri(model.serving.model_repository, member)
    assert uri is not None, "a ModelMesh cache's members pull from object storage"
    domain = plan.metadata.label_domain
    return {
        "apiVersion": ISVC_API, "kind": "InferenceService",
        "metadata": {
            "name": member, "namespace": pool_namespace(plan, pool),
            "labels": {NAME_LABEL: member, **common, f"{domain}/team": model.team,
                       f"{domain}/pool": pool.name, **model.labels},
            "annotations": {modelmesh.DEPLOYMENT_MODE_ANNOTATION: modelmesh.DEPLOYMENT_MODE,
                            f"{domain}/cache": cache.name, f"{domain}/loading": "lazy",
                            f"{domain}/timeout-ms": str(model.limits.timeout_ms),
                            f"{domain}/cost-per-hour": f"{decimal(model.cost_per_hour):.4f}"},
        },
        "spec": {"predictor": {"model": {
            "modelFormat": {"name": modelmesh.MODEL_FORMAT,
                            "version": modelmesh.MODEL_FORMAT_VERSION},
            "runtime": runtime_name(cache),
            "storageUri": uri,
        }}},
    }


def runtime_objects(plan: Plan, cache: LazyCachePlan, pool: PoolPlan,
                    node_selector: dict[str, str], common: dict[str, str]) -> list[dict]:
    """The ServingRuntime, its members' InferenceServices and, with several servers, a
    PodDisruptionBudget over the runtime's pods (the controller writes none)."""
    documents = [serving_runtime(plan, cache, pool, node_selector, common),
                 *[member_service(plan, cache, pool, m, common) for m in cache.members]]
    if cache.servers > 1:
        documents.append(disruption_budget(cache, pool_namespace(plan, pool), common))
    return documents
