"""What the cluster enforces of each placement rule, under the mechanism that shares each
pool's GPUs.

The plan places every replica on one GPU of one node. The manifests pin a pod to its pool,
and the scheduler holds the node rules (spread cap, node-scope conflicts) through pod
anti-affinity and topology spread. Which GPU of the node a pod gets is the kubelet's and the
NVIDIA device plugin's choice, not the plan's: a time-sliced or MPS replica is any free replica
of any GPU on the node, a MIG pod any free slice of its profile. So rules about one GPU hold
only as far as the sharing mechanism bounds each pod on its own:

- time-slicing isolates neither memory nor compute: per-GPU memory packing, the compute
  share and GPU-scope conflicts hold only on paper; the number of pods per GPU is bounded by
  the device plugin's replicas per GPU;
- MPS limits each client to 1/replicas of the GPU's memory and of its SMs (the MPS control
  daemon's pinned memory limit and active thread percentage); GPU-scope conflicts are not
  enforced;
- MIG isolates memory and compute per slice in hardware; GPU-scope conflicts between slices of
  one GPU are not enforced;
- exclusive pools give each replica whole GPUs: nothing is shared.

Under Dynamic Resource Allocation (`sharing_backend: dra`) the plan picks the GPU: each
planned node of a pool that shares GPUs is one ResourceClaim holding all of its GPUs, a
request per GPU or slice, and a device is allocated to one claim only, so exactly the replicas
planned on a GPU share it, on a node of their own. Which replicas share a GPU (GPU-scope
conflicts, replicas per GPU, the sum of their planned memory and compute) then holds in the
cluster; what one replica may use of its GPU is still the sharing mechanism's: time-slicing
bounds nothing, MPS bounds each client by the claim's limits, MIG by the slice.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.schemas import Policy, Pool, SharingBackend

SHARED_MODES = ("time-slicing", "mps", "mig")


@dataclass(frozen=True)
class Enforcement:
    """Whether the cluster enforces `rule` in `pools`, and by what (or why not)."""

    rule: str
    enforced: bool
    pools: tuple[str, ...]
    how: str


def _names(pools: list[Pool], *modes: str) -> tuple[str, ...]:
    return tuple(p.name for p in pools if p.sharing in modes)


def enforcement(policy: Policy, pools: list[Pool],
                backend: SharingBackend = "device-plugin") -> list[Enforcement]:
    """The rules of `policy` as the cluster holds them in the pools the plan uses, with the
    GPUs handed out by `backend`."""
    result = [Enforcement("spread cap (max_node_share)", True, tuple(p.name for p in pools),
                          "the scheduler: required pod anti-affinity for one replica per node, "
                          "a topology spread constraint bounding each node otherwise")]
    node_rules = [r.name for r in policy.conflicts if r.scope == "node"]
    if node_rules:
        result.append(Enforcement(f"node-scope conflicts ({', '.join(node_rules)})", True,
                                  tuple(p.name for p in pools),
                                  "the scheduler: required pod anti-affinity across "
                                  "namespaces"))
    if backend == "dra":
        return result + _under_dra(policy, pools)
    gpu_rules = [r.name for r in policy.conflicts if r.scope == "gpu"]
    shared = _names(pools, *SHARED_MODES)
    if gpu_rules and shared:
        result.append(Enforcement(f"GPU-scope conflicts ({', '.join(gpu_rules)})", False,
                                  shared, "the device plugin, not the plan, picks each pod's "
                                  "GPU or MIG slice on its node"))
    sliced = _names(pools, "time-slicing")
    if sliced:
        result += [
            Enforcement("per-GPU memory packing", False, sliced,
                        "time-slicing isolates no memory: which replicas share a GPU is the "
                        "device plugin's choice, and any of them may use all of its memory"),
            Enforcement("per-GPU compute share (target_utilization)", False, sliced,
                        "time-slicing gives every pod on a GPU equal time slices, unbounded"),
            Enforcement("max_models_per_gpu", True, sliced,
                        "the device plugin advertises that many replicas of each GPU"),
        ]
    mps = _names(pools, "mps")
    if mps:
        result.append(Enforcement(
            "per-GPU memory and compute", True, mps,
            "MPS limits each client to 1/replicas of the GPU's memory and SMs; which clients "
            "share a GPU is the device plugin's choice"))
    mig = _names(pools, "mig")
    if mig:
        result.append(Enforcement("per-slice memory and compute", True, mig,
                                  "MIG slices are isolated in hardware"))
    return result


def _under_dra(policy: Policy, pools: list[Pool]) -> list[Enforcement]:
    """What the claims of the DRA driver hold beyond the node rules."""
    result = []
    shared = _names(pools, *SHARED_MODES)
    claims = "each planned node is one ResourceClaim holding all of its GPUs, a request " \
             "per GPU or slice used only by the replicas planned on it"
    if shared:
        result.append(Enforcement("placement on the planned GPU and node", True, shared,
                                  "the DRA driver: " + claims))
    gpu_rules = [r.name for r in policy.conflicts if r.scope == "gpu"]
    if gpu_rules and shared:
        result.append(Enforcement(f"GPU-scope conflicts ({', '.join(gpu_rules)})", True,
                                  shared, "the DRA driver: " + claims))
    sliced = _names(pools, "time-slicing")
    if sliced:
        result += [
            Enforcement("max_models_per_gpu", True, sliced,
                        "the DRA driver: only the replicas planned on a GPU use its claim"),
            Enforcement("per-GPU memory packing", False, sliced,
                        "time-slicing isolates no memory: the claim keeps each GPU to its "
                        "planned replicas, but any of them may use all of its memory"),
            Enforcement("per-GPU compute share (target_utilization)", False, sliced,
                        "time-slicing gives every pod on a GPU equal time slices, unbounded"),
        ]
    mps = _names(pools, "mps")
    if mps:
        result.append(Enforcement(
            "per-GPU memory and compute", True, mps,
            "the claim's MPS control daemon limits each of the GPU's planned clients to "
            "1/replicas of its memory (pinned device memory limit) and SMs (active thread "
            "percentage)"))
    mig = _names(pools, "mig")
    if mig:
        result.append(Enforcement("per-slice memory and compute", True, mig,
                                  "MIG slices are isolated in hardware"))
    return result
