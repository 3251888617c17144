"""`planner check` without the CLI: plan the base and the change, diff them, apply the gates.

The base is a git ref (read by `planner.review.base`) or, when asked for explicitly, a plan
file; a ref is never looked up as a file, so a file named like the ref cannot stand in for it.
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


def plan_base(registry: Path, ref: str, settings: SolverSettings) -> Plan:
    """Plan the registry as it is at the git ref `ref`."""
    with tempfile.TemporaryDirectory(prefix="planner-base-") as tmp:
        root = base_registry(registry, ref, Path(tmp))
        try:
            fleet = load_registry(root)
        except InputError as exc:
            raise relabel(exc, root, ref) from None
        return make_plan(fleet, settings)


def run_check(registry: Path, base: str | Path, limits: Thresholds,
              settings: SolverSettings) -> CheckResult:
    """Check `registry` against `base`: a git ref (str) or a plan file (Path)."""
    fleet = load_registry(registry, policy_gates=True)
    base_plan = load_plan(base) if isinstance(base, Path) else plan_base(registry, base, settings)
    new_plan = make_plan(fleet, settings, base=base_plan)
    diff = diff_plans(base_plan, new_plan)
    return CheckResult(base_plan, new_plan, diff, gates(fleet, base_plan, new_plan, diff, limits))
