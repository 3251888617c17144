"""MIG fit: what a slice of a MIG GPU holds, and which slice a replica takes.

A slice of `compute_slices` out of the GPU's seven gets that fraction of its compute and the
slice's own memory, both under the policy's headroom and utilisation; a replica takes the
smallest slice (fewest compute slices, then least memory) that holds it.
"""

from __future__ import annotations

from planner.rules.capacity import usable_compute_milli, usable_memory_mib
from planner.schemas import MIG_COMPUTE_SLICES, Cluster, GpuType, MigProfile, Policy


def slice_fraction(profile: MigProfile) -> float:
    """The slice's share of the whole GPU's compute."""
    return profile.compute_slices / MIG_COMPUTE_SLICES


def slice_capacity(profile: MigProfile, policy: Policy) -> tuple[int, int, int]:
    """What one slice may hold: memory MiB, compute milli (of the whole GPU), one replica."""
    return (usable_memory_mib(profile.memory_mib, policy),
            usable_compute_milli(slice_fraction(profile), policy), 1)


def smallest_slice(gpu: GpuType, policy: Policy, memory_mib: int,
                   compute_milli: int) -> str | None:
    """The MIG profile with the fewest compute slices that holds a replica, if any."""
    fitting = [(p.compute_slices, p.memory_mib, name) for name, p in gpu.mig_profiles.items()
               if memory_mib <= slice_capacity(p, policy)[0]
               and compute_milli <= slice_capacity(p, policy)[1]]
    return min(fitting)[2] if fitting else None


def slice_gpu_type(gpu_type: str, profile: str) -> str:
    """The GPU type a MIG slice is profiled as: a slice is a device of its own (its SMs, its
    share of memory bandwidth), so `profiles/<model>/a100-80gb-1g.10gb.yaml` measures one."""
    return f"{gpu_type}-{profile}"


def slice_gpu_types(cluster: Cluster) -> set[str]:
    """Every MIG slice of the cluster's GPU types, named as a GPU type of its own."""
    return {slice_gpu_type(name, profile) for name, gpu in cluster.gpu_types.items()
            for profile in gpu.mig_profiles}
