"""Room for rollouts: how each model's pods are replaced when its image changes.

A rolling update starts a surge pod before it stops an old one. The surge pod needs a free
unit of the model's GPU resource on a node the scheduler admits it to: a planned node of its
pool that holds fewer of the model's pods than its spread cap and none of the models it is
kept apart from (the old pods still run, and the pod anti-affinity and topology spread count
them), or a node Karpenter adds while the pool is below its ceiling (`max_nodes`); a CPU-only
pod, a node Karpenter adds. Where neither exists, the only update that can finish stops one
old pod first (`maxSurge: 0, maxUnavailable: 1`), which the model's PodDisruptionBudget
already allows when it has several replicas; a single replica is down while its new pod
starts, and the summary says so.

A model under a zone spread (`zone_max_skew`) counts its old pods too (the constraint's
selector matches them): a surge pod on a planned node needs a node whose zone holds fewer of
its pods than the least-loaded eligible zone plus the skew. That is checked for the first
surge pod; later ones depend on which node the scheduler picks and which old pod the
ReplicaSet deletes, which the plan does not model. A node Karpenter adds goes to a zone the
spread allows (the zone with the fewest of the model's pods always does).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from planner.assembly.zones import eligible_nodes
from planner.planfile import ModelPlan, NodePlan, Plan, PoolPlan
from reports.gpu_operator import (
    WHOLE_GPU,
    advertised,
    gpu_resource,
    mig_config_of,
    mig_node_layouts,
)


@dataclass(frozen=True)
class Rollout:
    max_surge: int
    max_unavailable: int
    why: str

    @property
    def surge(self) -> bool:
        return self.max_surge > 0


def _used(plan: Plan, pool: PoolPlan, node: NodePlan) -> Counter[str]:
    """The GPU resources the replicas planned on `node` request."""
    used: Counter[str] = Counter()
    for model_name, _ in node.replicas():
        model = plan.model(model_name)
        if model is not None and (gpu := gpu_resource(model, pool)) is not None:
            used[gpu[0]] += gpu[1]
    return used


def _offered(pool: PoolPlan, node: NodePlan) -> dict[str, int]:
    """What one planned node advertises, whole GPUs included."""
    if pool.sharing == "mig":
        layout, _ = mig_node_layouts(pool)[mig_config_of(pool, node)]
        capacity = dict(advertised(pool, layout))
        capacity[WHOLE_GPU] = pool.gpus_per_node - len(layout)
        return capacity
    gpus = pool.shape(node).gpus_per_node
    if pool.sharing in ("time-slicing", "mps"):
        return advertised(pool, gpus_per_node=gpus)
    return {WHOLE_GPU: gpus}


def _admits(model: ModelPlan, node: NodePlan) -> bool:
    """Whether the scheduler's node rules admit one more pod of `model` on `node`."""
    on_node = Counter(name for name, _ in {(r.model, r.replica) for g in node.gpus
                                           for r in g.replicas})
    cap = model.max_replicas_per_node
    if cap is not None and on_node[model.name] >= cap:
        return False
    return not set(model.apart_on_node) & set(on_node)


def _zone_room(pool: PoolPlan, model: ModelPlan, eligible: list[NodePlan]) -> set[str] | None:
    """The zones where one more pod of `model` keeps its zone spread, as the scheduler's
    PodTopologySpread filter counts over the zones of the nodes its pods may select (old pods
    included); None: no zone spread binds the model."""
    if model.zone_max_skew is None or not pool.zones:
        return None
    counts = Counter({node.zone: 0 for node in eligible if node.zone})
    for node in eligible:
        if node.zone:
            counts[node.zone] += sum(1 for name, _ in node.replicas() if name == model.name)
    least = min(counts.values(), default=0)
    return {zone for zone, count in counts.items()
            if count + 1 - least <= model.zone_max_skew}


def rollout(plan: Plan, model: ModelPlan) -> Rollout:
    """The update strategy that can finish for `model`, and why."""
    pool = next(p for p in plan.pools if p.name == model.pool)
    if plan.metadata.sharing_backend == "dra" and pool.sharing not in ("exclusive", "none"):
        return Rollout(0, 1, "its pods use the claim of their planned node, which holds all "
                             "of its GPUs: a surge pod would be one more than the plan puts "
                             "on its GPU")
    gpu = gpu_resource(model, pool)
    if len(pool.nodes) < pool.max_nodes:
        return Rollout(1, 0, f"pool {pool.name} may add a node "
                             f"({len(pool.nodes)} of {pool.max_nodes} planned)")
    # A CPU pod's room on a planned node is not in the plan: a full CPU pool replaces pods.
    resource, count = gpu if gpu is not None else ("", 0)
    eligible = eligible_nodes(pool, model)
    free = [n for n in eligible if gpu is not None and _admits(model, n)
            and _offered(pool, n).get(resource, 0) - _used(plan, pool, n)[resource] >= count]
    zones = _zone_room(pool, model, eligible)
    for node in free:
        if zones is None:
            return Rollout(1, 0, f"a free {resource} on {node.name}")
        if node.zone in zones:
            return Rollout(1, 0, f"a free {resource} on {node.name} (zone {node.zone}: one "
                                 f"more pod keeps the zone spread of {model.zone_max_skew})")
    if free:  # room only in zones the spread refuses
        return Rollout(0, 1, f"pool {pool.name} is full but for zones where one more pod "
                             f"would break the zone spread of {model.zone_max_skew}: one of "
                             f"{model.replicas} replicas is replaced at a time")
    if model.replicas > 1:
        return Rollout(0, 1, f"pool {pool.name} is full: one of {model.replicas} replicas "
                             "is replaced at a time")
    return Rollout(0, 1, f"pool {pool.name} is full: its one replica is down while the new "
                         "pod starts")
