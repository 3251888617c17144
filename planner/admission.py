"""Which pools admit a model, by the policy's admission rules."""

from __future__ import annotations

from planner.schemas import Cluster, ModelSpec, Policy, Pool


def admitting_pools(model: ModelSpec, cluster: Cluster, policy: Policy) -> list[tuple[Pool, str]]:
    """The pools that admit `model` in cluster order, each with the first rule that admits it."""
    rule_for: dict[str, str] = {}
    for rule in policy.admission:
        if rule.match.matches(model):
            for pool_name in rule.pools:
                rule_for.setdefault(pool_name, rule.name)
    return [(pool, rule_for[pool.name]) for pool in cluster.pools if pool.name in rule_for]
