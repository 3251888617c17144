"""Dynamic Resource Allocation as kube-scheduler's DynamicResources plugin and NVIDIA's DRA
driver for GPUs run it, for the claims the manifests use.

A ResourceClaim is allocated when the first pod that references it is scheduled: on the node
that pod goes to, each request gets distinct devices of its DeviceClass that match its
selectors and are allocated to no other claim, and the claim's `matchAttribute` constraints
hold (the devices of the listed requests share the attribute's value). Every later pod of the
claim must go to that node (the allocation's node selector) and uses the devices of the
request its container names (all of the claim's without one). A ResourceClaimTemplate gives
each pod a claim of its own.

The driver publishes each GPU without MIG as a device of class `gpu.nvidia.com`, and each MIG
slice as one of class `mig.nvidia.com` with its `profile` and its parent GPU's UUID (here the
`gpu` index of `nodes.Device`). Selectors are CEL; the simulation reads the one form the
manifests use, `device.attributes['gpu.nvidia.com'].profile == '<profile>'`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from planner.errors import InputError
from planner.simulation.manifests import Manifests
from planner.simulation.nodes import Device, Node

GPU_CLASS = "gpu.nvidia.com"
MIG_CLASS = "mig.nvidia.com"
PARENT = "gpu.nvidia.com/parentUUID"
_PROFILE = re.compile(r"""^device\.attributes\[['"]gpu\.nvidia\.com['"]\]\.profile\s*==\s*"""
                      r"""['"]([^'"]+)['"]$""")

ClaimKey = tuple[str, str]  # namespace, name


@dataclass(frozen=True)
class Request:
    name: str
    device_class: str
    profile: str | None
    count: int


@dataclass(frozen=True)
class Claim:
    key: ClaimKey
    requests: tuple[Request, ...]
    same_gpu: tuple[tuple[str, ...], ...]  # requests whose devices share a parent GPU
    config: dict[str, dict]  # opaque driver parameters by request


@dataclass(frozen=True)
class PodClaim:
    """A claim a pod references, and the requests its containers use (None: all)."""

    claim: ClaimKey
    template: bool
    requests: tuple[str, ...] | None


def _claim(key: ClaimKey, spec: dict, where: str) -> Claim:
    devices = spec.get("devices") or {}
    requests = []
    for request in devices.get("requests") or []:
        exactly = request.get("exactly") or request
        profile = None
        for selector in exactly.get("selectors") or []:
            expression = (selector.get("cel") or {}).get("expression", "")
            match = _PROFILE.match(expression.strip())
            if match is None:
                raise InputError(f"{where}: request {request['name']}: the simulation reads "
                                 f"no selector but a MIG profile's, not {expression!r}")
            profile = match.group(1)
        count = int(exactly.get("count", 1)) if exactly.get("allocationMode",
                                                            "ExactCount") == "ExactCount" \
            else 0
        requests.append(Request(request["name"], exactly.get("deviceClassName", ""), profile,
                                count))
    same_gpu = tuple(tuple(c.get("requests") or [r.name for r in requests])
                     for c in devices.get("constraints") or []
                     if c.get("matchAttribute") == PARENT)
    config = {name: ((c.get("opaque") or {}).get("parameters") or {})
              for c in devices.get("config") or [] for name in c.get("requests") or []}
    return Claim(key, tuple(requests), same_gpu, config)


@dataclass(frozen=True)
class Claims:
    """The manifests' ResourceClaims and ResourceClaimTemplates by namespace and name."""

    claims: dict[ClaimKey, Claim]
    templates: dict[ClaimKey, Claim]

    @classmethod
    def of(cls, manifests: Manifests) -> Claims:
        def key(document: dict) -> ClaimKey:
            meta = document["metadata"]
            return meta.get("namespace", "default"), meta["name"]

        return cls({key(d): _claim(key(d), d.get("spec") or {}, f"ResourceClaim {key(d)[1]}")
                    for d in manifests.kind("ResourceClaim")},
                   {key(d): _claim(key(d), (d.get("spec") or {}).get("spec") or {},
                                   f"ResourceClaimTemplate {key(d)[1]}")
                    for d in manifests.kind("ResourceClaimTemplate")})

    def of_pod(self, namespace: str, pod_name: str, spec: dict) -> tuple[PodClaim, ...]:
        """The claims a pod references; a template's claim is the pod's own."""
        named: dict[str, list[str]] = {}
        whole: set[str] = set()
        for container in spec.get("containers") or []:
            for claim in (container.get("resources") or {}).get("claims") or []:
                if claim.get("request"):
                    named.setdefault(claim["name"], []).append(claim["request"])
                else:
                    whole.add(claim["name"])
        found = []
        for claim in spec.get("resourceClaims") or []:
            requests = tuple(named[claim["name"]]) \
                if claim["name"] in named and claim["name"] not in whole else None
            if claim.get("resourceClaimName"):
                found.append(PodClaim((namespace, claim["resourceClaimName"]), False, requests))
            elif claim.get("resourceClaimTemplateName"):
                found.append(PodClaim((namespace, f"{pod_name}-{claim['name']}"), True,
                                      requests))
        return tuple(found)

    def claim_of(self, pod_claim: PodClaim, spec: dict) -> Claim | None:
        if not pod_claim.template:
            return self.claims.get(pod_claim.claim)
        template_name = next(c["resourceClaimTemplateName"] for c in spec["resourceClaims"]
                             if pod_claim.claim[1].endswith(f"-{c['name']}"))
        template = self.templates.get((pod_claim.claim[0], template_name))
        return None if template is None else Claim(pod_claim.claim, template.requests,
                                                    template.same_gpu, template.config)


def _matches(device: Device, request: Request) -> bool:
    if request.device_class == GPU_CLASS:
        return device.slice is None
    if request.device_class == MIG_CLASS:
        return device.slice is not None and request.profile in (None, device.slice)
    return False


def _too_few(claim: Claim, node: Node, taken: set[int]) -> bool:
    """Whether the node has fewer free devices of some class and profile than the claim's
    requests of that class and profile ask for together: then no allocation exists."""
    asked: dict[tuple[str, str | None], int] = {}
    for request in claim.requests:
        key = (request.device_class, request.profile)
        asked[key] = asked.get(key, 0) + request.count
    return any(sum(1 for i, d in enumerate(node.devices)
                   if i not in taken and _matches(d, Request("", cls, profile, 0))) < count
               for (cls, profile), count in asked.items())


def allocate(claim: Claim, node: Node, taken: set[int]) -> dict[str, tuple[int, ...]] | None:
    """Devices of `node` for each request of `claim`, none of them `taken`; None when they do
    not exist. Requests are served in order, each from the first free devices, backtracking
    where a constraint to one parent GPU fails (as the scheduler's allocator does).

    The search is the scheduler's, with what cannot change its answer cut short: a node with
    too few devices for the requests is refused at once, and a state already explored without
    an allocation (the requests placed so far, the devices they use, and the parent GPUs of
    the groups still to place: slices taken in another order, or groups done on other GPUs,
    lead to the same one) is not explored again."""
    if _too_few(claim, node, taken):
        return None
    group_of = {name: i for i, group in enumerate(claim.same_gpu) for name in group}
    # ahead[i]: the groups of the requests from the i-th on, whose parent GPUs still matter
    ahead = [{group_of[r.name] for r in claim.requests[i:] if r.name in group_of}
             for i in range(len(claim.requests) + 1)]
    failed: set[tuple[int, frozenset[int], frozenset[tuple[int, int]]]] = set()

    def place(index: int, picked: dict[str, tuple[int, ...]], used: set[int],
              gpus: dict[int, int]) -> dict[str, tuple[int, ...]] | None:
        if index == len(claim.requests):
            return picked
        state = (index, frozenset(used),
                 frozenset((g, gpu) for g, gpu in gpus.items() if g in ahead[index]))
        if state in failed:
            return None
        request = claim.requests[index]
        candidates = [i for i, d in enumerate(node.devices)
                      if i not in taken and i not in used and _matches(d, request)]
        group = group_of.get(request.name)
        if group is not None and group in gpus:
            candidates = [i for i in candidates if node.devices[i].gpu == gpus[group]]
        choices = itertools.combinations(candidates, request.count) if group is not None \
            else [tuple(candidates[:request.count])] if len(candidates) >= request.count \
            else []
        for choice in choices:
            parents = {node.devices[i].gpu for i in choice}
            if group is not None and len(parents) > 1:
                continue
            fixed = dict(gpus)
            if group is not None and parents:
                fixed[group] = parents.pop()
            found = place(index + 1, {**picked, request.name: choice}, used | set(choice),
                          fixed)
            if found is not None:
                return found
        failed.add(state)
        return None

    return place(0, {}, set(), {})
