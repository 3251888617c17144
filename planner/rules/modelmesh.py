"""What KServe ModelMesh Serving runs for a lazy cache, as its controller and adapter do it.

ModelMesh loads a model into one of a ServingRuntime's pods on its first request and evicts
the least recently used model when the pod's capacity runs out. The figures here are those of
kserve/modelmesh-serving v0.12.0 and kserve/modelmesh-runtime-adapter v0.12.0:

- **Capacity.** The runtime adapter reports a pod's capacity as the model server container's
  memory *request* (`CONTAINER_MEM_REQ_BYTES`, from the container named after the built-in
  adapter's `serverType`) less `memBufferBytes`. That is container (host) memory: ModelMesh
  never reads GPU memory. A Triton model's size is estimated as its files' size on disk times
  `MODELSIZE_MULTIPLIER` (1.25), not measured on the GPU.
- **The pod.** The controller's Deployment `modelmesh-serving-<runtime>` adds to the runtime's
  containers the `mm` container (300m CPU, 448Mi), the REST proxy (50m, 96Mi) and the adapter
  (50m, 96Mi): `model-serving-config`'s defaults (`config/default/config-defaults.yaml`).
- **Storage.** An InferenceService's `storageUri` may be `s3://`, `gs://`, `pvc://` or
  `http(s)://` (Azure Blob storage as `https://ACCOUNT.blob.core.windows.net/...`); a folder
  inside the server's image is no storage ModelMesh can pull from.
"""

from __future__ import annotations

from typing import Final

SERVER_TYPE: Final = "triton"  # the built-in adapter, and the name its container must have
MODEL_FORMAT: Final = "triton"  # a Triton model repository's directory, config.pbtxt included
MODEL_FORMAT_VERSION: Final = "2"
DEPLOYMENT_MODE: Final = "ModelMesh"
DEPLOYMENT_MODE_ANNOTATION: Final = "serving.kserve.io/deploymentMode"
SERVICE_NAME: Final = "modelmesh-serving"  # the controller's default `serviceName`
PODS_PER_RUNTIME: Final = 2  # a runtime's pods where it sets no `replicas`
NAMESPACE_LABEL: Final = "modelmesh-enabled"  # a namespace the controller serves
MIB: Final = 2**20
MEM_BUFFER_MIB: Final = 128  # the built-in Triton runtime's memBufferBytes (134217728)
MODEL_LOADING_TIMEOUT_MS: Final = 90_000  # the built-in Triton runtime's
# The containers the controller adds to every runtime pod: (name, CPU milli, memory MiB).
INJECTED: Final = (("mm", 300, 448), ("rest-proxy", 50, 96), (f"{SERVER_TYPE}-adapter", 50, 96))
INJECTED_CPU_MILLI: Final = sum(cpu for _, cpu, _ in INJECTED)
INJECTED_MEMORY_MIB: Final = sum(memory for _, _, memory in INJECTED)
# Ports and names the controller keeps for itself (controllers/servingruntime_validator.go).
RESERVED_PORTS: Final = frozenset({8080, 8085, 8089, 8090, *range(11881, 11900)})
RESERVED_PORT_NAMES: Final = frozenset({"grpc", "http", "prometheus"})
_AZURE: Final = ".blob.core.windows.net"


def deployment_name(runtime: str) -> str:
    """The Deployment the controller makes of a ServingRuntime."""
    return f"{SERVICE_NAME}-{runtime}"


def storage_uri(repository: str, model: str) -> str | None:
    """Where ModelMesh pulls `model` from, given the Triton model repository that holds it
    (`serving.model_repository`); None for a folder in the image, which ModelMesh cannot
    read. Triton's `as://ACCOUNT/CONTAINER/PATH` is Azure Blob storage, which ModelMesh
    addresses by its https URL."""
    base = repository.rstrip("/")
    if base.startswith(("s3://", "gs://")):
        return f"{base}/{model}"
    if base.startswith("as://"):
        account, _, rest = base.removeprefix("as://").partition("/")
        # ModelMesh reads the path's first part as the container
        return f"https://{account}{_AZURE}/{rest}/{model}" if account and rest else None
    return None


def server_memory_mib(capacity_mib: int, host_memory_mib: int) -> int:
    """The Triton container's memory request: the members' host memory, and at least the
    capacity above the built-in runtime's buffer."""
    return max(host_memory_mib, capacity_mib + MEM_BUFFER_MIB)


def mem_buffer_bytes(server_memory_mib: int, capacity_mib: int) -> int:
    """`memBufferBytes` that leaves ModelMesh exactly `capacity_mib` of the Triton container's
    memory request (`server_memory_mib`)."""
    return (server_memory_mib - capacity_mib) * MIB


def pod_cpu_milli(server_cpu_milli: int) -> int:
    """CPU a runtime pod requests: the server's and the injected containers'."""
    return server_cpu_milli + INJECTED_CPU_MILLI


def pod_memory_mib(capacity_mib: int, host_memory_mib: int) -> int:
    """Host memory a runtime pod requests: the server's and the injected containers'."""
    return server_memory_mib(capacity_mib, host_memory_mib) + INJECTED_MEMORY_MIB


def server_memory_of_pod(pod_memory_mib: int) -> int:
    """The Triton container's memory request in a runtime pod that requests `pod_memory_mib`
    (`pod_memory_mib` above): the pod's less the injected containers'."""
    return pod_memory_mib - INJECTED_MEMORY_MIB
