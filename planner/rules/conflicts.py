"""Conflict rules: classes of models kept apart on one GPU or one node.

`between: [A, B]` keeps models matching A away from models matching B; `separate_teams: S`
keeps models matching S away from every other team's. Each rule becomes conflict classes on
the models and pairs of classes that may not meet, which the engine enforces generically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from planner.schemas import ConflictRule, ModelSpec, Policy


@dataclass(frozen=True)
class ClassConflict:
    """Models of class `a` and models of class `b` never share one `scope` (gpu or node)."""

    rule: str
    a: str
    b: str
    scope: Literal["gpu", "node"]


def both_sides(rule: ConflictRule, model: ModelSpec) -> bool:
    """A `between` rule that matches the model on both sides cannot keep it from itself."""
    return rule.between is not None and all(side.matches(model) for side in rule.between)


def conflict_classes(policy: Policy, models: dict[str, ModelSpec]
                     ) -> tuple[dict[str, set[str]], list[ClassConflict]]:
    """Conflict classes per model and the pairs of classes that must stay apart."""
    classes: dict[str, set[str]] = {name: set() for name in models}
    conflicts: list[ClassConflict] = []
    teams = sorted({m.team for m in models.values()})
    for rule in policy.conflicts:
        # A CPU-only model has no GPU to keep apart: GPU-scope rules pass it by.
        bound = {name: m for name, m in models.items()
                 if rule.scope == "node" or not m.cpu_only}
        if rule.between is not None:
            a, b = f"{rule.name}:a", f"{rule.name}:b"
            for model in bound.values():
                if rule.between[0].matches(model):
                    classes[model.name].add(a)
                if rule.between[1].matches(model):
                    classes[model.name].add(b)
            conflicts.append(ClassConflict(rule.name, a, b, rule.scope))
            continue
        assert rule.separate_teams is not None  # the schema requires one of the two kinds
        isolated = {m.team for m in bound.values() if rule.separate_teams.matches(m)}
        for model in bound.values():
            classes[model.name].add(f"{rule.name}:team:{model.team}")
            if rule.separate_teams.matches(model):
                classes[model.name].add(f"{rule.name}:isolated:{model.team}")
        for team in sorted(isolated):
            for other in teams:
                if other != team:
                    conflicts.append(ClassConflict(rule.name, f"{rule.name}:isolated:{team}",
                                                   f"{rule.name}:team:{other}", rule.scope))
    return classes, conflicts


def kept_apart(policy: Policy, models: dict[str, ModelSpec],
               scope: Literal["gpu", "node"]) -> dict[str, set[str]]:
    """Per model, the other models it may never share one `scope` with under any rule."""
    classes, conflicts = conflict_classes(policy, models)
    members: dict[str, set[str]] = {}
    for name, owned in classes.items():
        for cls in owned:
            members.setdefault(cls, set()).add(name)
    apart: dict[str, set[str]] = {name: set() for name in models}
    for conflict in conflicts:
        if conflict.scope != scope:
            continue
        for a in members.get(conflict.a, set()):
            for b in members.get(conflict.b, set()):
                if a != b:
                    apart[a].add(b)
                    apart[b].add(a)
    return apart
