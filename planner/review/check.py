"""`planner check` without the CLI: plan the base and the change, diff them, apply the gates.

The base is a plan file or a git ref (read by `planner.review.base`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from planner.errors import InputError
from planner.pipeline import SolverSettings, make_plan
from planner.planfile import Plan, load_plan
from planner.registry.loader import load_registry
from planner.review.base import base_registry, relabel
from planner.review.diff import PlanDiff, diff_plans
from planner.review.gates import Gate, Thresholds, gates


@dataclass(frozen=True)
class CheckResult:
    base: Plan
    new: Plan
    diff: PlanDiff
    gates: list[Gate] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


def plan_base(registry: Path, base: str, settings: SolverSettings) -> Plan:
    path = Path(base)
    if path.is_file():
        return load_plan(path)
    with tempfile.TemporaryDirectory(prefix="planner-base-") as tmp:
        root = base_registry(registry, base, Path(tmp))
        try:
            fleet = load_registry(root)
        except InputError as exc:
            raise relabel(exc, root, base) from None
        return make_plan(fleet, settings)


def run_check(registry: Path, base: str, limits: Thresholds,
              settings: SolverSettings) -> CheckResult:
    fleet = load_registry(registry, policy_gates=True)
    base_plan = plan_base(registry, base, settings)
    new_plan = make_plan(fleet, settings, base=base_plan)
    diff = diff_plans(base_plan, new_plan)
    return CheckResult(base_plan, new_plan, diff, gates(fleet, base_plan, new_plan, diff, limits))
