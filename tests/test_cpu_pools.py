"""CPU-only models (`gpus_per_replica: 0`) in CPU pools (pools without a GPU): checked at load,
planned from a CPU profile or stated resources, packed by CPU and host memory per node, priced
by their pods' share of a node, and deployed with no GPU resources."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from planner.assembly.cost import baseline_cost_per_hour
from planner.demand.derive import Demand, derive
from planner.pipeline import SolverSettings, base_solution, make_plan
from planner.planfile import load_plan
from planner.registry.loader import load_registry
from tests.conftest import edit_yaml

ALLOCATABLE_CPU_MILLI = 8000 - 340  # m7i.2xlarge less its reserve
ALLOCATABLE_MEMORY_MIB = 32768 - 4535
POD_SHARE = max(2000 / ALLOCATABLE_CPU_MILLI, 3072 / ALLOCATABLE_MEMORY_MIB)  # CPU binds
PRICE = 0.4032


def _line_of(path: Path, key: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1)
                if line.lstrip().startswith(f"{key}:"))


def _model(root: Path) -> Path:
    return root / "models" / "query-tokenizer.yaml"


def test_cpu_only_model_is_planned_on_cpu_nodes_and_priced(cpu_registry: Path):
    # 700 rps at 400 a replica within 80%: 3 replicas; the spread rule puts one on each node.
    fleet = load_registry(cpu_registry)
    plan = make_plan(fleet, SolverSettings(time_limit_s=5))
    model = plan.model("query-tokenizer")
    assert model is not None
    assert (model.pool, model.replicas, model.gpus_per_replica, model.memory_mib,
            model.compute_milli, model.gpu_fraction) == ("cpu-general", 3, 0, 0, 0, 0.0)
    pool = next(p for p in plan.pools if p.name == "cpu-general")
    assert (pool.gpu_type, pool.gpus_per_node, pool.sharing) == (None, 0, "none")
    assert [len(n.pods) for n in pool.nodes] == [1, 1, 1]
    assert all(not n.gpus for n in pool.nodes)
    assert model.cost_per_hour == pytest.approx(3 * POD_SHARE * PRICE, abs=1e-6)
    assert pool.cost_per_hour == pytest.approx(3 * PRICE)
    assert pool.idle_cost_per_hour == pytest.approx(3 * PRICE - model.cost_per_hour, abs=1e-6)
    assert plan.summary.gpus == sum(len(n.gpus) for p in plan.pools for n in p.nodes)
    assert "CPU-only: 2000 CPU millicores and 3072 MiB per pod on m7i.2xlarge nodes" \
        in model.reasons
    assert "not shared-l4: runs without a GPU (gpus_per_replica: 0), and shared-l4 is a GPU " \
           "pool (l4); CPU-only models go to CPU pools (no gpu_type)" in model.reasons
    # The baseline buys a CPU model whole nodes as it does a GPU model: three pods of 2,000
    # millicores fit one node's 7,660, but the spread rule wants one a node.
    demands = derive(fleet)[0]["query-tokenizer"]
    assert baseline_cost_per_hour(fleet.cluster, [demands]) == pytest.approx(3 * PRICE)
    # A base plan's CPU pods are where the engine starts from, on their nodes.
    base = base_solution(plan, fleet)
    assert sorted((p.node, p.gpus) for p in base.placements if p.pool == "cpu-general") == \
        [(n.index, (0,)) for n in pool.nodes]


def test_cpu_nodes_hold_what_their_allocatable_allows(cpu_registry: Path):
    # 3,000 millicores a pod: two fit the 7,660 a node allows, never three.
    edit_yaml(_model(cpu_registry), lambda d: (d["serving"].update(cpu_milli=3000),
                                               d["replicas"].update(min=5)))
    edit_yaml(cpu_registry / "policy.yaml", lambda d: d["spread"].update(max_node_share=1.0))
    plan = make_plan(load_registry(cpu_registry), SolverSettings(time_limit_s=5))
    pool = next(p for p in plan.pools if p.name == "cpu-general")
    assert sorted(len(n.pods) for n in pool.nodes) == [1, 2, 2]


def test_cpu_pod_has_no_gpu_in_its_manifests(cli, cpu_registry: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = cli("plan", "--registry", cpu_registry, "--solver", "greedy", "--out", out)
    assert result.exit_code == 0, result.stderr
    [deployment] = [d for d in yaml.safe_load_all(
        (out / "manifests" / "models" / "query-tokenizer.yaml").read_text())
        if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "2000m", "memory": "3072Mi"}, "limits": {"memory": "3072Mi"}}
    assert pod["tolerations"] == []
    assert pod["nodeSelector"] == {"planner.example.com/pool": "cpu-general"}
    [node_pool] = yaml.safe_load_all((out / "manifests" / "pools" / "cpu-general.yaml")
                                     .read_text())
    assert node_pool["spec"]["limits"] == {"nodes": "4"}
    assert node_pool["spec"]["template"]["metadata"]["labels"] == \
        {"planner.example.com/pool": "cpu-general"}
    assert node_pool["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "general"
    summary = (out / "summary.md").read_text()
    assert "| query-tokenizer | text-platform | cpu-general | 3 | none (CPU, 2000m) |" in summary
    assert "| cpu-general | cpu | none | 3 | 0/0 |" in summary
    cost = (out / "cost.csv").read_text()
    assert '"query-tokenizer: 3 replicas, 0.783 node of m7i.2xlarge in cpu-general"' in cost
    assert "Node-Hours" in cost
    html = (out / "plan.html").read_text()
    assert 'aria-label="node cpu-general-0"' in html
    assert "CPU nodes (m7i.2xlarge, no GPU)" in html
    assert load_plan(out / "plan.yaml").model("query-tokenizer") is not None
    # Replayed with the scheduler's filters, each CPU pod lands on its planned node.
    replay = cli("simulate", "--plan", out / "plan.yaml", "--no-node-loss")
    assert replay.exit_code == 0, replay.stdout
    assert "not in the plan" not in replay.stdout
    assert sum("query-tokenizer-" in line and "as planned" in line
               for line in replay.stdout.splitlines()) == 3


def test_cpu_profile_gives_the_operating_point(cli, cpu_registry: Path):
    # Measured on CPU: 14 ms at 4 requests in flight meets the 40 ms SLO, 45 ms at 16 does not.
    folder = cpu_registry / "profiles" / "query-tokenizer"
    folder.mkdir()
    points = [(1, 120, 9, 1200), (4, 380, 14, 1300), (16, 620, 45, 1600)]
    (folder / "cpu.yaml").write_text(yaml.safe_dump({
        "model": "query-tokenizer", "gpu_type": "cpu", "method": "measured",
        "environment": {"backend": "cpu"},
        "memory": {"kind": "host", "weights_mib": 500},
        "points": [{"concurrency": c, "throughput_rps": x, "p50_ms": p / 2, "p95_ms": p,
                    "p99_ms": p, "peak_memory_mib": m} for c, x, p, m in points]}))
    edit_yaml(_model(cpu_registry), lambda d: d.pop("resources"))
    [demand] = derive(load_registry(cpu_registry))[0]["query-tokenizer"]
    assert isinstance(demand, Demand)
    assert (demand.concurrency, demand.p99_ms, demand.replicas, demand.method) == \
        (4, 14, 3, "measured")  # ceil(700 / (380 x 0.8)) replicas
    # An SLO below the fastest CPU point can never be met: exit 2 at the SLO.
    model = _model(cpu_registry)
    edit_yaml(model, lambda d: d["slo"].update(p99_ms=5))
    result = cli("validate", "--registry", cpu_registry)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {model}:{_line_of(model, 'p99_ms')}: slo.p99_ms: no pool that admits the "
        "model can meet the SLO of 5 ms: the lowest p99 of a stable point within "
        "max_concurrency whose memory fits is 9 ms at concurrency 1 on cpu (cpu-general); "
        "raise slo.p99_ms, or admit the model to a pool with faster nodes\n")


def test_cpu_only_model_admitted_only_to_gpu_pools_is_exit_2(cli, cpu_registry: Path):
    edit_yaml(cpu_registry / "policy.yaml", lambda d: d["admission"].pop())
    edit_yaml(cpu_registry / "cluster.yaml", lambda d: d["pools"].pop())
    model = _model(cpu_registry)
    result = cli("validate", "--registry", cpu_registry)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {model}:{_line_of(model, 'gpus_per_replica')}: gpus_per_replica: runs "
        "without a GPU (gpus_per_replica: 0), but the pools that admit it (shared-l4) are GPU "
        "pools; admit it to a CPU pool (a pool without gpu_type) in policy.yaml, or give it "
        "GPUs\n")


def test_gpu_model_admitted_only_to_a_cpu_pool_is_exit_2(cli, cpu_registry: Path):
    # A batch model is admitted to no shared GPU pool; only the CPU pool takes its team.
    model = _model(cpu_registry)
    edit_yaml(model, lambda d: d.update(gpus_per_replica=1, serving_profile="batch"))
    result = cli("validate", "--registry", cpu_registry)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {model}:{_line_of(model, 'gpus_per_replica')}: gpus_per_replica: needs 1 "
        "GPU(s) per replica, but the pools that admit it (cpu-general) are CPU pools (no "
        "gpu_type); admit it to a GPU pool in policy.yaml, or set gpus_per_replica: 0 to run "
        "it on CPU\n")


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda d: d["resources"].update(memory_mib=4000), "host_memory_mib",
     "serving.host_memory_mib: a replica needs 4000 MiB of host memory, more than the pod's "
     "serving.host_memory_mib of 3072 (stated in resources.memory_mib); raise "
     "serving.host_memory_mib"),
    (lambda d: d["serving"].update(cpu_milli=8000), "cpu_milli",
     "serving.cpu_milli: the pod fits no node of the pools that admit it: 8000 CPU "
     "millicores, a m7i.2xlarge node of cpu-general allows 7660; lower serving.cpu_milli or "
     "serving.host_memory_mib, or admit the model to a pool with larger nodes"),
    (lambda d: d.pop("resources"), "name",
     "name: no CPU profile (profiles/query-tokenizer/cpu.yaml) and no `resources`; measure "
     "it with `planner profile run query-tokenizer --registry {root} --device cpu`, or "
     "state resources: {{memory_mib, throughput_rps}}"),
])
def test_cpu_replica_that_can_never_run_is_exit_2(cli, cpu_registry: Path, change, field,
                                                  message):
    model = _model(cpu_registry)
    edit_yaml(model, change)
    result = cli("validate", "--registry", cpu_registry)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {model}:{_line_of(model, field)}: "
                             f"{message.format(root=cpu_registry)}\n")


def test_a_cpu_pool_takes_no_gpu_settings(cli, cpu_registry: Path):
    cluster = cpu_registry / "cluster.yaml"
    edit_yaml(cluster, lambda d: d["pools"][-1].update(sharing="time-slicing"))
    result = cli("validate", "--registry", cpu_registry)
    assert result.exit_code == 2
    assert "pools[5]: a pool without gpu_type is a CPU pool: remove `sharing` and " \
           "`gpus_per_node`, or name its gpu_type" in result.stderr
