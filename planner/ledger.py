"""A plan's monthly money as line items: one per model, one per used pool for idle capacity.

A batch model that works in runs (`ModelPlan.batch`) pays its cost per hour over the hours its
runs take in the month; its GPUs' share for the other hours stays with its pool's idle line,
as the nodes are planned to stay, so the lines still add up to the plan's total.

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
from planner.rules.batch import hours_run as batch_hours
from planner.rules.batch import runs_in_month

RATE_DIGITS = Decimal("0.000001")  # an idle line's average rate per hour


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


def hours_run(model: ModelPlan, plan: Plan) -> float:
    """The hours of the plan's month the model pays for: all of them, or a batch model's runs
    (the starts in the billing period's calendar month, else the runs of the planning
    figure's month)."""
    hours = plan.metadata.hours_per_month
    batch = model.batch
    if batch is None:
        return hours
    runs = batch.runs_per_month
    if plan.metadata.period is not None:
        runs = runs_in_month(batch.schedule, batch.time_zone, plan.metadata.period)
    return round(batch_hours(batch.run_hours, runs, hours), 6)


def ledger(plan: Plan) -> Ledger:
    """The plan's line items, each month rounded once so that they add up exactly."""
    currency, hours = plan.summary.currency, plan.metadata.hours_per_month
    rates = line_rates(plan.models, plan.pools)
    monthly = [money.monthly(rate, hours) for *_, rate in rates]
    index = {(pool, model): i for i, (pool, model, *_) in enumerate(rates)}
    for model in plan.models:
        if model.batch is not None:  # the hours not run move to the pool's idle line
            own, idle = index[(model.pool, model.name)], index[(model.pool, None)]
            unpaid = monthly[own] - money.monthly(money.decimal(model.cost_per_hour),
                                                  hours_run(model, plan))
            monthly[own] -= unpaid
            monthly[idle] += unpaid
            # the idle line's rate: its average over the month
            rates[idle] = (model.pool, None, None, (monthly[idle] / money.decimal(hours))
                           .quantize(RATE_DIGITS))
    amounts = money.apportion(monthly, currency)
    return Ledger(currency, tuple(Line(pool, model, team, rate, amount)
                                  for (pool, model, team, rate), amount
                                  in zip(rates, amounts, strict=True)))
