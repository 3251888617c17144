"""Profiling on the cluster: a Kubernetes Job per model on the GPU type to buy, and reading
the profiles back out of their logs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import ValidationError

from profiles.errors import ProfileError
from profiles.runner import BEGIN, END
from profiles.schema import Profile

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
                    "command": ["planner", "profile", model, "--registry", REGISTRY_IN_IMAGE,
                                "--device", "cuda", "--gpu-type", gpu_type, "--format",
                                "markers", *arguments],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }],
            }},
        },
    }


def import_logs(paths: list[Path]) -> list[Profile]:
    """Every profile logged between markers in `paths`; a broken one names file and line."""
    profiles = []
    begin = re.compile(re.escape(BEGIN).replace(r"\{model\}", r"(\S+)")
                       .replace(r"\{gpu_type\}", r"(\S+)"))
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None
        start = None
        for number, line in enumerate(lines, start=1):
            if begin.search(line):
                start = number
            elif line.strip() == END and start is not None:
                text = "\n".join(lines[start:number - 1])
                try:
                    profiles.append(Profile.model_validate(yaml.safe_load(text)))
                except (yaml.YAMLError, ValidationError) as exc:
                    first = str(exc).splitlines()[0]
                    raise ProfileError(f"{path}:{start}: the profile logged here is not valid: "
                                       f"{first}") from None
                start = None
        if start is not None:
            raise ProfileError(f"{path}:{start}: profile begins but never ends; the Job may "
                               "have been cut short")
    if not profiles:
        raise ProfileError(f"no profiles between markers in {', '.join(map(str, paths))}")
    return profiles
