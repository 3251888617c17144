"""Batch models that work in runs: a CronJob (or a one-off Job) placed as a Deployment's pods
would be, validated strictly; schedules the CronJob controller would refuse refused at load;
runs counted per calendar month; the model paying for the hours its runs take, the rest in
its pool's idle line, the same in the ledger, cost.csv and summary.md; and `planner simulate`
scheduling the runs' pods."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from planner import cron, money
from planner.cli import app
from planner.demo import demo_registry_path
from planner.ledger import hours_run, ledger
from planner.period import priced_for
from planner.planfile import Plan, load_plan
from planner.registry.kubernetes import batch_name_problems, last_gpu_slot
from planner.registry.loader import load_registry
from planner.rules.batch import batch_problems, runs, runs_in_month
from planner.schemas import ModelSpec
from planner.simulation.manifests import Manifests
from planner.simulation.pods import pods_of
from reports.focus import cost_rows
from reports.manifests import render_manifests
from reports.summary import render_summary
from tests.conftest import edit_yaml

NIGHTLY = "feed-ranker-batch"  # the demo's nightly run: 5.4 million requests at 500 rps


def _spec(**batch) -> ModelSpec:
    return ModelSpec.model_validate({
        "name": "m", "team": "t", "serving_profile": "batch", "priority": "batch",
        "labels": {"model-tier": "small", "latency-class": "batch", "gpu-sharing": "allowed",
                   "tenant-scope": "shared"},
        "traffic": {"peak_rps": 500}, "slo": {"p99_ms": 1000},
        "limits": {"max_concurrency": 8, "queue_limit": 16, "timeout_ms": 10000},
        "serving": {"image": "i:1", "engine": "triton"},
        "resources": {"memory_mib": 1000, "throughput_rps": 100}, "batch": batch})


@pytest.mark.parametrize(("schedule", "words"), [
    ("0 2 * * * *", "has 6 fields"),                 # a seconds field
    ("0 2 L * *", "not a day of month field"),       # croniter reads L, the controller not
    ("0 2 * * 5#3", "not a day of week field"),
    ("@every 1h", "not a descriptor"),
    ("0 25 * * *", "not a valid cron schedule"),
    ("TZ=UTC 0 2 * * *", "has 6 fields"),
    ("0 0 30 2 *", "never starts a run"),            # 30 February
])
def test_schedules_the_cronjob_controller_refuses(schedule, words):
    assert words in (cron.schedule_problem(schedule) or "")


@pytest.mark.parametrize("schedule", ["0 2 * * *", "@daily", "*/15 3 1-7 JAN-MAR MON,FRI",
                                      "0 0 ? * SUN"])
def test_schedules_the_cronjob_controller_reads(schedule):
    assert cron.schedule_problem(schedule) is None


def test_runs_per_month_by_the_calendar():
    nightly = _spec(schedule="0 2 * * *", requests_per_run=5_400_000)
    found = runs(nightly, 730)
    assert found is not None
    assert found.run_hours == 3.0  # 5.4 million at 500 rps
    assert found.runs_per_month == pytest.approx(365 / 8760 * 730)  # 30.42
    assert runs_in_month("0 2 * * *", None, "2027-02") == 28
    assert runs_in_month("0 2 * * *", None, "2026-12") == 31
    assert runs_in_month("0 3 * * MON", None, "2027-03") == 5  # Mondays of March 2027
    assert runs_in_month(None, None, "2027-03") == 1  # a one-off Job runs once
    assert runs_in_month("0 0 29 2 *", None, "2027-02") == 0  # a leap day's run
    assert runs_in_month("0 0 29 2 *", None, "2028-02") == 1
    # Read in Tokyo (UTC+9), 05:00 on the 1st is 20:00 UTC the day before: December 2026's
    # run is the one of 1 January 2027.
    [start] = cron.starts("0 5 1 * *", "Asia/Tokyo", datetime(2026, 12, 1, tzinfo=UTC),
                          datetime(2027, 1, 1, tzinfo=UTC), 10)
    assert start.astimezone(UTC) == datetime(2026, 12, 31, 20, 0, tzinfo=UTC)


def test_run_names_within_the_api_servers_limits():
    cluster = load_registry(demo_registry_path()).cluster
    daily = _spec(schedule="@daily", requests_per_run=10)
    once = _spec(requests_per_run=10)
    assert batch_name_problems(daily.model_copy(update={"name": "m" * 52}), cluster, []) == []
    assert batch_name_problems(daily.model_copy(update={"name": "m" * 53}), cluster, []) == [
        "a CronJob's name has at most 52 characters (its Jobs add 11), and "
        f"'{'m' * 53}' has 53; shorten it"]
    assert batch_name_problems(once.model_copy(update={"name": "m" * 63}), cluster, []) == []
    # Under DRA, one per planned GPU: the last node (index 9 of max_nodes 10) and GPU (3 of 4).
    dra = cluster.model_copy(update={"sharing_backend": "dra"})
    batch_t4 = next(p for p in dra.pools if p.name == "batch-t4")
    pool = batch_t4.model_copy(update={"max_nodes": 10, "other_shapes": [], "spot": None})
    assert last_gpu_slot(dra, pool) == "9-gpu-3"
    assert last_gpu_slot(cluster, pool) is None
    assert batch_name_problems(daily.model_copy(update={"name": "m" * 44}), dra, [pool]) == []
    [problem] = batch_name_problems(daily.model_copy(update={"name": "m" * 45}), dra, [pool])
    assert f"in pool batch-t4 the last is '{'m' * 45}-9-gpu-3', 53 characters" in problem
    [problem] = batch_name_problems(once.model_copy(update={"name": "m" * 56}), dra, [pool])
    assert problem.startswith("a Job's name has at most 63 characters")


def test_batch_problems_each_at_its_field():
    assert batch_problems(_spec(schedule="0 2 * * *", requests_per_run=5_400_000)) == []
    [(loc, message)] = batch_problems(_spec(schedule="0 * * * *", requests_per_run=2_000_000))
    assert loc == ("batch", "requests_per_run")
    assert "lasts 1.11 h, longer than the 1.00 h between two starts" in message
    [(loc, message)] = batch_problems(_spec(schedule="*/30 * * * *", requests_per_run=1))
    assert loc == ("batch", "schedule") and "more than once an hour" in message
    online = _spec(requests_per_run=10).model_copy(update={"serving_profile": "online"})
    assert [loc for loc, _ in batch_problems(online)] == [("batch",)]
    keda = _spec(requests_per_run=10).model_copy(update={"autoscaler": "keda"})
    assert [loc for loc, _ in batch_problems(keda)] == [("autoscaler",)]


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda d: d["batch"].update(schedule="0 2 L * *"), "batch.schedule",
     "not a day of month field"),
    (lambda d: d["batch"].update(time_zone="Mars/Olympus"), "batch.time_zone",
     "not an IANA time zone"),
    (lambda d: d["batch"].update(requests_per_run=50_000_000), "batch.requests_per_run",
     "longer than the 24.00 h between two starts"),
    (lambda d: d.update(serving_profile="online"), "batch", "set serving_profile: batch"),
])
def test_a_bad_batch_is_exit_2_at_its_line(cli, registry: Path, change, field, words):
    path = registry / "models" / f"{NIGHTLY}.yaml"
    edit_yaml(path, change)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert f"{NIGHTLY}.yaml:" in result.stderr and f"{field}: " in result.stderr
    assert words in result.stderr


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> tuple[Plan, Path]:
    out = tmp_path_factory.mktemp("batch") / "out"
    result = CliRunner().invoke(app, ["plan", "--solver", "greedy", "--period", "2027-02",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return load_plan(out / "plan.yaml"), out


def _documents(out: Path, model: str) -> list[dict]:
    path = out / "manifests" / "models" / f"{model}.yaml"
    return list(yaml.safe_load_all(path.read_text()))


def _without_batch(plan: Plan, name: str) -> Plan:
    models = [m.model_copy(update={"batch": None}) if m.name == name else m
              for m in plan.models]
    return plan.model_copy(update={"models": models})


def test_the_nightly_run_is_a_cronjob_placed_as_its_deployment_would_be(planned):
    plan, out = planned
    model = plan.model(NIGHTLY)
    [cronjob] = _documents(out, NIGHTLY)  # no PodDisruptionBudget, no autoscaler
    kubernetes_validate.validate(cronjob, plan.metadata.kubernetes_version, strict=True)
    assert cronjob["kind"] == "CronJob" and cronjob["apiVersion"] == "batch/v1"
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"]) == ("0 2 * * *", "Forbid")
    job = spec["jobTemplate"]["spec"]
    assert (job["completions"], job["parallelism"], job["completionMode"]) == \
        (model.replicas, model.replicas, "Indexed")
    pod = job["template"]["spec"]
    files = render_manifests(_without_batch(plan, NIGHTLY))
    [deployment] = [d for d in yaml.safe_load_all(files[f"manifests/models/{NIGHTLY}.yaml"])
                    if d["kind"] == "Deployment"]
    served = deployment["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"
    for field in ("priorityClassName", "nodeSelector", "tolerations", "affinity",
                  "topologySpreadConstraints", "resourceClaims"):
        assert pod.get(field) == served.get(field), field
    [worker], [server] = pod["containers"], served["containers"]
    assert worker["resources"] == server["resources"]
    assert worker["env"] == server["env"] and worker["image"] == server["image"]
    assert "readinessProbe" not in worker


def test_a_one_off_run_is_a_job(planned):
    plan, _ = planned
    model = plan.model(NIGHTLY)
    assert model.batch is not None
    once = model.model_copy(update={"batch": model.batch.model_copy(
        update={"schedule": None})})
    plan = plan.model_copy(update={"models": [once if m.name == NIGHTLY else m
                                              for m in plan.models]})
    [job] = yaml.safe_load_all(render_manifests(plan)[f"manifests/models/{NIGHTLY}.yaml"])
    kubernetes_validate.validate(job, plan.metadata.kubernetes_version, strict=True)
    assert job["kind"] == "Job"
    assert job["spec"]["parallelism"] == job["spec"]["completions"] == model.replicas
    assert hours_run(once, plan) == 3.0  # one run in the billing period


def test_the_run_pays_for_its_hours_and_idle_the_rest(planned):
    """February 2027 has 28 nightly runs of 3 hours: the model pays 84 of the month's 672
    hours; the other 588 hours of its share move to the pool's idle line; the total stays."""
    plan, _ = planned
    model = plan.model(NIGHTLY)
    assert model.batch is not None
    assert (model.batch.run_hours, model.batch.schedule) == (3.0, "0 2 * * *")
    assert plan.metadata.hours_per_month == 672 and hours_run(model, plan) == 84
    costs = ledger(plan)
    served = ledger(_without_batch(plan, NIGHTLY))
    rate = money.decimal(model.cost_per_hour)
    assert costs.by_model()[NIGHTLY] == money.rounded(rate * 84, "USD")
    moved = served.by_model()[NIGHTLY] - costs.by_model()[NIGHTLY]
    assert moved == money.rounded(rate * 588, "USD")
    idle = {line.pool: line.cost_per_month for line in costs.lines if line.idle}
    served_idle = {line.pool: line.cost_per_month for line in served.lines if line.idle}
    # one cent may move between lines where the apportioning's remainders fall differently
    assert abs(idle[model.pool] - served_idle[model.pool] - moved) <= Decimal("0.01")
    assert costs.total == served.total == plan.summary.cost_per_month


