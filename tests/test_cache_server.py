"""A reserved lazy cache held by Triton servers with explicit model control (its members'
model repositories are folders in the server's image, which KServe ModelMesh cannot pull from;
the demo's, in object storage, go to ModelMesh: `test_modelmesh`): the servers' Deployment,
Service and ServiceMonitor, no pods for the members, the cold-start alert on Triton's load
metric, the servers scheduled where the plan packs them, and the cache's cost split over its
members."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli.app import app
from planner.planfile import LazyCachePlan, Plan, load_plan
from planner.registry.locate import write_demo
from planner.simulation.manifests import Manifests
from planner.simulation.replay import REPLICAS, RUNS, replay
from reports.manifests import render_manifests
from tests import crds
from tests.conftest import edit_yaml

MEMBERS = ["doc-layout-parser", "nsfw-detector", "sentiment-analyzer", "spell-corrector",
           "ticket-router"]


def in_image(registry: Path) -> Path:
    """`registry` with its cache members' model repositories as folders in the server's image
    (`/models/TEAM` for `s3://models.example.com/TEAM`)."""
    for name in MEMBERS:
        edit_yaml(registry / "models" / f"{name}.yaml", lambda d: d["serving"].update(
            model_repository=d["serving"]["model_repository"].replace(
                "s3://models.example.com/", "/models/")))
    return registry


@pytest.fixture(scope="module")
def greedy_demo_out(tmp_path_factory) -> Path:
    """The demo, its members' repositories in the image, planned by the greedy solver."""
    tmp = tmp_path_factory.mktemp("triton-cache")
    write_demo(tmp / "registry")
    out = tmp / "out"
    result = CliRunner().invoke(app, ["plan", "--registry", str(in_image(tmp / "registry")),
                                      "--solver", "greedy", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return out


def _cache(plan: Plan) -> LazyCachePlan:
    [cache] = [c for p in plan.pools for c in p.caches]
    return cache


def _documents(path: Path) -> list[dict]:
    return list(yaml.safe_load_all(path.read_text()))


def test_the_cache_runs_as_triton_with_explicit_model_control(greedy_demo_out: Path):
    plan = load_plan(greedy_demo_out / "plan.yaml")
    cache = _cache(plan)
    deployment, service = _documents(greedy_demo_out / "manifests" / "caches"
                                      / "shared-l4-lazy-cache.yaml")
    assert (deployment["kind"], deployment["metadata"]["namespace"],
            deployment["spec"]["replicas"]) == ("Deployment", "shared-l4", cache.servers)
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["command"] == ["tritonserver"]
    assert container["args"] == [
        "--model-control-mode=explicit",
        "--model-repository=/models/ml-research",
        "--model-repository=/models/search",
        "--model-repository=/models/support",
        "--model-repository=/models/trust-safety",
        "--http-port=8000", "--grpc-port=8001", "--metrics-port=8002",
        "--metrics-config=summary_latencies=true"]
    assert container["image"] == "nvcr.io/nvidia/tritonserver:25.10-py3"
    assert container["resources"]["requests"]["nvidia.com/gpu.shared"] == "1"
    # host memory for the members held at once (4 x 4096 MiB), CPU of the largest
    assert container["resources"]["requests"]["memory"] == "16384Mi"
    assert container["resources"]["requests"]["cpu"] == "2000m"
    assert pod["priorityClassName"] == "internal"
    assert pod["nodeSelector"] == {"planner.example.com/pool": "shared-l4"}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["planner.example.com/cache-slots"] == str(cache.slots) == "4"
    assert annotations["planner.example.com/cache-memory-mib"] == str(cache.memory_mib)
    assert annotations["planner.example.com/cache-members"] == ",".join(MEMBERS)
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {
        "http": 8000, "grpc": 8001, "metrics": 8002}
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    # the members run no pods of their own: no workload, no PodMonitor; their rules remain
    for name in MEMBERS:
        assert not (greedy_demo_out / "manifests" / "models" / f"{name}.yaml").exists()
        [rule] = _documents(greedy_demo_out / "manifests" / "monitoring" / f"{name}.yaml")
        assert rule["kind"] == "PrometheusRule"
    # the cache's namespace exists
    namespaces = [d["metadata"]["name"] for d in
                  _documents(greedy_demo_out / "manifests" / "cluster.yaml")
                  if d["kind"] == "Namespace"]
    assert "shared-l4" in namespaces


def test_a_service_monitor_scrapes_the_servers_metrics_port(greedy_demo_out: Path):
    [monitor] = _documents(greedy_demo_out / "manifests" / "monitoring"
                           / "shared-l4-lazy-cache.yaml")
    assert crds.errors(monitor) == []
    _, service = _documents(greedy_demo_out / "manifests" / "caches"
                            / "shared-l4-lazy-cache.yaml")
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["port"] == "metrics"
    # Triton labels each series with its model: the monitor sets no `model` of its own
    assert {r["targetLabel"] for r in endpoint["relabelings"]} == {"pool", "cache"}
    assert crds.errors({**monitor, "spec": {**monitor["spec"], "endpoint": []}}) != []


def test_a_members_cold_start_alert_reads_tritons_load_metric(greedy_demo_out: Path,
                                                             tmp_path: Path):
    [rule] = _documents(greedy_demo_out / "manifests" / "monitoring" / "ticket-router.yaml")
    [alert] = [r for r in rule["spec"]["groups"][0]["rules"]
               if r["alert"] == "ModelColdStartsTooFrequent"]
    assert alert["expr"] == ('sum(changes(nv_model_load_duration_secs{model="ticket-router"}'
                             '[1h])) > 6')
    assert alert["labels"]["model"] == "ticket-router"
    # a lazy model with pods of its own still counts its pods' starts
    [churn] = _documents(greedy_demo_out / "manifests" / "monitoring"
                         / "user-churn-scorer.yaml")[1:]
    [own] = [r for r in churn["spec"]["groups"][0]["rules"]
             if r["alert"] == "ModelColdStartsTooFrequent"]
    assert own["expr"].startswith("count(max_over_time(kube_pod_created{")
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_servers_are_scheduled_where_the_plan_packs_them(greedy_demo_out: Path):
    plan = load_plan(greedy_demo_out / "plan.yaml")
    cache = _cache(plan)
    planned = [(n.name, g.index) for p in plan.pools for n in p.nodes for g in n.gpus
               for c in g.caches]
    simulation = replay(plan, Manifests.read(greedy_demo_out / "manifests"))
    servers = [x for x in simulation.landings if x.model == cache.workload]
    assert [(x.node, x.planned_node) for x in servers] == [(node, node) for node, _ in planned]
    assert len(servers) == cache.servers == 1
    assert not [x for x in simulation.landings if x.model in MEMBERS]
    assert simulation.runs


def _mutated(out: Path, tmp: Path, change) -> Path:
    copy = tmp / "mutated"
    shutil.copytree(out, copy)
    path = copy / "manifests" / "caches" / "shared-l4-lazy-cache.yaml"
    documents = _documents(path)
    change(documents)
    path.write_text(yaml.safe_dump_all(documents))
    return copy


def test_a_missing_server_or_an_extra_one_fails_the_replay(cli, greedy_demo_out: Path,
                                                           tmp_path: Path):
    def more(documents):
        documents[0]["spec"]["replicas"] = 2

    out = _mutated(greedy_demo_out, tmp_path / "more", more)
    result = cli("simulate", "--plan", out / "plan.yaml", "--no-node-loss")
    assert result.exit_code == 1
    plan = load_plan(out / "plan.yaml")
    simulation = replay(plan, Manifests.read(out / "manifests"))
    [check] = [r for r in simulation.rules if r.rule == REPLICAS]
    assert check.problems == ("shared-l4/lazy-cache: 2 servers in the manifests, 1 planned",)

    (tmp_path / "gone").mkdir()
    gone = _mutated(greedy_demo_out, tmp_path / "gone", lambda d: d.clear())
    simulation = replay(plan, Manifests.read(gone / "manifests"))
    [check] = [r for r in simulation.rules if r.rule == RUNS]
    assert check.problems == ("shared-l4/lazy-cache: no server workload in the manifests",)


def test_the_cache_cost_is_split_over_its_members(greedy_demo_out: Path):
    plan = load_plan(greedy_demo_out / "plan.yaml")
    cache = _cache(plan)
    rows = {r["x_Model"]: r for r in csv.DictReader(io.StringIO(
        (greedy_demo_out / "cost.csv").read_text())) if r["x_Model"]}
    members = [plan.model(name) for name in MEMBERS]
    # each member pays the cache's cost in proportion to its cost loaded warm
    warm = {m.name: float(r.split(" against ")[1].split(" ")[0])
            for m in members if m for r in m.reasons if r.startswith("lazy: loaded on demand")}
    assert sorted(warm) == MEMBERS
    for m in members:
        assert m is not None
        assert m.cost_per_hour == pytest.approx(
            cache.cost_per_hour * warm[m.name] / sum(warm.values()), abs=2e-4)
        row = rows[m.name]
        assert row["x_Replicas"] == "0"
        assert row["ChargeDescription"].startswith(
            f"{m.name}: share of lazy cache shared-l4/lazy-cache by its warm cost")
        assert '"planner.example.com/cache": "shared-l4/lazy-cache"' in row["Tags"]
    hours = Decimal(str(plan.metadata.hours_per_month))
    paid = sum(Decimal(rows[name]["EffectiveCost"]) for name in MEMBERS)
    assert abs(paid - Decimal(str(cache.cost_per_hour)) * hours) <= Decimal("0.05")


def test_the_members_show_the_server_that_serves_them(cli, greedy_demo_out: Path):
    """The members run no pods of their own: summary.md's Models table, the team table,
    plan.html and `planner report --group-by model` say 0 and name the server; by pool the
    server's pods count instead."""
    plan = load_plan(greedy_demo_out / "plan.yaml")
    cache = _cache(plan)
    summary = (greedy_demo_out / "summary.md").read_text()
    served = f"served by {cache.workload} ({cache.servers} server pod)"
    for name in MEMBERS:
        model = plan.model(name)
        assert model is not None and model.own_pods == 0 and model.replicas == 1
        assert f"| {name} | {model.team} | shared-l4 | 0 | {served} | " \
               f"{model.memory_mib:,} MiB when loaded | - |" in summary
    teams = summary.split("## Cost by team")[1].split("## Pools")[0]
    pods = sum(int(row.split(" | ")[2]) for row in teams.splitlines()
               if row.startswith("| ") and not row.startswith(("| team", "| (idle")))
    assert pods + cache.servers == plan.summary.replicas
    page = (greedy_demo_out / "plan.html").read_text()
    server = next(f"{n.name}/{g.index}" for p in plan.pools for n in p.nodes for g in n.gpus
                  if g.caches)
    for name in MEMBERS:
        model = plan.model(name)
        assert model is not None
        row = page.split(f'<tr id="model-{name}">')[1].split("</tr>")[0]
        assert f'<td class="n">0</td><td class="n">{model.memory_mib:,} MiB when loaded</td>' \
            f"<td>{served}</td>" in row
        assert f'<td class="where">server #0: {server}</td>' in row

    table = cli("report", "--plan", greedy_demo_out / "plan.yaml", "--group-by", "model")
    assert table.exit_code == 0
    lines = {line.split()[1]: line for line in table.stdout.splitlines()
             if line.startswith("│ ")}
    for name in MEMBERS:
        assert f"│ 0, {served} │" in lines[name]
    assert lines["ab-test-ranker"].endswith(" 1 │")
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(cli(
        "report", "--plan", greedy_demo_out / "plan.yaml", "--group-by", "model",
        "--format", "csv").stdout))}
    assert all(rows[name]["replicas"] == "0" for name in MEMBERS)
    pools = {r["pool"]: r for r in csv.DictReader(io.StringIO(cli(
        "report", "--plan", greedy_demo_out / "plan.yaml", "--group-by", "pool",
        "--format", "csv").stdout))}
    shared = next(p for p in plan.pools if p.name == "shared-l4")
    assert int(pools["shared-l4"]["replicas"]) == len(
        {r for n in shared.nodes for r in n.replicas()}) + cache.servers


