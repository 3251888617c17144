"""A plan's manifests replayed pod by pod, and the plan's rules checked on where they land.

Pods are taken in the scheduling queue's order (highest priority first, then by name). Each
is bound to the node the plan places its replica on when the scheduler's filters and the
device allocation admit it there; otherwise it goes through the scheduler (any node, then
preemption), and the refusal on its planned node is what the replay reports. Evicted pods go
back to the queue.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from planner.planfile import Plan
from planner.simulation import filters
from planner.simulation.devices import Allocator, DevicePlugin
from planner.simulation.manifests import Manifests
from planner.simulation.nodes import planned_nodes
from planner.simulation.pods import Pod, pods_of, workloads
from planner.simulation.scheduler import Cluster

# The rules a replay checks, in the order it reports them.
RUNS = "every pod runs"
REPLICAS = "replicas as planned"
PLACEMENT = "placement as planned"
SPREAD = "spread cap (max_node_share)"
CONFLICTS = "node-scope conflicts"
MPS_MEMORY = "MPS client memory"
SLICED_MEMORY = "per-GPU memory packing"


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


def planned_slots(plan: Plan) -> dict[tuple[str, int], tuple[str, tuple[int, ...]]]:
    """Each planned replica's node and GPUs."""
    slots: dict[tuple[str, int], tuple[str, list[int]]] = {}
    for pool in plan.pools:
        for node in pool.nodes:
            for gpu in node.gpus:
                for slot in gpu.replicas:
                    _, gpus = slots.setdefault((slot.model, slot.replica), (node.name, []))
                    gpus.append(gpu.index)
    return {key: (node, tuple(sorted(gpus))) for key, (node, gpus) in slots.items()}


def run_queue(cluster: Cluster, queue: list[Pod], preferred: dict[str, str | None]
              ) -> dict[str, str]:
    """Schedule `queue` (taken by priority, then name; evicted pods rejoin it), each pod on
    its preferred node where the filters admit it. Returns why each pod is not on its
    preferred node (or pending), by pod name."""
    reasons: dict[str, str] = {}
    pending = sorted(queue, key=lambda p: (-p.priority, p.name))
    while pending:
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
                reasons.pop(pod.name, None)
                continue
        binding, victims, why = cluster.schedule(pod)
        reasons[pod.name] = f"{want}: {refusal}" if refusal else (why or "not in the plan")
        if binding is None:
            continue
        for victim in victims:
            reasons[victim.name] = f"preempted by {pod.name}"
        pending = sorted(pending + victims, key=lambda p: (-p.priority, p.name))
    return reasons


def replay(plan: Plan, manifests: Manifests, *, zones: int = 1,
           allocator: Allocator | None = None) -> Simulation:
    """Replay `manifests` on the nodes of `plan` and check the plan's rules."""
    allocator = allocator or DevicePlugin()
    nodes, missing = planned_nodes(plan, manifests, zones)
    cluster = Cluster(nodes, allocator)
    pods = pods_of(manifests)
    slots = planned_slots(plan)
    preferred = {p.name: slots.get((p.model, p.replica), (None, ()))[0] for p in pods}
    reasons = run_queue(cluster, pods, preferred)
    landings = []
    for pod in pods:
        planned_node, planned_gpus = slots.get((pod.model, pod.replica), (None, ()))
        binding = cluster.bindings.get(pod.name)
        gpus = tuple(sorted({cluster.nodes[binding.node].devices[i].gpu
                             for i in binding.devices})) if binding else ()
        landings.append(Landing(pod.name, pod.model, pod.replica, planned_node, planned_gpus,
                                binding.node if binding else None, gpus,
                                reasons.get(pod.name)))
    rules = check_rules(plan, manifests, cluster, pods, landings, missing)
    return Simulation(landings, rules, cluster, pods)


def _runs(plan: Plan, manifests: Manifests, landings: list[Landing],
          missing: list[str]) -> RuleCheck:
    problems = list(missing)
    named = workloads(manifests)
    problems += [f"{m.name}: no workload in the manifests" for m in plan.models
                 if m.name not in named]
    problems += [f"{landing.pod}: pending ({landing.reason})" for landing in landings
                 if landing.node is None]
    return RuleCheck(RUNS, not problems, tuple(problems))


