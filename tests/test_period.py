"""Billing periods: a month's own hours in cost.csv, the summary and `report`."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest

from planner import money
from planner.period import period_hours, priced_for
from planner.pipeline import SolverSettings, make_plan
from planner.planfile import load_plan
from planner.registry.loader import load_registry
from reports.focus import render_cost_csv
from reports.summary import render_summary


@pytest.mark.parametrize(("period", "hours"), [
    ("2027-02", 672),  # February of a common year
    ("2028-02", 696),  # February of a leap year
    ("2027-03", 744),  # 31 days, daylight saving starts in many zones: UTC has no gap
    ("2026-12", 744),  # 31 days, the year rolls over
    ("2027-04", 720),  # 30 days
])
def test_period_hours_are_the_calendar_month(period, hours):
    assert period_hours(period) == hours


@pytest.fixture(scope="module")
def demo_plan():
    from planner.demo import demo_registry_path

    return make_plan(load_registry(demo_registry_path()), SolverSettings(method="greedy"))


def _csv_total(text: str) -> Decimal:
    return sum((Decimal(row["EffectiveCost"]) for row in csv.DictReader(io.StringIO(text))),
               Decimal(0))


@pytest.mark.parametrize(("period", "hours"), [("2027-02", 672), ("2028-02", 696),
                                               ("2027-01", 744)])
def test_period_charges_its_hours_everywhere(demo_plan, period, hours):
    assert demo_plan.metadata.hours_per_month == 730
    priced = priced_for(demo_plan, period)
    expected = money.rounded(Decimal(repr(demo_plan.summary.cost_per_hour)) * hours, "USD")
    # the plan's hourly rate is rounded to 4 digits, the month is the sum of exact lines
    assert abs(priced.summary.cost_per_month - expected) <= Decimal("0.05") * hours / 730
    assert priced.summary.cost_per_month != demo_plan.summary.cost_per_month
    assert priced.summary.baseline_cost_per_month == money.rounded(
        Decimal(repr(demo_plan.summary.baseline_cost_per_hour)) * hours, "USD")
    assert priced.summary.savings_per_month == (priced.summary.baseline_cost_per_month
                                                - priced.summary.cost_per_month)
    assert _csv_total(render_cost_csv(demo_plan, period)) == priced.summary.cost_per_month
    summary = render_summary(priced)
    assert f"- **Hours:** {hours} per month, the hours of the billing period {period}." \
        in summary
    assert f"{priced.summary.cost_per_month:,.2f} USD per month" in summary


def test_without_period_the_planning_figure_is_charged(demo_plan):
    assert _csv_total(render_cost_csv(demo_plan)) == demo_plan.summary.cost_per_month
    assert ("- **Hours:** 730 per month, the planning figure (`hours_per_month`); "
            "`--period YYYY-MM` charges a calendar month's hours instead.") \
        in render_summary(demo_plan)


def test_cli_plan_and_report_charge_february_2027(cli, registry: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = cli("plan", "--registry", registry, "--solver", "greedy", "--period", "2027-02",
                 "--out", out)
    assert result.exit_code == 0, result.stderr
    plan = load_plan(out / "plan.yaml")
    assert (plan.metadata.hours_per_month, plan.metadata.period) == (672, "2027-02")
    assert _csv_total((out / "cost.csv").read_text()) == plan.summary.cost_per_month
    rows = list(csv.DictReader(io.StringIO((out / "cost.csv").read_text())))
    assert {(r["BillingPeriodStart"], r["BillingPeriodEnd"]) for r in rows} == {
        ("2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z")}
    # the same plan reported for a 31-day month charges 744 hours
    result = cli("report", "--plan", out / "plan.yaml", "--period", "2027-03", "--out",
                 tmp_path / "march", "--format", "json")
    assert result.exit_code == 0, result.stderr
    march = priced_for(plan, "2027-03")
    assert march.summary.cost_per_month == money.total(
        [money.monthly(money.decimal(r), 744) for r in
         [m.cost_per_hour for m in plan.models] +
         [p.idle_cost_per_hour for p in plan.pools if p.nodes]], "USD")
    assert _csv_total((tmp_path / "march" / "cost.csv").read_text()) == \
        march.summary.cost_per_month
    assert "the hours of the billing period 2027-03." in \
        (tmp_path / "march" / "summary.md").read_text()
    # without --period, report keeps the plan's own period and hours
    result = cli("report", "--plan", out / "plan.yaml", "--out", tmp_path / "again")
    assert result.exit_code == 0, result.stderr
    assert _csv_total((tmp_path / "again" / "cost.csv").read_text()) == \
        plan.summary.cost_per_month
    assert "2027-02-01T00:00:00Z" in (tmp_path / "again" / "cost.csv").read_text()


def test_bad_period_is_exit_2(cli, registry: Path):
    result = cli("plan", "--registry", registry, "--period", "2027-13")
    assert result.exit_code == 2
    assert "--period: period '2027-13' is not YYYY-MM; write it as YYYY-MM" in result.stderr
