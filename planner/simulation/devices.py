"""Device allocation on a node once the scheduler has bound a pod there.

The device plugin (NVIDIA k8s-device-plugin) hands out devices of the requested resource on
the node it is asked about; the plan's choice of GPU is not visible to it. For a shared GPU
its default `distributed` policy (internal/rm/allocate.go) takes the GPU with the fewest
replicas allocated; its ties go by Go map order, arbitrary, taken here as the lowest GPU
index. Whole GPUs and MIG slices go to the first free one. So a pod lands on the planned node
but not necessarily the planned GPU: `pins` is False, and a replay compares nodes only.

An allocator that pins a pod to the GPU its manifests name (a DRA ResourceClaim whose
selector picks one GPU) implements the same two members with `pins` True; the replay then
compares GPUs too.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from planner.simulation.nodes import Node
from planner.simulation.pods import Pod


class Allocator(Protocol):
    pins: bool

    def allocate(self, node: Node, used: Counter[int], pod: Pod) -> tuple[int, ...] | None:
        """Indexes into `node.devices` the pod gets (one per unit of each device resource it
        requests), given the replicas `used` of each device; None when they are not free."""
        ...


class DevicePlugin:
    """The device plugin's allocation (see the module's docstring)."""

    pins = False

    def allocate(self, node: Node, used: Counter[int], pod: Pod) -> tuple[int, ...] | None:
        picks: list[int] = []
        for resource, count in sorted(pod.requests.items()):
            candidates = [i for i, d in enumerate(node.devices) if d.resource == resource]
            if not candidates:
                continue
            for _ in range(count):
                taken = Counter(picks)
                free = [i for i in candidates
                        if used[i] + taken[i] < node.devices[i].replicas]
                if not free:
                    return None
                picks.append(min(free, key=lambda i: (used[i] + taken[i],
                                                      node.devices[i].gpu, i)))
        return tuple(picks)
