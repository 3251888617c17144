"""Spot capacity: nodes the cloud may reclaim at short notice, for the models that can wait.

A model may run on a spot node shape only when its priority is among the policy's
`spot_priorities` (batch and experimental by default); the others keep to on-demand shapes,
and a pool with only spot shapes does not take them at all.
"""

from __future__ import annotations

from planner.schemas import ModelSpec, NodeShape, Policy, Pool


def may_use(shape: NodeShape, model: ModelSpec, policy: Policy) -> bool:
    return shape.capacity_type != "spot" or model.priority in policy.spot_priorities


def usable_shapes(pool: Pool, model: ModelSpec, policy: Policy) -> list[NodeShape]:
    """The pool's shapes the model may use, its own first."""
    return [shape for shape in pool.shapes() if may_use(shape, model, policy)]


def spot_only_reason(model: ModelSpec, policy: Policy) -> str:
    return (f"only spot nodes, which the cloud may reclaim; {model.priority} models may not "
            f"use them (policy spot_priorities: {', '.join(policy.spot_priorities)})")
