"""Grafana dashboards, one per pool and one per team, that set what is measured beside what was
planned: requests, the p99 against each model's objective, queues against their limits, GPU
memory and utilisation (DCGM exporter) against the plan, and the planned cost per hour.

Queries come from `reports.metrics`, so a dashboard and the alerts read the same series.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from itertools import count
from typing import Final

from planner.planfile import ModelPlan, Plan
from reports import dra, metrics
from reports.manifests import model_namespace
from reports.metrics import ENGINES
from reports.observability import scheduled

SCHEMA_VERSION: Final = 39  # Grafana's dashboard JSON model version these panels follow
UID_MAX: Final = 40  # Grafana's limit on a dashboard uid
DATASOURCE: Final = {"type": "prometheus", "uid": "${datasource}"}
WINDOW: Final = "5m"
PANEL_WIDTH, PANEL_HEIGHT = 12, 8


def _ref_ids() -> Iterator[str]:
    """A, B, ..., Z, AA, AB, ...: Grafana's query ids, one per query of a panel."""
    for n in count():
        letters = ""
        n += 1
        while n:
            n, rest = divmod(n - 1, 26)
            letters = chr(ord("A") + rest) + letters
        yield letters


def _uid(kind: str, name: str) -> str:
    uid = f"planner-{kind}-{name}"
    if len(uid) <= UID_MAX:
        return uid
    return f"{uid[:UID_MAX - 9]}-{hashlib.sha256(uid.encode()).hexdigest()[:8]}"


