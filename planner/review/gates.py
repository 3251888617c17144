"""The check's gates: policy violations, unplaced models, and the cost thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner.money import format_money
from planner.planfile import Plan
from planner.registry.fleet import Fleet
from planner.review.diff import PlanDiff


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


def _line(fleet: Fleet, model: str, *keys: str) -> tuple[Path, int] | None:
    doc = fleet.documents.get(model)
    if doc is None:
        return None
    return doc.path, doc.line_of(keys)


def gates(fleet: Fleet, base: Plan, new: Plan, diff: PlanDiff,
          limits: Thresholds) -> list[Gate]:
    cur = new.summary.currency
    result = []
    notes = []
    for p in fleet.policy_violations:
        assert p.file is not None  # a policy problem names its model file
        notes.append(Annotation(p.file, p.line or 1, p.message))
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
    blame = tuple(Annotation(*where, f"{m.name}: {format_money(m.cost_per_month_before, cur)} "
                             f"-> {format_money(m.cost_per_month_after, cur)} per month")
                  for m in risers if (where := _line(fleet, m.name, "traffic")
                                      or _line(fleet, m.name, "name")))
    def cost_gate(name: str, ok: bool, message: str) -> Gate:
        return Gate(name, ok, message, f"lower the demand of the models below or raise --{name}",
                    () if ok else blame)

    if limits.max_increase is not None:
        result.append(cost_gate("max-increase", change <= limits.max_increase,
                                f"monthly cost changes by "
                                f"{format_money(change, cur, sign=True)} "
                                f"(limit {format_money(limits.max_increase, cur, sign=True)})"))
    if limits.max_increase_pct is not None:
        pct = 100 * change / diff.total.before if diff.total.before else (0 if not change
                                                                         else float("inf"))
        result.append(cost_gate("max-increase-pct", pct <= limits.max_increase_pct,
                                f"monthly cost changes by {pct:+.1f}% "
                                f"(limit +{limits.max_increase_pct:g}%)"))
    if limits.budget is not None:
        result.append(cost_gate("budget", diff.total.after <= limits.budget,
                                f"monthly cost {format_money(diff.total.after, cur)} "
                                f"(budget {format_money(limits.budget, cur)})"))
    return result
