"""Billing periods: a calendar month, the hours it has, and a plan priced over them.

A plan is made at the registry's planning figure, `hours_per_month` (730 by default, the hours
of an average month). A bill covers a calendar month, and a calendar month has 672 to 744
hours, so a plan priced for a billing period charges that month's hours instead: every
monthly amount of the plan, the summary and the cost report follows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from planner import money
from planner.ledger import month_total
from planner.planfile import Plan

SECONDS_PER_HOUR = 3600


def parse_period(text: str | None, today: date | None = None) -> tuple[datetime, datetime]:
    """`YYYY-MM` to the month's start and the next month's start (UTC); default this month."""
    if text is None:
        today = today or datetime.now(UTC).date()
        year, month = today.year, today.month
    else:
        try:
            year, month = (int(part) for part in text.split("-"))
            datetime(year, month, 1)
        except ValueError:
            raise ValueError(f"period '{text}' is not YYYY-MM") from None
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def period_hours(period: str) -> int:
    """The hours of the calendar month `period` (UTC, so no daylight-saving hour is lost)."""
    start, end = parse_period(period)
    return int((end - start).total_seconds()) // SECONDS_PER_HOUR


def priced_for(plan: Plan, period: str) -> Plan:
    """`plan` with its monthly amounts over the hours of `period` instead of its own."""
    hours = period_hours(period)
    currency = plan.summary.currency
    cost = month_total(plan.models, plan.pools, hours, currency)
    baseline = money.rounded(money.monthly(plan.summary.baseline_cost_per_hour, hours), currency)
    metadata = plan.metadata.model_copy(update={"hours_per_month": float(hours),
                                                "period": period})
    summary = plan.summary.model_copy(update={"cost_per_month": cost,
                                              "baseline_cost_per_month": baseline,
                                              "savings_per_month": baseline - cost})
    return plan.model_copy(update={"metadata": metadata, "summary": summary})
