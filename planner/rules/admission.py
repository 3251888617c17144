"""Pool admission: which pools admit a model, and which admission rules are not allowed.

A pool admits a model when an admission rule lists the pool and its selector matches the model.
Production models never enter a low-priority pool: a rule that would admit them is an error.
"""

from __future__ import annotations

from planner.schemas import AdmissionRule, Cluster, ModelSpec, Policy, Pool


def admitting_pools(model: ModelSpec, cluster: Cluster, policy: Policy) -> list[tuple[Pool, str]]:
    """The pools that admit `model` in cluster order, each with the first rule that admits it."""
    rule_for: dict[str, str] = {}
    for rule in policy.admission:
        if rule.match.matches(model):
            for pool_name in rule.pools:
                rule_for.setdefault(pool_name, rule.name)
    return [(pool, rule_for[pool.name]) for pool in cluster.pools if pool.name in rule_for]


def admits_production_into_low_priority(rule: AdmissionRule, pool: Pool) -> bool:
    """Whether `rule` would let production models into the low-priority `pool`."""
    return pool.pool_class == "low-priority" and (
        rule.match.priority is None or "production" in rule.match.priority)
