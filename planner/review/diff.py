"""What changes between two plans: cost per team and pool, and every model that moved.

The diff is data (pydantic, so JSON comes for free); reports/ turns it into tables, markdown
and pull-request comments.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import computed_field

from planner.ledger import ledger
from planner.money import Money
from planner.planfile import ModelPlan, Plan
from profiles.schema import Strict

DIFF_SCHEMA_VERSION = 3  # 2: one JSON shape for `diff` and `check`; 3: idle capacity


class CostChange(Strict):
    """A monthly amount before and after, both rounded line items of their plans' ledgers."""

    name: str
    before: Money
    after: Money

    @computed_field  # type: ignore[prop-decorator]
    @property
    def change(self) -> Money:
        return self.after - self.before


class ModelChange(Strict):
    """One model's placement before and after; `kinds` says what changed."""

    name: str
    team: str
    kinds: list[str]  # added, removed, resized, moved, isolation, unplaced, placed, cost
    pool_before: str | None = None
    pool_after: str | None = None
    replicas_before: int | None = None
    replicas_after: int | None = None
    memory_mib_before: int | None = None
    memory_mib_after: int | None = None
    cost_per_month_before: Money = Decimal(0)
    cost_per_month_after: Money = Decimal(0)
    note: str = ""


class CapacityChange(Strict):
    pool: str
    nodes_before: int
    nodes_after: int
    gpus_before: int
    gpus_after: int


class PlanDiff(Strict):
    schema_version: int = DIFF_SCHEMA_VERSION
    currency: str
    total: CostChange
    teams: list[CostChange]
    idle: CostChange
    pools: list[CostChange]
    capacity: list[CapacityChange]
    models: list[ModelChange]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def changed(self) -> bool:
        return bool(self.models) or self.total.change != 0 or any(
            c.nodes_before != c.nodes_after or c.gpus_before != c.gpus_after
            for c in self.capacity)


def _model_change(name: str, old: ModelPlan | None, new: ModelPlan | None, old_plan: Plan,
                  new_plan: Plan, costs: tuple[dict[str, Decimal], dict[str, Decimal]]
                  ) -> ModelChange | None:
    unplaced_before = {u.name for u in old_plan.unplaced}
    unplaced_after = {u.name: u for u in new_plan.unplaced}
    kinds = []
    if old is None and new is not None:
        kinds.append("placed" if name in unplaced_before else "added")
    elif old is not None and new is None:
        kinds.append("unplaced" if name in unplaced_after else "removed")
    elif old is not None and new is not None:
        if (old.replicas, old.memory_mib) != (new.replicas, new.memory_mib):
            kinds.append("resized")
        if old.pool != new.pool:
            kinds.append("moved")
        if old.whole_gpus != new.whole_gpus:
            kinds.append("isolation")
        if round(old.cost_per_hour, 4) != round(new.cost_per_hour, 4) and not kinds:
            kinds.append("cost")
    elif name in unplaced_after and name not in unplaced_before:
        kinds.append("unplaced")
    if not kinds:
        return None
    note = ""
    if "isolation" in kinds and new is not None:
        note = "now on whole GPUs" if new.whole_gpus else "now shares GPUs"
    if name in unplaced_after and "unplaced" in kinds:
        note = "; ".join(unplaced_after[name].reasons)
    either = new or old
    team = either.team if either else unplaced_after[name].team
    return ModelChange(
        name=name, team=team, kinds=kinds,
        pool_before=old.pool if old else None, pool_after=new.pool if new else None,
        replicas_before=old.replicas if old else None,
        replicas_after=new.replicas if new else None,
        memory_mib_before=old.memory_mib if old else None,
        memory_mib_after=new.memory_mib if new else None,
        cost_per_month_before=costs[0].get(name, Decimal(0)),
        cost_per_month_after=costs[1].get(name, Decimal(0)),
        note=note)


def diff_plans(old: Plan, new: Plan) -> PlanDiff:
    """Everything a reviewer needs to know about going from `old` to `new`."""
    costs = ledger(old), ledger(new)
    by_model = costs[0].by_model(), costs[1].by_model()
    old_models = {m.name: m for m in old.models}
    new_models = {m.name: m for m in new.models}
    names = sorted(set(old_models) | set(new_models) | {u.name for u in new.unplaced})
    models = [c for name in names
              if (c := _model_change(name, old_models.get(name), new_models.get(name), old,
                                     new, by_model)) is not None]
    teams = _changes(costs[0].by_team(), costs[1].by_team())
    pools = _changes(costs[0].by_pool(), costs[1].by_pool())
    old_pools = {p.name: p for p in old.pools}
    new_pools = {p.name: p for p in new.pools}
    capacity = []
    for name in sorted(set(old_pools) | set(new_pools)):
        before, after = old_pools.get(name), new_pools.get(name)
        capacity.append(CapacityChange(
            pool=name, nodes_before=len(before.nodes) if before else 0,
            nodes_after=len(after.nodes) if after else 0,
            gpus_before=sum(len(n.gpus) for n in before.nodes) if before else 0,
            gpus_after=sum(len(n.gpus) for n in after.nodes) if after else 0))
    total = CostChange(name="total", before=costs[0].total, after=costs[1].total)
    idle = CostChange(name="idle capacity", before=costs[0].idle, after=costs[1].idle)
    return PlanDiff(currency=new.summary.currency, total=total, teams=teams, idle=idle,
                    pools=pools, capacity=capacity, models=models)


def _changes(before: dict[str, Decimal], after: dict[str, Decimal]) -> list[CostChange]:
    """One row per name on either side; a name missing on one side costs nothing there."""
    return [CostChange(name=name, before=before.get(name, Decimal(0)),
                       after=after.get(name, Decimal(0)))
            for name in sorted(set(before) | set(after))]
