"""The validated registry as one typed value that the rest of the planner reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner.errors import Problem
from planner.registry.yamlsource import YamlDocument
from planner.rules.admission import admitting_pools
from planner.schemas import Cluster, ModelSpec, PlannerConfig, Policy, Pool
from profiles.schema import Profile


@dataclass(frozen=True)
class Fleet:
    """Everything in a registry, validated. `documents` keeps file and line for every model."""

    root: Path
    config: PlannerConfig
    models: dict[str, ModelSpec]
    documents: dict[str, YamlDocument]
    profiles: dict[tuple[str, str], Profile]
    cluster: Cluster
    policy: Policy
    policy_violations: tuple[Problem, ...] = ()

    @property
    def teams(self) -> list[str]:
        return sorted({m.team for m in self.models.values()})

    def pool(self, name: str) -> Pool:
        return next(p for p in self.cluster.pools if p.name == name)

    def admitting_pools(self, model: ModelSpec) -> list[tuple[Pool, str]]:
        return admitting_pools(model, self.cluster, self.policy)
