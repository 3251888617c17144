"""Monitoring: per model PodMonitors and PrometheusRules that validate against the
prometheus-operator CRDs and promtool, scrape the port the engine serves metrics on, and alert
at exactly the registry's numbers; per pool and team Grafana dashboards that validate against
the JSON Schema of Grafana's dashboard model, whose queries promtool parses and whose planned
lines are the plan's numbers."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.planfile import Plan, load_plan
from planner.registry.loader import load_registry
from reports.dashboards import render_dashboards
from reports.manifests import render_manifests
from reports.observability import BURN_WINDOWS, COLD_STARTS_PER_HOUR_MAX, ERROR_BUDGET
from scripts.update_goldens import COMMAND
from tests import consumers, crds
from tests.consumers import WORKLOAD_KINDS, pod_template

DEMO = Path(__file__).resolve().parent.parent / "planner" / "demo" / "registry"


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> tuple[Plan, consumers.Manifests, consumers.Manifests]:
    out = tmp_path_factory.mktemp("obs") / "out"
    result = CliRunner().invoke(app, [*COMMAND, "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    plan = load_plan(out / "plan.yaml")
    written = {str(p.relative_to(out)): p.read_text() for p in out.rglob("manifests/**/*.yaml")}
    return (plan, consumers.Manifests.of(written),
            consumers.Manifests.of(render_manifests(plan, target="kserve")))


@pytest.fixture(scope="module")
def fleet():
    return load_registry(DEMO)


def _rules(manifests: consumers.Manifests) -> dict[str, list[dict]]:
    """Alert rules by model name."""
    return {r["metadata"]["name"]: r["spec"]["groups"][0]["rules"]
            for r in manifests.kind("PrometheusRule")}


@pytest.mark.parametrize("target", ["deployment", "kserve"])
def test_monitoring_objects_validate_against_their_crds(planned, target):
    plan, deployments, kserve = planned
    manifests = deployments if target == "deployment" else kserve
    monitors, rules = manifests.kind("PodMonitor"), manifests.kind("PrometheusRule")
    # a model loaded into a cache's servers has no pods: the demo's cache, in KServe
    # ModelMesh, has a PodMonitor of the runtime's pods (`test_modelmesh`)
    [cache] = [c for p in plan.pools for c in p.caches]
    assert sorted(m["metadata"]["name"] for m in monitors) == sorted(
        [m.name for m in plan.models if m.cache is None] + [cache.workload])
    assert len(monitors) == 27 + 1
    assert len(rules) == len(plan.models)  # every demo model has an engine, so alerts
    assert manifests.kind("ServiceMonitor") == []  # Triton's own servers have one
    for document in monitors + rules:
        assert crds.errors(document) == [], document["metadata"]["name"]


def test_crd_validation_refuses_a_misspelt_field(planned):
    _, deployments, _ = planned
    rule = copy.deepcopy(deployments.kind("PrometheusRule")[0])
    rule["spec"]["groups"][0]["rules"][0]["fore"] = "5m"
    assert any("fore" in e for e in crds.errors(rule))


def test_promtool_accepts_every_rule(planned, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs the Debian package prometheus")
        pytest.skip("promtool not installed (Debian package prometheus)")
    _, deployments, _ = planned
    groups = [g for r in deployments.kind("PrometheusRule") for g in r["spec"]["groups"]]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in groups)
    assert f"SUCCESS: {count} rules found" in result.stdout


def _thresholds(expr: str, comparison: str) -> list[str]:
    """The right-hand sides of `comparison`: a number or a parenthesised product."""
    return re.findall(rf"(?<![<>=]){comparison} (\([0-9.e+ *]+\)|[0-9.e+]+)", expr)


def test_each_alert_threshold_is_the_registrys_value(planned, fleet):
    plan, deployments, _ = planned
    rules = _rules(deployments)
    seen: dict[str, int] = {}
    for model in plan.models:
        spec = fleet.models[model.name]
        for rule in rules[model.name]:
            name, expr = rule["alert"], rule["expr"]
            seen[name] = seen.get(name, 0) + 1
            assert rule["labels"]["model"] == model.name
            assert rule["labels"]["team"] == spec.team
            assert rule["labels"]["priority"] == spec.priority
            if name == "ModelLatencyAboveSLO":
                assert _thresholds(expr, ">") == [f"{spec.slo.p99_ms / 1000:g}"] * 2
            elif name == "ModelErrorBudgetBurn":
                burn = {s: b for s, _, _, b in BURN_WINDOWS}[rule["labels"]["severity"]]
                assert ERROR_BUDGET == pytest.approx(0.01)
                assert _thresholds(expr, ">") == [f"({burn:g} * 0.01)"] * 2
            elif name == "ModelQueueSaturated":
                assert _thresholds(expr, ">=") == [str(spec.limits.queue_limit)]
            elif name == "ModelGpuMemoryAbovePlan":
                assert _thresholds(expr, ">") == [str(model.memory_mib)]
            elif name == "ModelColdStartsTooFrequent":
                assert spec.loading.policy == "lazy"
                assert expr.endswith(f"> {COLD_STARTS_PER_HOUR_MAX}")
            else:
                pytest.fail(f"unknown alert {name}")
    engines = {m.serving.engine for m in plan.models}
    assert engines == {"triton", "vllm", "kserve"}
    assert seen["ModelLatencyAboveSLO"] == 2 * len(plan.models)
    # KServe's model server counts no errors and has no queue gauge
    with_errors = sum(m.serving.engine != "kserve" for m in plan.models)
    assert seen["ModelErrorBudgetBurn"] == 2 * with_errors
    assert seen["ModelQueueSaturated"] == with_errors
    assert seen["ModelColdStartsTooFrequent"] == sum(m.loading == "lazy" for m in plan.models)
    assert 0 < seen["ModelGpuMemoryAbovePlan"] < len(plan.models)


def test_engine_metric_names(planned):
    plan, deployments, _ = planned
    rules = _rules(deployments)
    names = {"triton": ("nv_inference_request_summary_us", "nv_inference_request_failure",
                        "nv_inference_pending_request_count"),
             "vllm": ("vllm:e2e_request_latency_seconds_bucket", "vllm:request_success_total",
                      "vllm:num_requests_waiting"),
             "kserve": ("request_predict_seconds_bucket",)}
    for model in plan.models:
        text = " ".join(r["expr"] for r in rules[model.name])
        assert model.serving.engine is not None
        for metric in names[model.serving.engine]:
            assert metric in text, (model.name, metric)


@pytest.mark.parametrize("target", ["deployment", "kserve"])
def test_pod_monitor_scrapes_a_declared_port_of_the_models_pods(planned, target):
    plan, deployments, kserve = planned
    manifests = deployments if target == "deployment" else kserve
    workloads = {w["metadata"]["name"]: w
                 for kind in ("InferenceService", *WORKLOAD_KINDS) for w in manifests.kind(kind)}
    for monitor in manifests.kind("PodMonitor"):
        name = monitor["metadata"]["name"]
        if plan.cache(name) is not None:
            continue  # a ModelMesh runtime's pods: `test_modelmesh`
        workload = workloads[name]
        assert monitor["metadata"]["namespace"] == workload["metadata"]["namespace"]
        if workload["kind"] == "InferenceService":
            container = workload["spec"]["predictor"]["containers"][0]
            assert monitor["spec"]["selector"]["matchLabels"] == {
                "serving.kserve.io/inferenceservice": name}
        else:
            pod = pod_template(workload)[0]
            container = pod["spec"]["containers"][0]
            assert monitor["spec"]["selector"]["matchLabels"].items() <= \
                pod["metadata"]["labels"].items()
        [endpoint] = monitor["spec"]["podMetricsEndpoints"]
        [port] = container["ports"]
        assert port["name"] == endpoint["port"]
        model = plan.model(name)
        assert model is not None
        relabel = {r["targetLabel"]: r for r in endpoint["relabelings"]}
        joined = {key: r["replacement"] for key, r in relabel.items() if key != "__address__"}
        assert joined == {"model": name, "team": model.team, "pool": model.pool,
                          "priority": model.priority}
        if model.serving.engine == "triton":  # metrics on 8002, apart from the serving port
            address = relabel["__address__"]
            assert address["sourceLabels"] == ["__meta_kubernetes_pod_ip"]
            assert re.sub(r"\$\{1\}", "10.0.0.7", address["replacement"]) == "10.0.0.7:8002"
        else:
            assert "__address__" not in relabel
            assert port["containerPort"] == model.serving.port


@pytest.fixture(scope="module")
def dashboards(planned) -> dict[str, dict]:
    plan, _, _ = planned
    return {path: json.loads(text) for path, text in render_dashboards(plan).items()}


def _queries(dashboard: dict) -> dict[str, list[tuple[str, str]]]:
    """(legend, expr) of every query, by panel title."""
    return {p["title"]: [(t["legendFormat"], t["expr"]) for t in p["targets"]]
            for p in dashboard["panels"]}


def test_a_dashboard_per_pool_and_team_in_grafanas_model(planned, dashboards):
    plan, _, _ = planned
    assert set(dashboards) == (
        {f"dashboards/pools/{m.pool}.json" for m in plan.models}
        | {f"dashboards/teams/{m.team}.json" for m in plan.models})
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids) and all(len(uid) <= 40 for uid in uids)
    for dashboard in dashboards.values():
        panels = dashboard["panels"]
        assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
        cells = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels]
        assert len(set(cells)) == len(cells)
        assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in panels)
        for panel in panels:
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(set(refs)) == len(refs)


GRAFANA_SCHEMA = Path(__file__).resolve().parent / "data" / "grafana" / \
    "dashboard.jsonschema.json"


def test_dashboards_validate_against_grafanas_dashboard_schema(dashboards):
    """The vendored JSON Schema of Grafana's dashboard model (tests/data/grafana/README.md)."""
    import jsonschema

    validator = jsonschema.Draft7Validator(json.loads(GRAFANA_SCHEMA.read_text()))
    for path, dashboard in dashboards.items():
        problems = [f"{list(e.absolute_path)}: {e.message}"
                    for e in validator.iter_errors(dashboard)]
        assert not problems, (path, problems)
    # the schema refuses what Grafana's model does not have
    broken = copy.deepcopy(next(iter(dashboards.values())))
    broken["panels"][0]["gridpos"] = broken["panels"][0].pop("gridPos")
    broken["refresh"] = 30
    messages = sorted(e.message for e in validator.iter_errors(broken))
    assert len(messages) == 2 and messages[0] == "30 is not of type 'string'"
    # a panel is a Panel or a RowPanel, and with `gridpos` it is neither
    assert "'gridpos'" in messages[1] and \
        messages[1].endswith("is not valid under any of the given schemas")


