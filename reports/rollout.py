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
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

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
    for node in pool.nodes if gpu is not None else []:
        if _offered(pool, node).get(resource, 0) - _used(plan, pool, node)[resource] >= count \
                and _admits(model, node):
            return Rollout(1, 0, f"a free {resource} on {node.name}")
    if model.replicas > 1:
        return Rollout(0, 1, f"pool {pool.name} is full: one of {model.replicas} replicas "
                             "is replaced at a time")
    return Rollout(0, 1, f"pool {pool.name} is full: its one replica is down while the new "
                         "pod starts")