def test_cost_csv_and_summary_agree_with_the_ledger(planned):
    plan, _ = planned
    model = plan.model(NIGHTLY)
    rows = cost_rows(plan)
    row = next(r for r in rows if r["x_Model"] == NIGHTLY)
    assert row["EffectiveCost"] == ledger(plan).by_model()[NIGHTLY]
    assert row["ConsumedQuantity"] == money.decimal(model.gpu_fraction) * 84
    assert row["ChargeDescription"].endswith(", 84.00 hours of batch runs")
    assert sum(r["EffectiveCost"] for r in rows) == plan.summary.cost_per_month
    idle = next(r for r in rows if r["x_Model"] is None and r["x_Pool"] == model.pool)
    assert idle["x_IdleCost"] == idle["EffectiveCost"]
    text = render_summary(plan)
    amount = f"{ledger(plan).by_model()[NIGHTLY]:,.2f} USD"
    assert (f"- **Batch runs:** {NIGHTLY} as a CronJob (`0 2 * * *`), 3.00 h a run, "
            f"84.00 h a month: {amount}.") in text
    # A report for another period counts that month's runs: December 2026 has 31.
    december = priced_for(plan, "2026-12")
    assert hours_run(model, december) == 93


def test_simulate_schedules_the_runs_pods(planned, tmp_path):
    plan, out = planned
    pods = [p for p in pods_of(Manifests.read(out / "manifests")) if p.model == NIGHTLY]
    assert len(pods) == plan.model(NIGHTLY).replicas
    result = CliRunner().invoke(app, ["simulate", "--plan", str(out / "plan.yaml"),
                                      "--no-node-loss", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    # The run's pod without its pool's tolerations stays pending: exit 1.
    mutated = tmp_path / "mutated"
    shutil.copytree(out, mutated)
    path = mutated / "manifests" / "models" / f"{NIGHTLY}.yaml"
    [cronjob] = yaml.safe_load_all(path.read_text())
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"].pop("tolerations")
    path.write_text(yaml.safe_dump(cronjob, sort_keys=False))
    result = CliRunner().invoke(app, ["simulate", "--plan", str(mutated / "plan.yaml"),
                                      "--no-node-loss"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "the plan does not hold in the cluster: every pod runs"
