"""A plan's monthly money as line items: one per model, one per used pool for idle capacity.

Every report (summary, cost.csv, `report`, `diff`, `check`) reads its amounts from here, so they
are rounded once and add up: a team is the sum of its models' lines, a pool the sum of its
models' lines and its idle line, the total the sum of every line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from planner import money
from planner.planfile import ModelPlan, Plan, PoolPlan


@dataclass(frozen=True)
class Line:
    """One month of a model (or of a pool's idle capacity), rounded to the minor unit."""

    pool: str
    model: str | None  # None: the pool's idle capacity
    team: str | None
    cost_per_hour: Decimal
    cost_per_month: Decimal

    @property
    def idle(self) -> bool:
        return self.model is None


@dataclass(frozen=True)
class Ledger:
    currency: str
    lines: tuple[Line, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.cost_per_month for line in self.lines), Decimal(0))

    @property
    def idle(self) -> Decimal:
        return sum((line.cost_per_month for line in self.lines if line.idle), Decimal(0))

    def by_model(self) -> dict[str, Decimal]:
        return {line.model: line.cost_per_month for line in self.lines if line.model is not None}

    def by_team(self) -> dict[str, Decimal]:
        """Each team's models (idle capacity belongs to no team)."""
        return self._sum(lambda line: line.team)

    def by_pool(self) -> dict[str, Decimal]:
        """Each pool's models and its idle capacity."""
        return self._sum(lambda line: line.pool)

    def _sum(self, key) -> dict[str, Decimal]:
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for line in self.lines:
            if (name := key(line)) is not None:
                sums[name] += line.cost_per_month
        return dict(sums)


def line_rates(models: Iterable[ModelPlan], pools: Iterable[PoolPlan]
               ) -> list[tuple[str, str | None, str | None, Decimal]]:
    """(pool, model, team, cost per hour) of every line, models first, then idle per pool."""
    rates: list[tuple[str, str | None, str | None, Decimal]] = [
        (m.pool, m.name, m.team, money.decimal(m.cost_per_hour)) for m in models]
    rates += [(p.name, None, None, money.decimal(p.idle_cost_per_hour))
              for p in pools if p.nodes]
    return rates


def month_total(models: Iterable[ModelPlan], pools: Iterable[PoolPlan], hours: float,
                currency: str) -> Decimal:
    """What the lines of a month add up to: the plan's cost per month."""
    return money.total([money.monthly(rate, hours) for *_, rate in line_rates(models, pools)],
                       currency)


def ledger(plan: Plan) -> Ledger:
    """The plan's line items, each month rounded once so that they add up exactly."""
    currency, hours = plan.summary.currency, plan.metadata.hours_per_month
    rates = line_rates(plan.models, plan.pools)
    amounts = money.apportion([money.monthly(rate, hours) for *_, rate in rates], currency)
    return Ledger(currency, tuple(Line(pool, model, team, rate, amount)
                                  for (pool, model, team, rate), amount
                                  in zip(rates, amounts, strict=True)))
