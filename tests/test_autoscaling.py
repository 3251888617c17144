"""Autoscaling: replicas between the expected mean traffic's and the peak's, as a
HorizontalPodAutoscaler that validates strictly, and the cost at the peak and at the mean."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from planner.planfile import load_plan
from planner.registry.locate import write_demo
from planner.rules.autoscaling import RATE_ENGINES, REQUESTS_PER_SECOND, autoscaling
from planner.schemas import ModelSpec
from reports.manifests import render_manifests
from tests.conftest import edit_yaml

BASE = {"name": "m", "team": "t", "serving_profile": "online", "priority": "production",
        "labels": {"model-tier": "small", "latency-class": "interactive",
                   "gpu-sharing": "allowed", "tenant-scope": "shared"},
        "slo": {"p99_ms": 50}, "limits": {"max_concurrency": 8, "queue_limit": 16,
                                          "timeout_ms": 1000},
        "serving": {"image": "i:1", "port": 8080, "engine": "vllm"},
        "resources": {"memory_mib": 1000, "throughput_rps": 10}}


def _model(peak: float, mean: float | None, least: int = 1, engine: str | None = "vllm"):
    data = {**BASE, "traffic": {"peak_rps": peak, "mean_rps": mean},
            "replicas": {"min": least}, "serving": {**BASE["serving"], "engine": engine}}
    return ModelSpec.model_validate(data)


@pytest.mark.parametrize(("peak", "mean", "least", "replicas", "expected"), [
    (100, 40, 1, 5, (2, 5, 20.0)),   # 5 x 40 / 100 = 2 replicas at the mean, 20 rps each
    (100, 41, 1, 5, (3, 5, 20.0)),   # 2.05: rounded up
    (100, 40, 3, 5, (3, 5, 20.0)),   # replicas.min holds at the mean
    (100, 0, 1, 4, (1, 4, 25.0)),    # no traffic at all still keeps replicas.min
])
def test_replica_range_by_hand(peak, mean, least, replicas, expected):
    scaling = autoscaling(_model(peak, mean, least), replicas)
    assert scaling is not None
    assert (scaling.min_replicas, scaling.max_replicas, scaling.target_per_replica) == expected
    assert scaling.metric == REQUESTS_PER_SECOND


@pytest.mark.parametrize(("model", "replicas"), [
    (_model(100, None), 5),          # no mean: nothing to scale down to
    (_model(100, 90, least=5), 5),   # the mean needs the peak's replicas
    (_model(100, 40, engine=None), 5),  # no engine: no request rate the planner knows
])
def test_no_autoscaling(model, replicas):
    assert autoscaling(model, replicas) is None


@pytest.fixture(scope="module")
def autoscaled_out(tmp_path_factory) -> Path:
    """The demo with llm-chat-70b at a peak of 4 rps and a mean of 1: two replicas at the
    peak, one at the mean, and support-summarizer (`autoscaler: keda`) at a peak of 14 rps
    and a mean of 2 (the demo's own models each need one replica or as many at the mean as
    at the peak), planned by the greedy solver."""
    from typer.testing import CliRunner

    from planner.cli import app

    root = tmp_path_factory.mktemp("autoscaled")
    write_demo(root / "registry")
    edit_yaml(root / "registry" / "models" / "llm-chat-70b.yaml",
              lambda d: d["traffic"].update(peak_rps=4, mean_rps=1))
    edit_yaml(root / "registry" / "models" / "support-summarizer.yaml",
              lambda d: d["traffic"].update(peak_rps=14, mean_rps=2))
    result = CliRunner().invoke(app, ["plan", "--registry", str(root / "registry"), "--solver",
                                      "greedy", "--out", str(root / "out")])
    assert result.exit_code == 0, result.stderr
    return root / "out"


def test_demo_autoscalers_carry_the_traffic_and_validate(autoscaled_out: Path):
    greedy_demo_out = autoscaled_out
    plan = load_plan(greedy_demo_out / "plan.yaml")
    scaled = {m.name: m for m in plan.models if m.autoscaling is not None}
    # llm-chat-70b: peak 4 rps, mean 1, 2 replicas: one at the mean, 2 rps per replica
    chat = scaled["llm-chat-70b"].autoscaling
    assert chat is not None
    assert (chat.min_replicas, chat.max_replicas, chat.target_per_replica) == (1, 2, 2.0)
    documents = [d for path in (greedy_demo_out / "manifests" / "models").glob("*.yaml")
                 for d in yaml.safe_load_all(path.read_text())
                 if d["kind"] == "HorizontalPodAutoscaler"]
    by_hpa = {name for name, m in scaled.items()
              if m.autoscaling is not None and m.autoscaling.by == "hpa"}
    assert {d["metadata"]["name"] for d in documents} == by_hpa
    for document in documents:
        kubernetes_validate.validate(document, plan.metadata.kubernetes_version, strict=True)
        model = scaled[document["metadata"]["name"]]
        assert model.autoscaling is not None
        spec = document["spec"]
        assert (spec["minReplicas"], spec["maxReplicas"]) == (model.autoscaling.min_replicas,
                                                              model.replicas)
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": model.name}
    hpa = next(d for d in documents if d["metadata"]["name"] == "llm-chat-70b")
    assert hpa["spec"]["metrics"] == [{"type": "Pods", "pods": {
        "metric": {"name": "requests_per_second"},
        "target": {"type": "AverageValue", "averageValue": "2000m"}}}]
    kserve = render_manifests(plan, target="kserve")
    assert "HorizontalPodAutoscaler" not in "".join(kserve.values())


def test_summary_prices_the_peak_and_the_mean(autoscaled_out: Path):
    from planner import money as amounts
    from planner.ledger import ledger
    from reports.format import money
    from reports.summary import render_summary

    plan = load_plan(autoscaled_out / "plan.yaml")
    by_model = ledger(plan).by_model()
    scaled = [m for m in plan.models if m.autoscaling is not None]
    at_peak = sum(by_model[m.name] for m in scaled)
    # llm-chat-70b (HPA) scales from 2 replicas to 1, support-summarizer (KEDA) to 1 of its
    # own: each costs its share of replicas at the mean.
    assert [m.name for m in scaled] == ["llm-chat-70b", "support-summarizer"]
    assert all(m.autoscaling.min_replicas == 1 for m in scaled if m.autoscaling is not None)
    chat = plan.model("llm-chat-70b")
    assert chat is not None and chat.autoscaling is not None
    assert chat.autoscaling.max_replicas == 2
    at_mean = sum(by_model[m.name] * m.autoscaling.min_replicas / m.autoscaling.max_replicas
                  for m in scaled if m.autoscaling is not None)
    text = render_summary(plan)
    assert (f"their replicas cost {money(at_peak, 'USD')} per month at the peak, as planned, "
            f"and {money(amounts.rounded(at_mean, 'USD'), 'USD')} at the mean") in text


def _scaled_objects(out: Path) -> list[dict]:
    return [d for path in (out / "manifests" / "models").glob("*.yaml")
            for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "ScaledObject"]


def test_keda_scaled_object_validates_and_carries_the_planned_range(autoscaled_out: Path):
    """The demo's support-summarizer (`autoscaler: keda`) at a peak that needs two replicas
    or more: a ScaledObject that KEDA's CRD
    (v2.20.2) accepts, scaling its Deployment between the planned mean's and peak's replicas
    on vLLM's request rate, at the planned rate per replica; no HorizontalPodAutoscaler."""
    from reports.metrics import ENGINES, model_selector, request_rate
    from tests import crds

    plan = load_plan(autoscaled_out / "plan.yaml")
    keda = {m.name: m for m in plan.models
            if m.autoscaling is not None and m.autoscaling.by == "keda"}
    assert set(keda) == {"support-summarizer"}
    objects = _scaled_objects(autoscaled_out)
    assert {d["metadata"]["name"] for d in objects} == set(keda)
    for document in objects:
        assert crds.errors(document) == []
        model = keda[document["metadata"]["name"]]
        scaling = model.autoscaling
        assert scaling is not None
        spec = document["spec"]
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == \
            (scaling.min_replicas, scaling.max_replicas)
        assert spec["maxReplicaCount"] == model.replicas  # the plan packs the peak's
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": model.name}
        [trigger] = spec["triggers"]
        assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
        engine = ENGINES[model.serving.engine or ""]
        assert trigger["metadata"] == {
            "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
            "query": request_rate(engine, model_selector(model.name), "2m"),
            "threshold": trigger["metadata"]["threshold"]}
        assert re.fullmatch(r"[0-9]+(\.[0-9]{1,3})?", trigger["metadata"]["threshold"])
        assert float(trigger["metadata"]["threshold"]) == scaling.target_per_replica
    summarizer = keda["support-summarizer"]
    assert summarizer.autoscaling is not None
    # peak 14 rps, mean 2: one replica at the mean, each at 14 rps over the planned replicas
    replicas = summarizer.replicas
    assert replicas >= 2
    assert (summarizer.autoscaling.min_replicas, summarizer.autoscaling.max_replicas,
            summarizer.autoscaling.target_per_replica) == (1, replicas, round(14 / replicas, 3))
    bad = copy.deepcopy(objects[0])
    bad["spec"]["minReplicas"] = 1  # the HPA's spelling is not KEDA's
    assert any("minReplicas" in e for e in crds.errors(bad))


