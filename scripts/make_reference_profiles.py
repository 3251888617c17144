"""Write reference profiles for every model and GPU type it may run on that has no profile yet.

    python scripts/make_reference_profiles.py [--registry planner/demo/registry] [--force]

Parameters and FLOPs per request are counted from each model's torch factory on the meta
device (no memory, no weights); the rest is the roofline estimate of `profiles.reference`.
Measured profiles (`method: measured`) are never overwritten; `llm` models are skipped (the
planner estimates them in tokens, `profiles.generation`). Needs the `profile` extra.
"""

from __future__ import annotations

import argparse
import importlib
import math
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from planner.rules.admission import admitting_pools
from planner.rules.mig import slice_gpu_type
from planner.schemas import Cluster, ModelSpec, Policy
from profiles.reference import GPU_SPECS, MIB, Workload, reference_profile
from profiles.schema import Profile

BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def _workload(spec: ModelSpec) -> Workload:
    module, function = spec.source.factory.split(":")
    factory = getattr(importlib.import_module(module), function)
    kwargs = spec.source.kwargs
    dtype_bytes = BYTES[spec.source.dtype]
    with torch.device("meta"):
        model = factory(**kwargs)
        parameters = sum(p.numel() for p in model.parameters())
        shape = (1, *spec.source.input.shape)
        dtype = getattr(torch, spec.source.input.dtype)
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(shape, dtype=dtype))
    flops = counter.get_total_flops()
    if "hidden" in kwargs:  # token models: live hidden states and attention scores
        seq = spec.source.input.shape[0]
        activation = (16 * seq * kwargs["hidden"] + kwargs.get("heads", 1) * seq * seq)
        activation_mib = activation * dtype_bytes / MIB
    elif "width" in kwargs:  # CNNs: a few copies of the largest feature map
        pixels = math.prod(spec.source.input.shape[1:])
        activation_mib = 4 * kwargs["width"] * pixels / 4 * dtype_bytes / MIB
    else:  # MLPs
        activation_mib = 4 * kwargs.get("hidden", 1024) * dtype_bytes / MIB
    return Workload(parameters=parameters, bytes_per_parameter=dtype_bytes,
                    flops_per_request=flops, activation_mib_per_request=activation_mib,
                    gpus=spec.gpus_per_replica)


def _basis(spec: ModelSpec) -> str:
    shape = ", ".join(f"{k}={v}" for k, v in spec.source.kwargs.items())
    return f"counted from {spec.source.factory}({shape}) on the meta device"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, default=Path("planner/demo/registry"))
    parser.add_argument("--force", action="store_true", help="rewrite existing reference files")
    args = parser.parse_args()
    root = args.registry
    cluster = Cluster.model_validate(yaml.safe_load((root / "cluster.yaml").read_text()))
    policy = Policy.model_validate(yaml.safe_load((root / "policy.yaml").read_text()))
    for path in sorted((root / "models").glob("*.yaml")):
        spec = ModelSpec.model_validate(yaml.safe_load(path.read_text()))
        if spec.llm is not None:  # estimated in tokens when planned (profiles.generation)
            continue
        work = _workload(spec)
        levels = [2**i for i in range(8) if 2**i <= spec.limits.max_concurrency]
        pools = [pool for pool, _ in admitting_pools(spec, cluster, policy)]
        gpu_types = {pool.gpu_type for pool in pools if pool.gpu_type is not None}
        if spec.shares_gpu:  # a MIG slice is a device of its own, estimated at its specs
            gpu_types |= {slice_gpu_type(pool.gpu_type, name) for pool in pools
                          if pool.sharing == "mig"
                          for name in cluster.gpu_types[pool.gpu_type].mig_profiles
                          if slice_gpu_type(pool.gpu_type, name) in GPU_SPECS}
        for gpu_type in sorted(gpu_types):
            target = root / "profiles" / spec.name / f"{gpu_type}.yaml"
            if target.exists():
                existing = Profile.model_validate(yaml.safe_load(target.read_text()))
                if existing.method == "measured" or not args.force:
                    continue
            profile = reference_profile(spec.name, gpu_type, work, levels, _basis(spec))
            target.parent.mkdir(parents=True, exist_ok=True)
            body = {"apiVersion": profile.api_version, "kind": profile.kind,
                    **profile.model_dump(mode="json", exclude_defaults=True,
                                         exclude={"api_version", "kind"})}
            target.write_text("# Reference profile: estimated, not measured. Regenerate with\n"
                              "# python scripts/make_reference_profiles.py --force\n"
                              + yaml.safe_dump(body, sort_keys=False, width=100))
            print(f"wrote {target}")


if __name__ == "__main__":
    main()
