"""Profiling on the cluster: a Kubernetes Job per model and target, on a pool's own nodes.

A target is what a measurement is filed under: a GPU type on whole GPUs, a MIG slice as a
type of its own (`a100-80gb-1g.10gb`), or a shared GPU. The Job's pod asks for what the pool's
nodes advertise (`nvidia.com/gpu` times the model's GPUs per replica, one
`nvidia.com/mig-<profile>`, or one `nvidia.com/gpu.shared`), selects the pool's nodes by the
labels its NodePools set and tolerates the pool's taints, so it runs wherever the plan can
place the model. The Jobs live in a namespace of their own whose ResourceQuota caps the pods
running at once: the Job controller retries a pod the quota refuses, so a fleet of Jobs runs
a few at a time. The pod needs no API access (no service account token); `hostPID`, which lets
NVML's host PIDs match the profiler's own, only when asked for, and then the namespace admits
it (Pod Security `privileged`; `baseline` otherwise).

The Job logs its profile between markers (profiles.text), which `planner profile import` reads
back. Building Jobs needs no torch.

A model measured through its server (`endpoint_job`) runs its serving image in the pod, with
the pool's GPU resource, and the profiler beside it driving it over localhost with `planner
profile endpoint`. The server is a native sidecar (an init container that keeps running,
`restartPolicy: Always`): it starts first, its startup probe holds the profiler back until
the model is loaded, and it is stopped when the profiler's container ends, so the Job
completes with the profiler. The profiler reads the server's device memory through NVML,
which needs the node's GPUs visible to it (a privileged container; the namespace then admits
privileged pods) and the server's processes in its process table: the pod's own
(`shareProcessNamespace`) on a GPU or MIG slice that is the pod's alone, or the host's
(`hostPID`, with `--host-pid`) on a shared GPU, where a marker in the server's environment
tells its processes from other pods'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

REGISTRY_IN_IMAGE = "/registry"
NAMESPACE = "planner-profiling"
SERVICE_ACCOUNT = "profiler"
COLLECTOR_ROLE = "profile-collector"
MANAGED_BY = {"app.kubernetes.io/managed-by": "placement-planner"}
POD_SECURITY = "pod-security.kubernetes.io/enforce"
SERVER_MARKER = "PLANNER_PROFILE_JOB"
"""Set on the server's container to the Job's name: how the profiler finds its processes."""
READY_TIMEOUT_S = 1800  # loading a large model from a registry takes minutes
PROFILER_CPU_MILLI, PROFILER_MEMORY_MIB = 1000, 1024


@dataclass(frozen=True)
class Target:
    """Where one profiling pod runs and what it asks for there."""

    pool: str
    gpu_type: str
    """The GPU type the profile is filed under (a MIG slice's own type for a slice)."""
    resource: str
    count: int
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict] = field(default_factory=list)
    shared: bool = False
    """The GPU is time-sliced or shared by MPS: other pods' load is in the numbers."""


def job_name(model: str, gpu_type: str) -> str:
    """`profile-<model>-<gpu type>`, made a DNS-1123 label."""
    return re.sub(r"[^a-z0-9-]", "-", f"profile-{model}-{gpu_type}".lower())[:63].strip("-")


def job(model: str, target: Target, image: str, arguments: list[str], *,
        cpu_milli: int, memory_mib: int, domain: str = "planner.example.com",
        namespace: str = NAMESPACE, host_pid: bool = False) -> dict:
    """One Job that profiles `model` on `target` and logs the profile."""
    command = ["planner", "profile", "run", model, "--registry", REGISTRY_IN_IMAGE,
               "--device", "cuda", "--gpu-type", target.gpu_type, "--format", "markers",
               *arguments]
    if target.shared:
        command.append("--allow-shared-device")
    pod = _pod(target, containers=[{
        "name": "profile", "image": image, "command": command,
        "resources": {
            "requests": {"cpu": f"{cpu_milli}m", "memory": f"{memory_mib}Mi",
                         target.resource: str(target.count)},
            "limits": {"memory": f"{memory_mib}Mi", target.resource: str(target.count)},
        },
    }])
    if host_pid:
        pod["hostPID"] = True
    return _job(job_name(model, target.gpu_type), model, target, pod, domain=domain,
                namespace=namespace)


@dataclass(frozen=True)
class Server:
    """The model's serving container as a profiling pod runs it."""

    image: str
    port: int
    cpu_milli: int
    memory_mib: int
    protocol: str  # kserve-v2 or openai
    ready_path: str
    request: list[str] = field(default_factory=list)
    """`planner profile endpoint` options of one request (--shape and --datatype, or
    --max-tokens)."""
    args: list[str] = field(default_factory=list)
    """Arguments appended to the image's entrypoint (the name the server answers to)."""


