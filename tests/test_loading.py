"""Loading: `lazy` refused where a cold start cannot meet the timeout, `auto` decided per model
with its reason in the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.planfile import load_plan
from planner.rules.loading import auto_loading, lazy_problem
from planner.schemas import ModelSpec
from tests.conftest import edit_yaml


def _model(mean_rps: float | None, p99_ms: float = 150, timeout_ms: int = 3000) -> ModelSpec:
    return ModelSpec.model_validate({
        "name": "m", "team": "t", "serving_profile": "bursty", "priority": "internal",
        "labels": {"model-tier": "small", "latency-class": "bursty", "gpu-sharing": "allowed",
                   "tenant-scope": "shared"},
        "traffic": {"peak_rps": 10, "mean_rps": mean_rps}, "slo": {"p99_ms": p99_ms},
        "limits": {"max_concurrency": 4, "queue_limit": 8, "timeout_ms": timeout_ms},
        "serving": {"image": "x"}})


def test_lazy_fits_when_load_and_p99_fit_the_timeout():
    assert lazy_problem(_model(1), 2.85) is None  # 2850 + 150 = 3000 ms, the timeout itself
    assert lazy_problem(_model(1), None) is None  # unknown: nothing to refuse
    problem = lazy_problem(_model(1), 2.9)
    assert problem is not None
    assert "2.9 s to load" in problem and "= 3050 ms, over timeout_ms 3000" in problem


@pytest.mark.parametrize(("mean_rps", "load_s", "policy", "why"), [
    (0.1, 2.0, "lazy", "idle between requests: 0.2 requests arrive in one 2 s load"),
    (0.5, 2.0, "warm", "busy: 1 requests arrive in one 2 s load at the mean of 0.5 rps"),
    (0.1, 3.0, "warm", "a cold start (3150 ms) would exceed timeout_ms 3000"),
    (None, 2.0, "warm", "no traffic.mean_rps"),
])
def test_auto_by_idle_time_and_cold_start(mean_rps, load_s, policy, why):
    chosen, reason = auto_loading(_model(mean_rps), load_s)
    assert chosen == policy
    assert why in reason


def _set_load_time(registry: Path, model: str, gpu: str, seconds: float) -> None:
    edit_yaml(registry / "profiles" / model / f"{gpu}.yaml",
              lambda d: d.update(load_time_s=seconds))


def test_lazy_model_whose_cold_start_times_out_is_refused(cli, registry: Path):
    # sentiment-analyzer: lazy, p99 150 ms, timeout 3000 ms; a 4 s load cannot fit
    _set_load_time(registry, "sentiment-analyzer", "l4", 4)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    text = " ".join(result.stderr.split())
    assert "sentiment-analyzer.yaml:12: loading.policy:" in text
    assert "4 s to load (load_time_s of its fastest profile) plus the p99 of 150 ms = 4150 ms, " \
        "over timeout_ms 3000" in text


def test_auto_decision_and_reason_in_the_plan(cli, registry: Path, tmp_path: Path):
    # spell-corrector on auto: mean 0.2 rps; ocr-service on auto as the demo has it (2 s load)
    edit_yaml(registry / "models" / "spell-corrector.yaml",
              lambda d: d.update(loading={"policy": "auto"},
                                 traffic={"peak_rps": 80, "mean_rps": 0.2}))
    plan_out = tmp_path / "out"
    _set_load_time(registry, "spell-corrector", "l4", 1.5)
    result = cli("plan", "--registry", registry, "--out", plan_out, "--solver", "greedy")
    assert result.exit_code == 0, result.stderr
    plan = load_plan(plan_out / "plan.yaml")
    spell = plan.model("spell-corrector")
    assert spell is not None and spell.pool == "shared-l4"
    assert spell.loading == "lazy"
    [cache] = [c for p in plan.pools for c in p.caches]
    assert "spell-corrector" in cache.members
    assert ("loading auto: lazy, idle between requests: 0.3 requests arrive in one 1.5 s load "
            "at the mean of 0.2 rps, and a cold start (1650 ms) fits timeout_ms 3000"
            in spell.reasons)
    ocr = plan.model("ocr-service")
    assert ocr is not None and ocr.loading == "warm"
    assert "loading auto: warm, busy: 20 requests arrive in one 2 s load at the mean of 10 rps" \
        in ocr.reasons