def test_dashboards_compare_with_the_plans_numbers(planned, dashboards):
    plan, _, _ = planned
    for pool in plan.pools:
        path = f"dashboards/pools/{pool.name}.json"
        if path not in dashboards:
            continue
        queries = _queries(dashboards[path])
        assert dict(queries["GPU memory used and planned"])["planned"] == \
            f"vector({pool.memory_used_mib})"
        [(_, cost)] = queries[f"Cost per hour ({plan.summary.currency}, planned)"]
        assert cost == f"vector({pool.cost_per_hour:g})"
        models = [m for m in plan.models if m.pool == pool.name]
        over_slo = dict(queries["p99 latency / SLO"])
        assert set(over_slo) == {m.name for m in models}
        for model in models:
            assert model.slo_p99_ms is not None
            assert over_slo[model.name].endswith(f" / {model.slo_p99_ms / 1000:g}")
    for team in {m.team for m in plan.models}:
        queries = _queries(dashboards[f"dashboards/teams/{team}.json"])
        [(_, cost)] = queries[f"Cost per hour ({plan.summary.currency}, planned)"]
        expected = round(sum(m.cost_per_hour for m in plan.models if m.team == team), 6)
        assert cost == f"vector({expected:g})"
        queue = dict(queries["Queue depth / queue limit"])
        for model in plan.models:
            if model.team == team and model.name in queue:
                assert queue[model.name].endswith(f" / {model.limits.queue_limit}")


def test_promtool_parses_every_dashboard_query(dashboards, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs the Debian package prometheus")
        pytest.skip("promtool not installed (Debian package prometheus)")
    exprs = sorted({expr for d in dashboards.values() for qs in _queries(d).values()
                    for _, expr in qs})
    rules = [{"record": f"dashboard:query_{n}:value", "expr": expr}
             for n, expr in enumerate(exprs)]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
