"""The spread rule: no node holds more than the policy's share of one model's replicas.

The cap is derived here; the engine enforces it as `max_per_node`, the plan records it as
`max_replicas_per_node`, and the manifests turn it into scheduling constraints.
"""

from __future__ import annotations

import math

from planner.schemas import Policy


def max_per_node(policy: Policy, replicas: int) -> int | None:
    """At most this many of a model's `replicas` on one node; None when there is one replica."""
    if replicas < 2:
        return None
    return max(1, math.floor(policy.spread.max_node_share * replicas))
