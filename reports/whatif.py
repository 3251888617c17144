"""Scenarios side by side: each what-if plan against the registry as it is."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal

from rich.table import Table
from rich.text import Text

from planner.planfile import Plan
from reports.format import money as _money

MAX_NAMED = 4  # changed models named in a table cell; the rest are counted


@dataclass(frozen=True)
class ScenarioRow:
    scenario: str
    cost_per_month: Decimal
    change_per_month: Decimal
    gpus: int
    nodes: int
    unplaced: int
    changed_models: list[str]


def _placement(plan: Plan) -> dict[str, tuple[str, int] | None]:
    """Each model's pool and replicas, None when unplaced."""
    placed: dict[str, tuple[str, int] | None] = {m.name: (m.pool, m.replicas)
                                                  for m in plan.models}
    placed.update({u.name: None for u in plan.unplaced})
    return placed


def scenario_rows(as_is: Plan, scenarios: list[tuple[str, Plan]]) -> list[ScenarioRow]:
    """One row for the registry as it is, then one per scenario; a model changes when its
    pool or replica count does, or it is placed in one and not the other."""
    before = _placement(as_is)
    rows = []
    for label, plan in [("as is", as_is), *scenarios]:
        after = _placement(plan)
        changed = sorted(name for name in before.keys() | after.keys()
                         if before.get(name) != after.get(name))
        s = plan.summary
        rows.append(ScenarioRow(label, s.cost_per_month,
                                s.cost_per_month - as_is.summary.cost_per_month, s.gpus,
                                s.nodes, s.unplaced, changed))
    return rows


def scenario_table(rows: list[ScenarioRow], currency: str) -> Table:
    """The rows as a console table; registry text (scenario labels, names) is never markup."""
    table = Table(title="What if", title_justify="left")
    for column in ("scenario", "cost per month", "vs as is", "GPUs", "nodes", "unplaced",
                   "models changed"):
        table.add_column(column, justify="left" if column in ("scenario", "models changed")
                         else "right")
    for row in rows:
        named = ", ".join(row.changed_models[:MAX_NAMED])
        more = len(row.changed_models) - MAX_NAMED
        change = _money(row.change_per_month, currency)
        table.add_row(Text(row.scenario), _money(row.cost_per_month, currency),
                      "" if row.scenario == "as is" else
                      (change if row.change_per_month < 0 else f"+{change}"),
                      str(row.gpus), str(row.nodes), str(row.unplaced),
                      Text(f"{len(row.changed_models)}: {named}"
                           + (f" and {more} more" if more > 0 else "")
                           if row.changed_models else "-"))
    return table


def scenario_json(rows: list[ScenarioRow]) -> list[dict]:
    return [{**asdict(row), "cost_per_month": str(row.cost_per_month),
             "change_per_month": str(row.change_per_month)} for row in rows]