def _replicas(plan: Plan, manifests: Manifests) -> RuleCheck:
    named = workloads(manifests)
    problems = [f"{m.name}: {named[m.name][3]} replicas in the manifests, {m.replicas} planned"
                for m in plan.models if m.name in named and named[m.name][3] != m.replicas]
    problems += [f"{name}: not in the plan" for name in sorted(named)
                 if plan.model(name) is None]
    return RuleCheck(REPLICAS, not problems, tuple(problems))


def _placement(landings: list[Landing], pins: bool) -> RuleCheck:
    problems = []
    for landing in landings:
        if landing.node is None or landing.planned_node is None:
            continue
        if landing.node != landing.planned_node:
            problems.append(f"{landing.pod}: on {landing.node}, planned on "
                            f"{landing.planned_node} ({landing.reason})")
        elif pins and landing.gpus != landing.planned_gpus:
            problems.append(f"{landing.pod}: on GPU {list(landing.gpus)} of {landing.node}, "
                            f"planned on GPU {list(landing.planned_gpus)}")
    note = "" if pins else "by node: the device plugin, not the plan, picks each pod's GPU"
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


def _gpu_memory(plan: Plan, cluster: Cluster) -> list[RuleCheck]:
    """GPU memory as the device allocation shares it: an MPS client is capped at its share
    of the GPU (the device plugin's pinned memory limit, the GPU's memory over its replicas),
    so a replica planned above it fails; time-slicing caps nothing, so the replicas the
    allocation puts on one GPU may together exceed it (not enforced: listed, not failed)."""
    mps, sliced = [], []
    sliced_seen = mps_seen = False
    on_gpu: dict[tuple[str, int], list[str]] = defaultdict(list)
    for binding in sorted(cluster.bindings.values(), key=lambda b: b.pod.name):
        node = cluster.nodes[binding.node]
        model = plan.model(binding.pod.model)
        for index in binding.devices:
            device = node.devices[index]
            if device.sharing == "mps":
                mps_seen = True
                share = node.gpu_memory_mib // device.replicas
                if model is not None and model.memory_mib > share:
                    mps.append(f"{binding.pod.name}: {model.memory_mib} MiB, its MPS client "
                               f"share on {node.name} is {share} MiB")
            elif device.sharing == "timeSlicing":
                sliced_seen = True
                on_gpu[(node.name, device.gpu)].append(binding.pod.model)
    for (node_name, gpu), models in sorted(on_gpu.items()):
        used = sum(m.memory_mib for name in models if (m := plan.model(name)) is not None)
        capacity = cluster.nodes[node_name].gpu_memory_mib
        if used > capacity:
            sliced.append(f"{node_name} GPU {gpu}: {used} MiB of {capacity} MiB "
                          f"({', '.join(sorted(models))})")
    checks = []
    if mps_seen:
        checks.append(RuleCheck(MPS_MEMORY, not mps, tuple(mps)))
    if sliced_seen:
        checks.append(RuleCheck(SLICED_MEMORY, None, tuple(sliced),
                                "not enforced: time-slicing isolates no memory; listed where "
                                "the device plugin's allocation would exceed a GPU"))
    return checks


def check_rules(plan: Plan, manifests: Manifests, cluster: Cluster, pods: list[Pod],
                landings: list[Landing], missing: list[str]) -> list[RuleCheck]:
    """Every rule of the plan on the replayed cluster, and the plan's own list of the rules
    the cluster does not enforce."""
    checks = [_runs(plan, manifests, landings, missing), _replicas(plan, manifests),
              _placement(landings, cluster.allocator.pins), *_node_rules(plan, cluster, pods),
              *_gpu_memory(plan, cluster)]
    checked = {c.rule for c in checks}
    checks += [RuleCheck(e.rule, None, (), f"not enforced in {', '.join(e.pools)}: {e.how}")
               for e in plan.enforcement if not e.enforced and e.rule not in checked]
    return checks