def _targets(queries: list[tuple[str, str]]) -> list[dict]:
    return [{"refId": ref, "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
            for ref, (legend, expr) in zip(_ref_ids(), queries, strict=False)]


def _per_model(models: list[ModelPlan],
               query: Callable[[ModelPlan], str | None]) -> list[tuple[str, str]]:
    found = [(m.name, query(m)) for m in models]
    return [(name, expr) for name, expr in found if expr is not None]


def _engine(model: ModelPlan) -> metrics.Engine | None:
    return ENGINES.get(model.serving.engine or "")


def _rate(model: ModelPlan) -> str | None:
    engine = _engine(model)
    if engine is None:
        return None
    return metrics.request_rate(engine, metrics.model_selector(model.name), WINDOW)


def _p99_over_slo(model: ModelPlan) -> str | None:
    engine = _engine(model)
    if engine is None or model.slo_p99_ms is None:
        return None
    p99 = metrics.p99_seconds(engine, metrics.model_selector(model.name), WINDOW)
    return None if p99 is None else f"{p99} / {model.slo_p99_ms / 1000:g}"


def _queue_over_limit(model: ModelPlan) -> str | None:
    engine = _engine(model)
    if engine is None:
        return None
    depth = metrics.queue_depth(engine, metrics.model_selector(model.name))
    if depth is None or model.limits.queue_limit == 0:
        return None
    return f"max({depth}) / {model.limits.queue_limit}"


def _gpu_selector(plan: Plan, models: list[ModelPlan]) -> str:
    """The DCGM series of the GPUs the models' pods hold."""
    pools = {p.name: p for p in plan.pools}
    namespaces = "|".join(sorted({model_namespace(plan, m, pools[m.pool]) for m in models}))
    pods = "|".join(
        f"({metrics.pod_pattern(m.name, dra.pins(plan, pools[m.pool]), scheduled(m))})"
        for m in models)
    return f'namespace=~"{namespaces}", pod=~"{pods}"'


def _per_gpu(metric: str, selector: str) -> str:
    """One value per GPU, however many pods share it (each sees the whole GPU)."""
    return f"max by (Hostname, gpu) ({metric}{{{selector}}})"


def _panel(title: str, unit: str, queries: list[tuple[str, str]], *,
           kind: str = "timeseries", threshold: float | None = None,
           description: str = "") -> dict:
    defaults: dict = {"unit": unit}
    if threshold is not None:
        defaults["thresholds"] = {"mode": "absolute", "steps": [
            {"color": "green", "value": None}, {"color": "red", "value": threshold}]}
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {"type": kind, "title": title, "description": description,
            "datasource": DATASOURCE, "fieldConfig": {"defaults": defaults, "overrides": []},
            "targets": _targets(queries)}


def _dashboard(kind: str, name: str, title: str, panels: list[dict]) -> dict:
    for index, panel in enumerate(panels):
        panel["id"] = index + 1
        panel["gridPos"] = {"h": PANEL_HEIGHT, "w": PANEL_WIDTH,
                            "x": (index % 2) * PANEL_WIDTH, "y": (index // 2) * PANEL_HEIGHT}
    return {
        "uid": _uid(kind, name), "title": title, "tags": ["placement-planner", kind],
        "timezone": "utc", "editable": True, "schemaVersion": SCHEMA_VERSION, "version": 1,
        "time": {"from": "now-6h", "to": "now"}, "refresh": "1m",
        "templating": {"list": [{"name": "datasource", "label": "Prometheus",
                                 "type": "datasource", "query": "prometheus"}]},
        "annotations": {"list": []}, "panels": panels,
    }


def _service_panels(models: list[ModelPlan]) -> list[dict]:
    return [
        _panel("Requests per second", "reqps", _per_model(models, _rate)),
        _panel("p99 latency / SLO", "percentunit", _per_model(models, _p99_over_slo),
               threshold=1, description="Each model's p99 over its slo.p99_ms; above 100% "
               "the objective is missed."),
        _panel("Queue depth / queue limit", "percentunit",
               _per_model(models, _queue_over_limit), threshold=1,
               description="The fullest replica's queue over limits.queue_limit; at 100% "
               "requests are refused."),
    ]


def _gpu_panels(plan: Plan, models: list[ModelPlan], planned_memory_mib: int,
                planned_util_percent: float | None, cost_per_hour: float) -> list[dict]:
    selector = _gpu_selector(plan, models)
    util = [("used", f"avg({_per_gpu(metrics.DCGM_GPU_UTIL_PERCENT, selector)})")]
    if planned_util_percent is not None:
        util.append(("planned", f"vector({planned_util_percent:g})"))
    currency = plan.summary.currency
    return [
        _panel("GPU memory used and planned", "mbytes", [
            ("used", f"sum({_per_gpu(metrics.DCGM_MEMORY_USED_MIB, selector)})"),
            ("planned", f"vector({planned_memory_mib})")],
            description="DCGM_FI_DEV_FB_USED (MiB) summed over the GPUs these models hold, "
            "against the plan's memory."),
        _panel("GPU utilisation and plan", "percent", util,
               description="DCGM_FI_DEV_GPU_UTIL averaged over the GPUs these models hold."),
        _panel(f"Cost per hour ({currency}, planned)", "none",
               [("cost per hour", f"vector({cost_per_hour:g})")], kind="stat",
               description="The plan's cost per hour; cost.csv has it per model and month."),
    ]


def pool_dashboard(plan: Plan, pool_name: str) -> dict:
    [pool] = [p for p in plan.pools if p.name == pool_name]
    models = [m for m in plan.models if m.pool == pool.name]
    util = 100 * pool.compute_used_milli / pool.compute_capacity_milli \
        if pool.compute_capacity_milli else 0.0
    panels = _service_panels(models) + _gpu_panels(
        plan, models, pool.memory_used_mib, round(util, 1), pool.cost_per_hour)
    return _dashboard("pool", pool.name, f"GPU pool {pool.name}", panels)


def team_dashboard(plan: Plan, team: str) -> dict:
    models = [m for m in plan.models if m.team == team]
    memory = sum(m.memory_mib * m.gpus_per_replica * m.replicas for m in models)
    cost = round(sum(m.cost_per_hour for m in models), 6)
    panels = _service_panels(models) + _gpu_panels(plan, models, memory, None, cost)
    return _dashboard("team", team, f"Team {team}: models", panels)


def render_dashboards(plan: Plan) -> dict[str, str]:
    """Dashboard files by relative path: `dashboards/pools/<pool>.json` for every pool with a
    model, `dashboards/teams/<team>.json` for every team with a placed model."""
    files = {}
    for pool in sorted({m.pool for m in plan.models}):
        files[f"dashboards/pools/{pool}.json"] = _json(pool_dashboard(plan, pool))
    for team in sorted({m.team for m in plan.models}):
        files[f"dashboards/teams/{team}.json"] = _json(team_dashboard(plan, team))
    return files


def _json(dashboard: dict) -> str:
    return json.dumps(dashboard, indent=2) + "\n"