def test_kserve_target_runs_the_same_servers(greedy_demo_out: Path):
    plan = load_plan(greedy_demo_out / "plan.yaml")
    files = render_manifests(plan, target="kserve")
    assert "manifests/caches/shared-l4-lazy-cache.yaml" in files
    assert not [name for name in MEMBERS if f"manifests/models/{name}.yaml" in files]


def test_reserved_without_a_server_is_planned_capacity_only(cli, registry: Path,
                                                          tmp_path: Path):
    edit_yaml(registry / "models" / "ticket-router.yaml",
              lambda d: d["serving"].pop("model_repository"))
    edit_yaml(registry / "policy.yaml", lambda d: d.update(lazy_cache={"reserve": True}))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--solver",
                 "greedy")
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "out"
    plan = load_plan(out / "plan.yaml")
    cache = _cache(plan)
    assert (cache.reserved, cache.placed, cache.server) == (True, True, None)
    ticket = plan.model("ticket-router")
    assert ticket is not None and ticket.cache == cache.name
    assert any(r.startswith("lazy: planned into shared-l4/lazy-cache, which holds 4 of its 5 "
                            "models at once") and "as capacity only: no manifest here serves "
               "it (ticket-router names no serving.model_repository" in r
               for r in ticket.reasons)
    assert not (out / "manifests" / "caches").exists()
    assert not (out / "manifests" / "models" / "ticket-router.yaml").exists()
    summary = (out / "summary.md").read_text()
    assert ("**shared-l4/lazy-cache: planned capacity only.** The plan reserves the cache "
            "(policy.yaml `lazy_cache.reserve: true`) and its members have no pods here, but "
            "no manifest here serves it") in summary
    assert ("| planned capacity only: ticket-router names no serving.model_repository for a "
            "Triton server to load from |") in summary
    # the members: no pods, and no server here, in the Models tables
    assert f"| ticket-router | support | shared-l4 | 0 | in cache {cache.name}, planned " \
           "capacity only |" in summary
    row = (out / "plan.html").read_text().split('<tr id="model-ticket-router">')[1]
    assert "<td>in cache shared-l4/lazy-cache, planned capacity only</td>" in row
    assert '<td class="where">reserved #0: ' in row.split("</tr>")[0]


