"""A plan's manifests replayed pod by pod, and the plan's rules checked on where they land.

Pods are taken in the scheduling queue's order (highest priority first, then by name). Each
is bound to the node the plan places its replica on when the scheduler's filters and the
device allocation admit it there; otherwise it goes through the scheduler (any node, then
preemption), and the refusal on its planned node is what the replay reports. Evicted pods go
back to the queue.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from planner.planfile import Plan
from planner.simulation import filters
from planner.simulation.claims import Claims
from planner.simulation.devices import Devices
from planner.simulation.manifests import Manifests
from planner.simulation.modelmesh import member_problems
from planner.simulation.nodes import ZONE, planned_nodes
from planner.simulation.pods import Pod, pods_of, replicas_by_model
from planner.simulation.scheduler import Cluster

# The rules a replay checks, in the order it reports them.
RUNS = "every pod runs"
REPLICAS = "replicas as planned"
PLACEMENT = "placement as planned"
SPREAD = "spread cap (max_node_share)"
ZONE_SPREAD = "zone spread (zone_max_skew)"
ZONES = "zones as planned"
CONFLICTS = "node-scope conflicts"
MPS_MEMORY = "MPS client memory"
SLICED_MEMORY = "per-GPU memory packing"
CACHE_MEMBERS = "cache members loaded by ModelMesh"


@dataclass(frozen=True)
class Landing:
    """Where one pod runs against where the plan puts it; `reason` says why it is elsewhere or
    pending."""

    pod: str
    model: str
    replica: int
    planned_node: str | None
    planned_gpus: tuple[int, ...]
    node: str | None
    gpus: tuple[int, ...]
    reason: str | None = None
    pinned: bool = False  # the manifests chose its GPUs (DRA claims), not the device plugin


@dataclass(frozen=True)
class RuleCheck:
    """A rule of the plan on the replayed cluster: `holds` False with the problems, or None
    where the cluster does not enforce it (`problems` then says where it would break)."""

    rule: str
    holds: bool | None
    problems: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Simulation:
    landings: list[Landing]
    rules: list[RuleCheck]
    cluster: Cluster
    pods: list[Pod] = field(default_factory=list)

    @property
    def runs(self) -> bool:
        """Whether the plan can run: every enforced rule holds."""
        return all(r.holds is not False for r in self.rules)


Slot = tuple[str, tuple[int, ...]]  # a planned replica's node and GPUs


def planned_slots(plan: Plan) -> dict[str, list[Slot]]:
    """Each model's planned replicas' nodes and GPUs, in replica order; a reserved cache's
    servers under the name of their workload."""
    slots: dict[tuple[str, int], tuple[str, list[int]]] = {}
    workload = {c.name: c.workload for p in plan.pools for c in p.caches}
    for pool in plan.pools:
        for node in pool.nodes:
            for gpu in node.gpus:
                for slot in gpu.replicas:
                    _, gpus = slots.setdefault((slot.model, slot.replica), (node.name, []))
                    gpus.append(gpu.index)
                for server in gpu.caches:
                    slots[(workload[server.cache], server.server)] = (node.name, [gpu.index])
            for slot in node.pods:  # a CPU pool's pods hold no GPU
                slots.setdefault((slot.model, slot.replica), (node.name, []))
    by_model: dict[str, list[Slot]] = defaultdict(list)
    for (model, _), (where, indexes) in sorted(slots.items()):
        by_model[model].append((where, tuple(sorted(indexes))))
    return by_model


def _take(remaining: list[Slot], node: str | None) -> Slot | None:
    """The first remaining slot on `node` (any node when None), removed."""
    for index, slot in enumerate(remaining):
        if node is None or slot[0] == node:
            return remaining.pop(index)
    return None


def _preferred(plan: Plan, pods: list[Pod], claims: Claims) -> dict[str, str | None]:
    """The node each pod is offered first: a pod whose ResourceClaim is named after a planned
    node (the DRA backend's node claims) goes to that node; the others take their model's
    planned replicas in order."""
    slots = planned_slots(plan)
    planned_nodes = {n.name for p in plan.pools for n in p.nodes}
    remaining = {model: list(found) for model, found in slots.items()}
    preferred: dict[str, str | None] = {}
    for pod in pods:
        named = [c.claim[1] for c in claims.of_pod(pod.namespace, pod.name, pod.spec)
                 if not c.template and c.claim[1] in planned_nodes]
        if named:
            _take(remaining.get(pod.model, []), named[0])
            preferred[pod.name] = named[0]
    for pod in pods:
        if pod.name not in preferred:
            slot = _take(remaining.get(pod.model, []), None)
            preferred[pod.name] = slot[0] if slot else None
    return preferred


def _matched(plan: Plan, pods: list[Pod], cluster: Cluster) -> dict[str, Slot | None]:
    """Each pod's planned replica: one planned on the node it runs on where there is one,
    else one the model's running pods left over."""
    remaining = {model: list(found) for model, found in planned_slots(plan).items()}
    matched: dict[str, Slot | None] = {}
    for pod in pods:
        binding = cluster.bindings.get(pod.name)
        if binding is not None:
            slot = _take(remaining.get(pod.model, []), binding.node)
            if slot is not None:
                matched[pod.name] = slot
    for pod in pods:
        if pod.name not in matched:
            matched[pod.name] = _take(remaining.get(pod.model, []), None)
    return matched


def run_queue(cluster: Cluster, queue: list[Pod], preferred: dict[str, str | None]
              ) -> dict[str, str]:
    """Schedule `queue` (taken by priority, then name; evicted pods rejoin it), each pod on
    its preferred node where the filters admit it. A pod its preferred node refuses waits
    until the queue is through and is offered that node again while other pods keep binding
    (the scheduler retries an unschedulable pod when a pod binds: a zone spread admits a pod
    only once other zones caught up); when a round binds nothing, the pods still refused go
    through the scheduler. Returns why each pod is not on its preferred node (or pending),
    by pod name."""
    reasons: dict[str, str] = {}
    pending = sorted(queue, key=lambda p: (-p.priority, p.name))
    waiting: list[Pod] = []
    settled: set[str] = set()  # refused in a round that bound nothing: no more waiting
    bound = False
    while pending or waiting:
        if not pending:
            if not bound:
                settled |= {p.name for p in waiting}
            pending, waiting, bound = sorted(waiting, key=lambda p: (-p.priority, p.name)), \
                [], False
        pod = pending.pop(0)
        if pod.refused:
            reasons[pod.name] = pod.refused
            continue
        want = preferred.get(pod.name)
        refusal = None
        if want is not None:
            refusal = cluster.refusal(pod, want) if want in cluster.nodes else \
                "its planned node does not exist"
            if refusal is None:
                cluster.bind(pod, want)
                bound = True
                reasons.pop(pod.name, None)
                continue
            if pod.name not in settled and want in cluster.nodes:
                waiting.append(pod)
                continue
        binding, victims, why = cluster.schedule(pod)
        reasons[pod.name] = f"{want}: {refusal}" if refusal else (why or "not in the plan")
        if binding is None:
            continue
        bound = True
        for victim in victims:
            reasons[victim.name] = f"preempted by {pod.name}"
        pending = sorted(pending + victims, key=lambda p: (-p.priority, p.name))
    return reasons


def replay(plan: Plan, manifests: Manifests, *, zones: int = 1) -> Simulation:
    """Replay `manifests` on the nodes of `plan` and check the plan's rules."""
    claims = Claims.of(manifests)
    nodes, missing = planned_nodes(plan, manifests, zones)
    cluster = Cluster(nodes, Devices(claims))
    pods = pods_of(manifests)
    reasons = run_queue(cluster, pods, _preferred(plan, pods, claims))
    matched = _matched(plan, pods, cluster)
    landings = []
    for pod in pods:
        planned_node, planned_gpus = matched[pod.name] or (None, ())
        binding = cluster.bindings.get(pod.name)
        uses = binding.allocation.uses if binding else ()
        gpus = tuple(sorted({cluster.nodes[binding.node].devices[u.device].gpu
                             for u in uses})) if binding else ()
        landings.append(Landing(pod.name, pod.model, pod.replica, planned_node, planned_gpus,
                                binding.node if binding else None, gpus,
                                reasons.get(pod.name),
                                bool(uses) and all(u.pinned for u in uses)))
    rules = check_rules(plan, manifests, cluster, pods, landings, missing)
    return Simulation(landings, rules, cluster, pods)


def _runs(plan: Plan, manifests: Manifests, landings: list[Landing],
          missing: list[str]) -> RuleCheck:
    problems = list(missing)
    named = replicas_by_model(manifests)
    problems += [f"{m.name}: no workload in the manifests" for m in plan.models
                 if m.cache is None and m.name not in named]
    problems += [f"{c.name}: no server workload in the manifests" for c in plan.held_caches()
                 if c.workload not in named]
    problems += [f"{landing.pod}: pending ({landing.reason})" for landing in landings
                 if landing.node is None]
    return RuleCheck(RUNS, not problems, tuple(problems))


def _replicas(plan: Plan, manifests: Manifests) -> RuleCheck:
    named = replicas_by_model(manifests)
    problems = [f"{m.name}: {named[m.name]} replicas in the manifests, {m.replicas} planned"
                for m in plan.models if m.name in named and m.cache is None
                and named[m.name] != m.replicas]
    problems += [f"{m.name}: {named[m.name]} pods of its own in the manifests, planned in "
                 f"{m.cache}" for m in plan.models if m.name in named and m.cache is not None]
    problems += [f"{c.name}: {named[c.workload]} servers in the manifests, {c.servers} planned"
                 for p in plan.pools for c in p.caches if c.reserved and c.workload in named
                 and named[c.workload] != c.servers]
    problems += [f"{name}: not in the plan" for name in sorted(named)
                 if plan.model(name) is None and plan.cache(name) is None]
    return RuleCheck(REPLICAS, not problems, tuple(problems))


def _gpu_groups(plan: Plan, landings: list[Landing]) -> list[str]:
    """On each node whose pods all run on GPUs their manifests chose, whether the replicas
    that share each GPU are the ones the plan puts together (which physical GPU of the node
    it is does not matter: the node's GPUs are alike)."""
    planned: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for pool in plan.pools:
        for node in pool.nodes:
            for gpu in node.gpus:
                planned[node.name][gpu.index] += [r.model for r in gpu.replicas]
    landed: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    pinned: dict[str, bool] = {}
    for landing in landings:
        if landing.node is not None:
            pinned[landing.node] = pinned.get(landing.node, True) and landing.pinned
            for index in landing.gpus:
                landed[landing.node][index].append(landing.model)

    def groups(by_gpu: dict[int, list[str]]) -> list[list[str]]:
        return sorted(sorted(models) for models in by_gpu.values())

    return [f"{node}: GPUs hold {groups(landed[node])}, planned {groups(planned[node])}"
            for node in sorted(landed) if pinned[node]
            and groups(landed[node]) != groups(planned.get(node, {}))]


def _placement(plan: Plan, landings: list[Landing]) -> RuleCheck:
    problems = [f"{x.pod}: on {x.node}, planned on {x.planned_node} ({x.reason})"
                for x in landings if x.node is not None and x.planned_node is not None
                and x.node != x.planned_node]
    problems += _gpu_groups(plan, landings)
    unpinned = any(x.node is not None and not x.pinned and x.gpus  # a CPU pod has none
                   for x in landings)
    note = "by node where the device plugin, not the manifests, picks each pod's GPU" \
        if unpinned else ""
    return RuleCheck(PLACEMENT, not problems, tuple(problems), note)


def _node_rules(plan: Plan, cluster: Cluster, pods: list[Pod]) -> list[RuleCheck]:
    """The spread cap and the node-scope conflicts, on the replayed placement and as the
    manifests enforce them (`_unenforced`)."""
    per_node: dict[str, Counter[str]] = defaultdict(Counter)
    for binding in cluster.bindings.values():
        per_node[binding.node][binding.pod.model] += 1
    spread, conflicts = [], []
    for node, counts in sorted(per_node.items()):
        for name, count in sorted(counts.items()):
            model = plan.model(name)
            if model is None:
                continue
            cap = model.max_replicas_per_node
            if cap is not None and count > cap:
                spread.append(f"{node}: {count} replicas of {name}, at most {cap}")
            together = sorted(set(model.apart_on_node) & set(counts))
            if together and name < together[0]:
                conflicts.append(f"{node}: {name} with {', '.join(together)}")
    more_spread, more_conflicts = _unenforced(plan, cluster, pods)
    return [RuleCheck(SPREAD, not spread + more_spread, tuple(spread + more_spread)),
            RuleCheck(CONFLICTS, not conflicts + more_conflicts,
                      tuple(conflicts + more_conflicts))]


def _unenforced(plan: Plan, cluster: Cluster, pods: list[Pod]) -> tuple[list[str], list[str]]:
    """Node rules the scheduler would not hold for the manifests as they are, found by asking
    its filters about the worst case: one more replica of a capped model onto a node while
    every node it may use already holds the cap; a model's pod onto a node holding a pod of
    a model it is kept apart from."""
    first: dict[str, Pod] = {}
    for pod in pods:
        first.setdefault(pod.model, pod)
    labels = [n.labels for n in cluster.nodes.values()]
    home = {b.pod.model: cluster.nodes[b.node].labels
            for b in sorted(cluster.bindings.values(), key=lambda b: b.pod.name, reverse=True)}
    spread, conflicts = [], []
    for model in plan.models:
        if model.name not in first or model.name not in home:
            continue
        pod, node = first[model.name], home[model.name]
        cap = model.max_replicas_per_node
        if cap is not None:
            full = [(n, pod) for n in labels if filters.node_affinity_matches(pod, n)
                    for _ in range(cap)]
            if filters.spread_refusal(pod, node, labels, full) is None and \
                    filters.anti_affinity_refusal(pod, node, full) is None:
                spread.append(f"{model.name}: the manifests admit a replica beyond {cap} on "
                              f"{node[filters.HOSTNAME]}")
        for other in model.apart_on_node:
            if other in first and model.name < other and \
                    filters.node_affinity_matches(first[other], node) and \
                    filters.anti_affinity_refusal(pod, node, [(node, first[other])]) is None:
                conflicts.append(f"{model.name} and {other}: the manifests let them share "
                                 f"{node[filters.HOSTNAME]}")
    return spread, conflicts


def _zones(plan: Plan, cluster: Cluster) -> list[RuleCheck]:
    """Every planned node that has a zone in the plan is in that zone (its NodePool's)."""
    planned = {n.name: n.zone for p in plan.pools for n in p.nodes if n.zone}
    if not planned:
        return []
    problems = [f"{name}: in {cluster.nodes[name].labels.get(ZONE)}, planned in {zone}"
                for name, zone in sorted(planned.items()) if name in cluster.nodes
                and cluster.nodes[name].labels.get(ZONE) != zone]
    return [RuleCheck(ZONES, not problems, tuple(problems))]


def _zone_spread(plan: Plan, cluster: Cluster, pods: list[Pod]) -> list[RuleCheck]:
    """Each model's replicas per zone within its `zone_max_skew` over the zones of the nodes
    its pods may select, on the replayed placement; and as the manifests enforce it, asked of
    the filter's zone constraints: one more replica into a zone already `zone_max_skew` ahead
    of another must be refused."""
    skewed = [(m, m.zone_max_skew) for m in plan.models if m.zone_max_skew is not None]
    if not skewed:
        return []
    first: dict[str, Pod] = {}
    for pod in pods:
        first.setdefault(pod.model, pod)
    labels = [n.labels for n in cluster.nodes.values()]
    problems = []
    for model, skew in skewed:
        sample = first.get(model.name)
        if sample is None:
            continue
        eligible = [n for n in labels if filters.node_affinity_matches(sample, n) and ZONE in n]
        counts: Counter[str] = Counter({n[ZONE]: 0 for n in eligible})
        for binding in cluster.bindings.values():
            if binding.pod.model == model.name:
                counts[cluster.nodes[binding.node].labels.get(ZONE, "")] += 1
        if counts and max(counts.values()) - min(counts.values()) > skew:
            problems.append(f"{model.name}: {dict(sorted(counts.items()))} replicas per zone, "
                            f"skew at most {skew}")
        zones = sorted(counts)
        if len(zones) < 2:
            continue
        ahead = next(n for n in eligible if n[ZONE] == zones[0])
        zonal = dataclasses.replace(sample, spec={**sample.spec, "topologySpreadConstraints": [
            c for c in sample.spec.get("topologySpreadConstraints") or []
            if c.get("topologyKey") == ZONE]})
        if filters.spread_refusal(zonal, ahead, labels, [(ahead, zonal)] * skew) is None:
            problems.append(f"{model.name}: the manifests admit a replica into {zones[0]} "
                            f"{skew} ahead of {zones[1]}")
    return [RuleCheck(ZONE_SPREAD, not problems, tuple(problems))]


def _gpu_memory(plan: Plan, cluster: Cluster) -> list[RuleCheck]:
    """GPU memory as the device allocation shares it. An MPS client is capped at its pinned
    memory limit (the device plugin's: the GPU's memory over its replicas; a DRA claim's: its
    GpuConfig's), so a replica planned above it fails. Time-slicing caps nothing: the
    replicas that share a GPU must fit it together. Where the manifests chose the GPU (DRA)
    that is the plan's packing, checked; where the device plugin chose, the plan's packing is
    not enforced, and the GPUs its allocation would overfill are listed, not failed."""
    mps, sliced = [], []
    seen = set()
    chosen_by_plugin = False
    on_gpu: dict[tuple[str, int], list[str]] = defaultdict(list)
    for binding in sorted(cluster.bindings.values(), key=lambda b: b.pod.name):
        node = cluster.nodes[binding.node]
        model = plan.model(binding.pod.model)
        for use in binding.allocation.uses:
            seen.add(use.sharing)
            if use.sharing == "mps" and use.memory_limit_mib is not None:
                if model is not None and model.memory_mib > use.memory_limit_mib:
                    mps.append(f"{binding.pod.name}: {model.memory_mib} MiB, its MPS client "
                               f"limit on {node.name} is {use.memory_limit_mib} MiB")
            elif use.sharing == "timeSlicing":
                chosen_by_plugin |= not use.pinned
                on_gpu[(node.name, node.devices[use.device].gpu)].append(binding.pod.model)
    for (node_name, gpu), models in sorted(on_gpu.items()):
        used = sum(_memory_mib(plan, name) for name in models)
        capacity = cluster.nodes[node_name].gpu_memory_mib
        if used > capacity:
            sliced.append(f"{node_name} GPU {gpu}: {used} MiB of {capacity} MiB "
                          f"({', '.join(sorted(models))})")
    checks = []
    if "mps" in seen:
        checks.append(RuleCheck(MPS_MEMORY, not mps, tuple(mps)))
    if "timeSlicing" in seen:
        checks.append(RuleCheck(SLICED_MEMORY, None, tuple(sliced),
                                "not enforced: the device plugin picks which replicas share a "
                                "GPU; listed where its allocation would overfill one")
                      if chosen_by_plugin else RuleCheck(SLICED_MEMORY, not sliced,
                                                         tuple(sliced)))
    return checks


def _memory_mib(plan: Plan, workload: str) -> int:
    """The GPU memory the plan packs for one pod of a model or of a cache's servers."""
    if (model := plan.model(workload)) is not None:
        return model.memory_mib
    cache = plan.cache(workload)
    return cache.memory_mib if cache is not None else 0


def _cache_members(plan: Plan, manifests: Manifests) -> list[RuleCheck]:
    """Where a cache is served by KServe ModelMesh: whether it would load every member."""
    if not plan.held_caches("modelmesh"):
        return []
    problems = member_problems(plan, manifests)
    return [RuleCheck(CACHE_MEMBERS, not problems, tuple(problems))]


def check_rules(plan: Plan, manifests: Manifests, cluster: Cluster, pods: list[Pod],
                landings: list[Landing], missing: list[str]) -> list[RuleCheck]:
    """Every rule of the plan on the replayed cluster, and the plan's own list of the rules
    the cluster does not enforce."""
    checks = [_runs(plan, manifests, landings, missing), _replicas(plan, manifests),
              _placement(plan, landings), *_node_rules(plan, cluster, pods),
              *_zones(plan, cluster), *_zone_spread(plan, cluster, pods),
              *_gpu_memory(plan, cluster), *_cache_members(plan, manifests)]
    checked = {c.rule for c in checks}
    checks += [RuleCheck(e.rule, None, (), f"not enforced in {', '.join(e.pools)}: {e.how}")
               for e in plan.enforcement if not e.enforced and e.rule not in checked]
    return checks
