"""The cost report: FOCUS-style line items for finance, one per model and pool plus idle.

FinOps FOCUS column names come first; the planner's own columns follow with an `x_` prefix.
Every amount is for the billing period at the plan's hours per month; line items are rounded
to the cent by largest remainder, so they add up exactly to the plan's monthly total.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any

from planner.planfile import Plan

FOCUS_COLUMNS = [
    "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "BillingCurrency", "ServiceName", "ServiceCategory", "ChargeCategory", "ChargeDescription",
    "PricingQuantity", "PricingUnit", "ListCost", "EffectiveCost", "BilledCost", "ResourceId",
    "ResourceName", "SubAccountId", "Tags",
]
EXTRA_COLUMNS = [
    "x_Model", "x_Team", "x_Pool", "x_GpuType", "x_SharingMode", "x_GpuFraction", "x_Replicas",
    "x_Priority", "x_CostPerHour", "x_IdleCost",
]
SERVICE_NAME = "Model serving on shared GPUs"
SERVICE_CATEGORY = "AI and Machine Learning"


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


def _cents(amounts: list[float], total: float) -> list[float]:
    """Round to cents so that the parts add up to `total` (rounded to cents) exactly."""
    target = round(total * 100)
    floors = [math.floor(a * 100) for a in amounts]
    order = sorted(range(len(amounts)), key=lambda i: amounts[i] * 100 - floors[i],
                   reverse=True)
    for i in order[: max(0, target - sum(floors))]:
        floors[i] += 1
    return [f / 100 for f in floors]


def cost_rows(plan: Plan, period: str | None = None) -> list[dict]:
    start, end = parse_period(period)
    hours = plan.metadata.hours_per_month
    stamp = {"BillingPeriodStart": start.isoformat(), "BillingPeriodEnd": end.isoformat(),
             "ChargePeriodStart": start.isoformat(), "ChargePeriodEnd": end.isoformat(),
             "BillingCurrency": plan.summary.currency, "ServiceName": SERVICE_NAME,
             "ServiceCategory": SERVICE_CATEGORY, "ChargeCategory": "Usage",
             "PricingUnit": "GPU-Hours"}
    pools = {p.name: p for p in plan.pools}
    rows: list[dict[str, Any]] = []
    raw: list[float] = []
    for model in plan.models:
        pool = pools[model.pool]
        raw.append(model.cost_per_hour * hours)
        rows.append({**stamp,
                     "ChargeDescription": f"{model.name}: {model.replicas} replicas, "
                                          f"{model.gpu_fraction:.3f} GPU of {pool.gpu_type} in "
                                          f"{pool.name}",
                     "PricingQuantity": round(model.gpu_fraction * hours, 4),
                     "ResourceId": f"{pool.name}/{model.name}", "ResourceName": model.name,
                     "SubAccountId": model.team,
                     "Tags": json.dumps({"team": model.team, "priority": model.priority,
                                         **model.labels}, sort_keys=True),
                     "x_Model": model.name, "x_Team": model.team, "x_Pool": pool.name,
                     "x_GpuType": pool.gpu_type, "x_SharingMode": pool.sharing,
                     "x_GpuFraction": round(model.gpu_fraction, 6),
                     "x_Replicas": model.replicas, "x_Priority": model.priority,
                     "x_CostPerHour": round(model.cost_per_hour, 6)})
    for pool in plan.pools:
        if not pool.nodes:
            continue
        gpus = len(pool.nodes) * pool.gpus_per_node
        idle_share = pool.idle_cost_per_hour / (pool.price_per_node_hour / pool.gpus_per_node)
        raw.append(pool.idle_cost_per_hour * hours)
        rows.append({**stamp,
                     "ChargeDescription": f"idle capacity of {pool.name}: {gpus} GPUs in "
                                          f"{len(pool.nodes)} nodes, {idle_share:.3f} GPU unused",
                     "PricingQuantity": round(idle_share * hours, 4),
                     "ResourceId": f"{pool.name}/idle", "ResourceName": f"{pool.name} idle",
                     "SubAccountId": "platform",
                     "Tags": json.dumps({"pool": pool.name, "idle": "true"}, sort_keys=True),
                     "x_Model": "", "x_Team": "", "x_Pool": pool.name,
                     "x_GpuType": pool.gpu_type, "x_SharingMode": pool.sharing,
                     "x_GpuFraction": round(idle_share, 6), "x_Replicas": 0, "x_Priority": "",
                     "x_CostPerHour": round(pool.idle_cost_per_hour, 6)})
    for row, amount in zip(rows, _cents(raw, plan.summary.cost_per_month), strict=True):
        row.update(ListCost=amount, EffectiveCost=amount, BilledCost=amount,
                   x_IdleCost=amount if row["ResourceId"].endswith("/idle") else 0.0)
    return rows


def cost_frame(plan: Plan, period: str | None = None):
    """The line items as a pandas DataFrame, FOCUS columns first."""
    import pandas as pd

    return pd.DataFrame(cost_rows(plan, period), columns=FOCUS_COLUMNS + EXTRA_COLUMNS)


def rollup(plan: Plan, by: str, period: str | None = None):
    """Monthly cost by model, team or pool, idle capacity on its own line per pool."""
    frame = cost_frame(plan, period)
    column = {"model": "x_Model", "team": "x_Team", "pool": "x_Pool"}[by]
    frame[column] = frame[column].mask(frame[column] == "", "(idle) " + frame["x_Pool"])
    grouped = frame.groupby(column, sort=True).agg(
        EffectiveCost=("EffectiveCost", "sum"), GpuHours=("PricingQuantity", "sum"),
        Replicas=("x_Replicas", "sum")).reset_index().rename(columns={column: by})
    grouped["EffectiveCost"] = grouped["EffectiveCost"].round(2)
    grouped["GpuHours"] = grouped["GpuHours"].round(2)
    return grouped


def render_cost_csv(plan: Plan, period: str | None = None) -> str:
    return cost_frame(plan, period).to_csv(index=False, lineterminator="\n")