def test_a_reserved_cache_is_one_item_of_its_members_compute(tmp_path: Path):
    """By hand, with the shared pool's 1-GPU g6.4xlarge shape (`test_shapes`): 14 replicas
    need over 400 of a GPU's 800 usable milli, so none share; the room beside them is at most
    371 milli (toxicity-classifier's 429), on two GPUs. The members alone fit in the gaps;
    reserved, their cache is one server of 368 milli, and with intent-classifier's two 321s
    that is three items for the two gaps: a 15th GPU. Three g6.12xlarge (13.8048 USD/h) and
    three g6.4xlarge (3 x 1.3232) make 17.7744 USD/h, against 16.4512 with the members in
    replicas of their own."""
    from planner.pipeline import SolverSettings, make_plan
    from planner.registry.loader import load_registry as load_fleet
    from tests.test_consumers import with_small_l4_nodes

    root = with_small_l4_nodes(tmp_path / "registry")
    plan = make_plan(load_fleet(root), SolverSettings(seed=0, workers=1))
    assert plan.solver.status == "optimal"
    shared = next(p for p in plan.pools if p.name == "shared-l4")
    cache = _cache(plan)
    assert (cache.reserved, cache.compute_milli) == (True, 368)
    assert shared.cost_per_hour == pytest.approx(17.7744)
    assert {(s.instance_type, s.nodes) for s in shared.shapes} == {("g6.12xlarge", 3),
                                                                   ("g6.4xlarge", 3)}
    assert shared.gpu_count == 15


