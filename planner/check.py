"""`planner check` without the CLI: plan the base and the change, diff them, apply the gates.

The base is a plan file or a git ref. A ref is read with `git archive` into a temporary
folder, so the working tree is never touched.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from planner.diff import PlanDiff, diff_plans
from planner.errors import InputError, Problem
from planner.fleet import Fleet
from planner.loader import load_registry
from planner.plan import Plan, load_plan
from planner.planning import SolverSettings, make_plan


@dataclass(frozen=True)
class Annotation:
    """A line to point at in the pull request."""

    file: Path
    line: int
    message: str


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    message: str
    fix: str = ""
    annotations: tuple[Annotation, ...] = ()


@dataclass(frozen=True)
class Thresholds:
    max_increase: float | None = None
    max_increase_pct: float | None = None
    budget: float | None = None


@dataclass(frozen=True)
class CheckResult:
    base: Plan
    new: Plan
    diff: PlanDiff
    gates: list[Gate] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


def _git(root: Path, *args: str, binary: bool = False):
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                            text=not binary)
    if result.returncode != 0:
        return None
    return result.stdout if binary else result.stdout.strip()


def base_registry(registry: Path, ref: str, workdir: Path) -> Path:
    """Write the registry as it is at `ref` into `workdir`; return its folder there."""
    top = _git(registry, "rev-parse", "--show-toplevel")
    if top is None:
        raise InputError(f"--base {ref}: not a plan file, and {registry} is not in a git "
                         "repository; pass a plan.yaml or run inside the registry's repository")
    if _git(registry, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") is None:
        raise InputError(f"--base {ref}: no such file or git ref; fetch it (for example "
                         "`git fetch origin main`) or pass a plan.yaml")
    prefix = registry.resolve().relative_to(Path(top).resolve()).as_posix()
    archive = _git(Path(top), "archive", "--format=tar", ref, "--", prefix, binary=True)
    if archive is None:
        raise InputError(f"--base {ref}: the registry folder {prefix} does not exist there")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(workdir, filter="data")
    return workdir / prefix


def _relabel(error: InputError, root: Path, ref: str) -> InputError:
    """Name the base side's files as `REF:path` rather than by their temporary location."""
    problems = []
    for p in error.problems:
        name = p.file
        if name is not None and name.is_relative_to(root):
            name = Path(f"{ref}:{name.relative_to(root).as_posix()}")
        problems.append(Problem(name, p.line, p.field, p.message, p.policy))
    return InputError(problems)


def plan_base(registry: Path, base: str, settings: SolverSettings) -> Plan:
    path = Path(base)
    if path.is_file():
        return load_plan(path)
    with tempfile.TemporaryDirectory(prefix="planner-base-") as tmp:
        root = base_registry(registry, base, Path(tmp))
        try:
            fleet = load_registry(root)
        except InputError as exc:
            raise _relabel(exc, root, base) from None
        return make_plan(fleet, settings)


def _line(fleet: Fleet, model: str, *keys: str) -> tuple[Path, int] | None:
    doc = fleet.documents.get(model)
    if doc is None:
        return None
    return doc.path, doc.line_of(keys)


def gates(fleet: Fleet, base: Plan, new: Plan, diff: PlanDiff,
          limits: Thresholds) -> list[Gate]:
    cur = new.summary.currency
    result = []
    notes = [Annotation(p.file, p.line or 1, p.message) for p in fleet.policy_violations]
    result.append(Gate("policy", not notes,
                       f"{len(notes)} model(s) break a placement rule" if notes
                       else "every model is admitted by a pool",
                       "change the model's labels or add an admission rule in policy.yaml",
                       tuple(notes)))
    notes = []
    for model in new.unplaced:
        where = _line(fleet, model.name, "replicas") or _line(fleet, model.name, "name")
        if where:
            notes.append(Annotation(*where, f"{model.name} cannot be placed: "
                                    + "; ".join(model.reasons)))
    result.append(Gate("unplaced", not new.unplaced,
                       f"{len(new.unplaced)} model(s) cannot be placed: "
                       + ", ".join(u.name for u in new.unplaced) if new.unplaced
                       else "every model is placed",
                       "; ".join(new.explanation) or "raise the pool's max_nodes or lower the "
                       "model's demand", tuple(notes)))
    change = diff.total.change
    risers = sorted((m for m in diff.models if m.cost_per_month_after > m.cost_per_month_before),
                    key=lambda m: m.cost_per_month_before - m.cost_per_month_after)[:5]
    blame = tuple(Annotation(*where, f"{m.name}: {m.cost_per_month_before:,.2f} -> "
                             f"{m.cost_per_month_after:,.2f} {cur} per month")
                  for m in risers if (where := _line(fleet, m.name, "traffic")
                                      or _line(fleet, m.name, "name")))
    def cost_gate(name: str, ok: bool, message: str) -> Gate:
        return Gate(name, ok, message, f"lower the demand of the models below or raise --{name}",
                    () if ok else blame)

    if limits.max_increase is not None:
        result.append(cost_gate("max-increase", change <= limits.max_increase,
                                f"monthly cost changes by {change:+,.2f} {cur} "
                                f"(limit +{limits.max_increase:,.2f})"))
    if limits.max_increase_pct is not None:
        pct = 100 * change / diff.total.before if diff.total.before else (0 if not change
                                                                         else float("inf"))
        result.append(cost_gate("max-increase-pct", pct <= limits.max_increase_pct,
                                f"monthly cost changes by {pct:+.1f}% "
                                f"(limit +{limits.max_increase_pct:g}%)"))
    if limits.budget is not None:
        result.append(cost_gate("budget", new.summary.cost_per_month <= limits.budget,
                                f"monthly cost {new.summary.cost_per_month:,.2f} {cur} "
                                f"(budget {limits.budget:,.2f})"))
    return result


def run_check(registry: Path, base: str, limits: Thresholds,
              settings: SolverSettings) -> CheckResult:
    fleet = load_registry(registry, policy_gates=True)
    base_plan = plan_base(registry, base, settings)
    new_plan = make_plan(fleet, settings, base=base_plan)
    diff = diff_plans(base_plan, new_plan)
    return CheckResult(base_plan, new_plan, diff, gates(fleet, base_plan, new_plan, diff, limits))
