"""Profiling on the cluster: a Kubernetes Job per model on the GPU type to buy.

The Job logs its profile between markers (profiles.text), which `planner profile import` reads
back. Building Jobs needs no torch.
"""

from __future__ import annotations

import re

REGISTRY_IN_IMAGE = "/registry"


def job(model: str, gpu_type: str, gpu_product: str, image: str, arguments: list[str],
        namespace: str = "planner-profiling") -> dict:
    """One Job that profiles `model` on one GPU of type `gpu_type` and logs the profile."""
    name = re.sub(r"[^a-z0-9-]", "-", f"profile-{model}-{gpu_type}".lower())[:63].strip("-")
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "placement-planner",
                                "planner.example.com/model": model,
                                "planner.example.com/gpu-type": gpu_type}},
        "spec": {
            "backoffLimit": 1,
            "ttlSecondsAfterFinished": 86400,
            "template": {"spec": {
                "restartPolicy": "Never",
                "nodeSelector": {"nvidia.com/gpu.product": gpu_product},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                 "effect": "NoSchedule"}],
                "containers": [{
                    "name": "profile", "image": image,
                    "command": ["planner", "profile", "run", model, "--registry", REGISTRY_IN_IMAGE,
                                "--device", "cuda", "--gpu-type", gpu_type, "--format",
                                "markers", *arguments],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }],
            }},
        },
    }