def endpoint_job(model: str, target: Target, server: Server, image: str,
                 arguments: list[str], *, domain: str = "planner.example.com",
                 namespace: str = NAMESPACE, host_pid: bool = False) -> dict:
    """One Job that serves `model` from its own image on `target` and profiles it through
    its endpoint from the profiler's container beside it, logging the profile."""
    name = job_name(model, target.gpu_type)
    command = ["planner", "profile", "endpoint", f"http://127.0.0.1:{server.port}",
               "--model", model, "--protocol", server.protocol, "--save", model,
               "--registry", REGISTRY_IN_IMAGE, "--gpu-type", target.gpu_type,
               "--device", "server", "--server-env", f"{SERVER_MARKER}={name}",
               "--wait-ready", str(READY_TIMEOUT_S), "--format", "markers",
               *server.request, *arguments]
    if not target.shared:
        command.append("--exclusive-device")
    gpus = {target.resource: str(target.count)}
    probe = {"httpGet": {"path": server.ready_path, "port": server.port},
             "periodSeconds": 10, "failureThreshold": READY_TIMEOUT_S // 10}
    pod = _pod(
        target,
        initContainers=[{
            "name": "server", "image": server.image, "restartPolicy": "Always",
            **({"args": list(server.args)} if server.args else {}),
            "env": [{"name": SERVER_MARKER, "value": name}],
            "ports": [{"containerPort": server.port, "name": "serving"}],
            "startupProbe": probe,
            "resources": {
                "requests": {"cpu": f"{server.cpu_milli}m",
                             "memory": f"{server.memory_mib}Mi", **gpus},
                "limits": {"memory": f"{server.memory_mib}Mi", **gpus},
            },
        }],
        containers=[{
            "name": "profile", "image": image, "command": command,
            "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}],
            "securityContext": {"privileged": True},
            "resources": {
                "requests": {"cpu": f"{PROFILER_CPU_MILLI}m",
                             "memory": f"{PROFILER_MEMORY_MIB}Mi"},
                "limits": {"memory": f"{PROFILER_MEMORY_MIB}Mi"},
            },
        }])
    if host_pid:
        pod["hostPID"] = True
    else:
        pod["shareProcessNamespace"] = True
    return _job(name, model, target, pod, domain=domain, namespace=namespace)


def _pod(target: Target, **containers: list[dict]) -> dict:
    """A profiling pod on `target`'s pool (its nodes, its taints tolerated), run once, with
    no API access, and its `containers` (and `initContainers`)."""
    return {
        "restartPolicy": "Never",
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "nodeSelector": dict(target.node_selector),
        "tolerations": [dict(t) for t in target.tolerations],
        **containers,
    }


def _job(name: str, model: str, target: Target, pod: dict, *, domain: str,
         namespace: str) -> dict:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {**MANAGED_BY, f"{domain}/model": model,
                                f"{domain}/gpu-type": target.gpu_type,
                                f"{domain}/pool": target.pool}},
        "spec": {"backoffLimit": 1, "ttlSecondsAfterFinished": 86400,
                 "template": {"metadata": {"labels": {**MANAGED_BY, f"{domain}/model": model}},
                              "spec": pod}},
    }


def namespace_objects(parallelism: int, *, namespace: str = NAMESPACE,
                      privileged: bool = False) -> list[dict]:
    """The namespace the Jobs run in, its quota of `parallelism` pods at once, the profiler's
    service account, and a Role for whoever collects the logs (`kubectl logs job/...`)."""
    meta = {"namespace": namespace, "labels": dict(MANAGED_BY)}
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": namespace, "labels": {
             **MANAGED_BY, POD_SECURITY: "privileged" if privileged else "baseline"}}},
        {"apiVersion": "v1", "kind": "ResourceQuota",
         "metadata": {"name": "profiling-pods", **meta},
         "spec": {"hard": {"pods": str(parallelism)}}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": SERVICE_ACCOUNT, **meta}, "automountServiceAccountToken": False},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": COLLECTOR_ROLE, **meta},
         "rules": [{"apiGroups": ["batch"], "resources": ["jobs"],
                    "verbs": ["get", "list", "watch"]},
                   {"apiGroups": [""], "resources": ["pods", "pods/log"],
                    "verbs": ["get", "list", "watch"]}]},
    ]
