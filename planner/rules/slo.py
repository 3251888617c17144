"""Whether a pool could ever meet a model's latency objective: the fastest p99 it could get.

A pool plans a model from the profile of its GPU type (in a MIG pool, from the profiles of its
slice types when there are any) and only from usable points: stable, within
`max_concurrency`, and with memory per GPU the pool allows. Sharing never makes a replica
faster: time-slicing stretches its p99 by at least one, an MPS client by the pool's client
count, whatever the load. So the lowest p99 of the usable points, times the MPS client count,
bounds every operating point the pool could give (a CPU pod has its CPU to itself: its
profile's p99 as measured); a model whose SLO is below that bound on
every pool that admits it can never be placed, which loading reports as an input error.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.rules.capacity import replicas_per_gpu, usable_memory_mib
from planner.rules.fit import memory_limit_mib, memory_per_gpu_mib
from planner.rules.mig import slice_gpu_type
from planner.schemas import Cluster, ModelSpec, Policy, Pool
from profiles.schema import CPU_DEVICE, Point, Profile


@dataclass(frozen=True)
class Fastest:
    """The lowest p99 one profile gives a model in a pool (None: no usable point)."""

    pool: str
    gpu_type: str  # the profile's: a slice type in a MIG pool with slice profiles
    point: Point | None
    p99_ms: float | None  # the point's p99, times the MPS client count in an MPS pool

    def describe(self) -> str:
        if self.point is None:
            return f"no usable point on {self.gpu_type} ({self.pool})"
        stretched = "" if self.p99_ms == self.point.p99_ms else \
            f", {self.p99_ms:g} ms as an MPS client"
        return (f"{self.point.p99_ms:g} ms at concurrency {self.point.concurrency} on "
                f"{self.gpu_type} ({self.pool}{stretched})")


def _fastest(model: ModelSpec, pool: Pool, gpu_type: str, profile: Profile,
             limit_mib: int, clients: int) -> Fastest:
    usable = [p for p in profile.points
              if p.stable and p.concurrency <= model.limits.max_concurrency
              and memory_per_gpu_mib(p.peak_memory_mib, model.gpus_per_replica) <= limit_mib]
    if not usable:
        return Fastest(pool.name, gpu_type, None, None)
    best = min(usable, key=lambda p: (p.p99_ms, p.concurrency))
    return Fastest(pool.name, gpu_type, best, best.p99_ms * clients)


def fastest_on_pool(model: ModelSpec, pool: Pool, cluster: Cluster, policy: Policy,
                    profiles: dict[tuple[str, str], Profile]) -> list[Fastest]:
    """The lowest p99 each profile the pool would plan `model` from gives; empty when the
    model has no such profile. A CPU pool plans from the CPU profile, whose memory is the
    pod's host memory."""
    if pool.gpu_type is None:
        cpu = profiles.get((model.name, CPU_DEVICE))
        return [] if cpu is None else [_fastest(model, pool, CPU_DEVICE, cpu,
                                                model.serving.host_memory_mib, 1)]
    gpu = cluster.gpu_types[pool.gpu_type]
    if pool.sharing == "mig":
        slices = [(slice_gpu_type(pool.gpu_type, name), kind)
                  for name, kind in sorted(gpu.mig_profiles.items())]
        found = [_fastest(model, pool, name, profiles[(model.name, name)],
                          usable_memory_mib(kind.memory_mib, policy), 1)
                 for name, kind in slices if (model.name, name) in profiles]
        if found:
            return found
    profile = profiles.get((model.name, pool.gpu_type))
    if profile is None:
        return []
    clients = replicas_per_gpu(pool, policy) if pool.sharing == "mps" and model.shares_gpu \
        else 1
    return [_fastest(model, pool, pool.gpu_type, profile,
                     memory_limit_mib(cluster, pool, policy), clients)]


def meets_slo(fastest: Fastest, model: ModelSpec) -> bool:
    return fastest.p99_ms is not None and fastest.p99_ms <= model.slo.p99_ms