def test_keda_query_parses_in_promtool(autoscaled_out: Path, tmp_path: Path):
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs the Debian package prometheus")
        pytest.skip("promtool not installed (Debian package prometheus)")
    rules = [{"record": f"keda:{d['metadata']['name'].replace('-', '_')}:rps",
              "expr": d["spec"]["triggers"][0]["metadata"]["query"]}
             for d in _scaled_objects(autoscaled_out)]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "keda", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_keda_engines_are_those_with_a_request_rate():
    from reports.metrics import ENGINES, request_rate

    assert set(RATE_ENGINES) == {name for name, engine in ENGINES.items()
                                 if request_rate(engine, "", "1m") is not None}


def test_keda_without_a_known_engine_is_exit_2(cli, registry: Path):
    from tests.conftest import edit_yaml

    path = registry / "models" / "support-summarizer.yaml"
    edit_yaml(path, lambda d: d["serving"].update(engine="sglang"))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert "support-summarizer.yaml:" in result.stderr
    assert "autoscaler: KEDA scales on the request rate the serving engine exposes, and " \
        "serving.engine is 'sglang'" in result.stderr


def test_keda_prometheus_url_from_planner_yaml(cli, registry: Path, tmp_path: Path):
    (registry / "planner.yaml").write_text((registry / "planner.yaml").read_text()
                                           + "prometheus_url: http://prom.example:9090\n")
    edit_yaml(registry / "models" / "support-summarizer.yaml",  # two replicas at the peak
              lambda d: d["traffic"].update(peak_rps=14, mean_rps=2))
    result = cli("plan", "--registry", registry, "--solver", "greedy", "--out",
                 tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    [document] = _scaled_objects(tmp_path / "out")
    assert document["spec"]["triggers"][0]["metadata"]["serverAddress"] == \
        "http://prom.example:9090"


def test_keda_threshold_is_a_plain_decimal(autoscaled_out: Path):
    from reports.manifests import scaled_object

    plan = load_plan(autoscaled_out / "plan.yaml")
    model = plan.model("support-summarizer")
    assert model is not None and model.autoscaling is not None
    for rate, text in ((1234567.125, "1234567.125"), (0.5, "0.5"), (20.0, "20")):
        scaled = model.model_copy(update={"autoscaling": model.autoscaling.model_copy(
            update={"target_per_replica": rate})})
        trigger = scaled_object(plan, scaled)["spec"]["triggers"][0]
        assert trigger["metadata"]["threshold"] == text
