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
    pod: dict = {
        "restartPolicy": "Never",
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "nodeSelector": dict(target.node_selector),
        "tolerations": [dict(t) for t in target.tolerations],
        "containers": [{
            "name": "profile", "image": image, "command": command,
            "resources": {
                "requests": {"cpu": f"{cpu_milli}m", "memory": f"{memory_mib}Mi",
                             target.resource: str(target.count)},
                "limits": {"memory": f"{memory_mib}Mi", target.resource: str(target.count)},
            },
        }],
    }
    if host_pid:
        pod["hostPID"] = True
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": job_name(model, target.gpu_type), "namespace": namespace,
                     "labels": {**MANAGED_BY, f"{domain}/model": model,
                                f"{domain}/gpu-type": target.gpu_type,
                                f"{domain}/pool": target.pool}},
        "spec": {"backoffLimit": 1, "ttlSecondsAfterFinished": 86400,
                 "template": {"metadata": {"labels": {**MANAGED_BY, f"{domain}/model": model}},
                              "spec": pod}},
    }


def namespace_objects(parallelism: int, *, namespace: str = NAMESPACE,
                      host_pid: bool = False) -> list[dict]:
    """The namespace the Jobs run in, its quota of `parallelism` pods at once, the profiler's
    service account, and a Role for whoever collects the logs (`kubectl logs job/...`)."""
    meta = {"namespace": namespace, "labels": dict(MANAGED_BY)}
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": namespace, "labels": {
             **MANAGED_BY, POD_SECURITY: "privileged" if host_pid else "baseline"}}},
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