def test_no_server_where_its_name_is_a_models(cli, registry: Path, tmp_path: Path):
    source = registry / "models" / "autocomplete.yaml"
    named = registry / "models" / "shared-l4-lazy-cache.yaml"
    named.write_text(source.read_text().replace("name: autocomplete",
                                                "name: shared-l4-lazy-cache"))
    edit_yaml(named, lambda d: d.update(resources={"memory_mib": 500, "throughput_rps": 400}))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--solver",
                 "greedy")
    assert result.exit_code == 0, result.stderr
    cache = _cache(load_plan(tmp_path / "out" / "plan.yaml"))
    assert (cache.reserved, cache.server) == (False, None)
    assert cache.unserved == ("its servers' name 'shared-l4-lazy-cache' is a model name, "
                              "which a Service cannot take")


def test_a_service_name_starts_with_a_letter():
    from planner import k8s_names

    assert k8s_names.dns1035_label_problem("shared-l4-lazy-cache") is None
    assert k8s_names.dns1035_label_problem("4x-l4-lazy-cache") == (
        "not a DNS-1035 label: it must start with a letter")
    assert k8s_names.dns1035_label_problem("a" * 64) == "longer than 63 characters (64)"


def test_the_manifests_hold_a_cache_only_reserved_placed_and_with_a_server(
        greedy_demo_out: Path):
    """`held_by` is the one filter every report and the simulation use for a cache whose
    server pods the manifests run."""
    plan = load_plan(greedy_demo_out / "plan.yaml")
    cache = _cache(plan)
    member = plan.model(MEMBERS[0])
    assert member is not None
    assert cache.held_by == "triton"
    assert plan.held_caches() == plan.held_caches("triton") == [cache]
    assert plan.held_caches("modelmesh") == []
    assert plan.served_by(member) == cache
    for change in ({"reserved": False}, {"placed": False}, {"server": None}):
        other = cache.model_copy(update=change)
        assert other.held_by is None
        pools = [p.model_copy(update={"caches": [other] if p.caches else []})
                 for p in plan.pools]
        changed = plan.model_copy(update={"pools": pools})
        assert changed.held_caches() == [] and changed.served_by(member) is None


def test_a_member_shares_its_servers_gpus_and_says_so(greedy_demo_out: Path):
    """A member runs inside its cache's server, so its GPU neighbours are the server's: the
    models (and caches) with pods on the server's GPUs. The other members are loaded into the
    same server, not beside it: the plan does not list them as neighbours, and summary.md
    says they share the server."""
    plan = load_plan(greedy_demo_out / "plan.yaml")
    cache = _cache(plan)
    gpus = [g for p in plan.pools for n in p.nodes for g in n.gpus
            if any(s.cache == cache.name for s in g.caches)]
    beside = sorted({r.model for g in gpus for r in g.replicas}
                    | {s.cache for g in gpus for s in g.caches} - {cache.name})
    summary = (greedy_demo_out / "summary.md").read_text()
    for name in MEMBERS:
        model = plan.model(name)
        assert model is not None and model.shares_with == beside
        row = next(r for r in summary.splitlines() if r.startswith(f"| {name} | "))
        assert row.endswith(f"| the other members of {cache.name}, in its server"
                            + (f"; beside it: {', '.join(beside)}" if beside else "") + " |")
    for model in plan.models:  # the server's neighbours name the cache
        if model.name in beside:
            assert cache.name in model.shares_with
