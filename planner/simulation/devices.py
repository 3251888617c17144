"""Device allocation on the node the scheduler binds a pod to, by the mechanism the pod's
manifests use.

- Extended resources (`nvidia.com/gpu`, `nvidia.com/gpu.shared`, `nvidia.com/mig-<profile>`):
  NVIDIA's device plugin hands out devices of the requested resource on the node; the plan's
  choice of GPU is not visible to it. For a shared GPU its default `distributed` policy
  (k8s-device-plugin internal/rm/allocate.go) takes the GPU with the fewest replicas
  allocated; its ties go by Go map order, arbitrary, taken here as the lowest GPU index. Whole
  GPUs and MIG slices go to the first free one. The pod lands on its node, not on a GPU the
  manifests chose (`Use.pinned` False).
- ResourceClaims (`spec.resourceClaims`): Dynamic Resource Allocation (`claims`). The claim's
  devices are allocated once, on the node its first pod goes to; the pods of a claim share
  them, each using the devices of the request its container names, so the manifests choose
  which replicas share a GPU (`Use.pinned` True). A request's opaque GpuConfig sets its
  sharing: time-slicing, or MPS with each client's pinned memory limit.

A device is either the device plugin's or one claim's, never both.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from planner.simulation.claims import Claim, ClaimKey, Claims, allocate
from planner.simulation.nodes import Node
from planner.simulation.pods import Pod, quantity

ClaimAllocation = tuple[tuple[str, tuple[int, ...]], ...]  # (request, devices) pairs


@dataclass(frozen=True)
class Use:
    """One device a pod uses: its index in the node's devices, how it is shared, an MPS
    client's memory limit in MiB, and whether the manifests chose it (a claim's request)."""

    device: int
    sharing: str | None = None  # "timeSlicing" or "mps"
    memory_limit_mib: int | None = None
    pinned: bool = False


@dataclass(frozen=True)
class Allocation:
    """A pod's devices on a node, and the allocations of the claims it references."""

    uses: tuple[Use, ...] = ()
    claims: tuple[tuple[ClaimKey, ClaimAllocation], ...] = ()


@dataclass(frozen=True)
class NodeState:
    """What is allocated already: replicas of each device the device plugin handed out on the
    node, the node's devices claims hold, and every claim's node and devices."""

    plugin_used: Counter[int]
    claimed: frozenset[int]
    claims: dict[ClaimKey, tuple[str, ClaimAllocation]]


def _sharing(claim: Claim, request: str, gpu_memory_mib: int) -> tuple[str | None, int | None]:
    """The sharing a request's GpuConfig sets, and an MPS client's memory limit in MiB."""
    sharing = (claim.config.get(request) or {}).get("sharing") or {}
    strategy = sharing.get("strategy")
    if strategy == "MPS":
        limit = (sharing.get("mpsConfig") or {}).get("defaultPinnedDeviceMemoryLimit")
        return "mps", int(quantity(limit) / 2**20) if limit else gpu_memory_mib
    return ("timeSlicing", None) if strategy == "TimeSlicing" else (None, None)


class Devices:
    """The allocation step (see the module's docstring)."""

    def __init__(self, claims: Claims | None = None):
        self.claims = claims or Claims({}, {})

    def allocate(self, node: Node, state: NodeState, pod: Pod) -> Allocation | str:
        """The pod's devices on `node`, or why there are none."""
        uses: list[Use] = []
        claims = []
        claimed = set(state.claimed)
        for pod_claim in self.claims.of_pod(pod.namespace, pod.name, pod.spec):
            claim = self.claims.claim_of(pod_claim, pod.spec)
            if claim is None:
                return f"resourceclaim {pod_claim.claim[1]} not found"
            if pod_claim.claim in state.claims:
                where, allocation = state.claims[pod_claim.claim]
                if where != node.name:
                    return "resourceclaim not available on the node"
            else:
                found = allocate(claim, node, claimed | set(state.plugin_used))
                if found is None:
                    return "cannot allocate all claims"
                allocation = tuple(sorted(found.items()))
                claimed |= {i for _, devices in allocation for i in devices}
            claims.append((pod_claim.claim, allocation))
            for request, devices in allocation:
                if pod_claim.requests is None or request in pod_claim.requests:
                    sharing, limit = _sharing(claim, request, node.gpu_memory_mib)
                    uses += [Use(i, sharing, limit, True) for i in devices]
        picks = self._plugin(node, state.plugin_used, claimed, pod)
        if picks is None:
            return "no free device of the requested resource"
        for index in picks:
            device = node.devices[index]
            limit = node.gpu_memory_mib // device.replicas if device.sharing == "mps" else None
            uses.append(Use(index, device.sharing, limit))
        return Allocation(tuple(uses), tuple(claims))

    @staticmethod
    def _plugin(node: Node, used: Counter[int], claimed: set[int],
                pod: Pod) -> list[int] | None:
        """The device plugin's picks for the pod's extended resources."""
        picks: list[int] = []
        for resource, count in sorted(pod.requests.items()):
            candidates = [i for i, d in enumerate(node.devices)
                          if d.resource == resource and i not in claimed]
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
        return picks
