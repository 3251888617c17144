"""Every replica checked against every pool that admits it: at load time (exit 2 when no pool
could ever hold it), in demand derivation (a rejected pool, with its reason) and in the engine
(whole-GPU replicas against each of their GPUs); names unique across files."""

from __future__ import annotations

import shutil
from pathlib import Path

from planner.demand.derive import Demand, Rejection, derive
from planner.pipeline import SolverSettings, make_plan
from planner.registry.loader import load_registry
from solvers.engine import solve
from solvers.problem import Group, Option, Placement, Pool, Problem, Solution
from solvers.verify import violations
from tests.conftest import edit_yaml


def _line_of(path: Path, key: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1)
                if line.lstrip().startswith(f"{key}:"))


def test_whole_gpu_replica_larger_than_every_admitting_gpu_is_exit_2(cli, registry: Path):
    # 150,000 MiB stated for one GPU; an H100 of dedicated-h100 holds 73,403 MiB after 10%.
    model = registry / "models" / "code-assistant.yaml"
    edit_yaml(model, lambda d: d.pop("llm"))  # as a model of stated resources
    edit_yaml(model, lambda d: d.update(resources={"memory_mib": 150000,
                                                   "throughput_rps": 5}))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {model}:{_line_of(model, 'memory_mib')}: resources.memory_mib: one replica "
        "fits no pool that admits it: with the stated memory of 150000 MiB over 1 GPU(s), "
        "150000 MiB per GPU, a GPU of dedicated-h100 (h100-80gb) holds 73403 MiB after the "
        "10% headroom; raise gpus_per_replica, or admit the model to a pool with larger "
        "GPUs\n")
    assert cli("plan", "--registry", registry).exit_code == 2


def test_model_over_an_l4_after_headroom_is_exit_2(cli, registry: Path):
    # 22,000 MiB on a whole L4: 23,034 MiB less 10% leaves 20,730.
    model = registry / "models" / "image-moderation.yaml"
    edit_yaml(model, lambda d: d.update(resources={"memory_mib": 22000, "throughput_rps": 50}))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert "22000 MiB per GPU, a GPU of exclusive-l4 (l4) holds 20730 MiB after the 10% " \
           "headroom" in result.stderr


def test_profiled_memory_over_one_gpu_is_exit_2(cli, registry: Path):
    # image-moderation on one L4 with a profile whose least memory is 30,001 MiB; an L4 of
    # exclusive-l4 holds 20,730 MiB after 10%.
    model = registry / "models" / "image-moderation.yaml"
    edit_yaml(registry / "profiles" / "image-moderation" / "l4.yaml",
              lambda d: [p.update(peak_memory_mib=30000 + p["concurrency"])
                         for p in d["points"]])
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: {model}:{_line_of(model, 'gpus_per_replica')}: gpus_per_replica: one replica "
        "fits no pool that admits it: with the least memory any profile point measured over "
        "1 GPU(s), 30001 MiB per GPU")


def test_more_gpus_than_any_admitting_node_is_exit_2(cli, registry: Path):
    # The largest node anywhere has 8 GPUs, but image-moderation is admitted to 1-GPU nodes only.
    edit_yaml(registry / "models" / "image-moderation.yaml",
              lambda d: d.update(gpus_per_replica=2))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert "gpus_per_replica: 2 GPUs per replica, but the nodes of the pools that admit it " \
           "(exclusive-l4) have at most 1" in result.stderr


def test_pool_too_small_for_a_replica_is_rejected_with_reason(registry: Path):
    # doc-layout-parser may use shared-l4 or mig-a100; at 30,000 MiB only a 40 GB slice holds it.
    edit_yaml(registry / "models" / "doc-layout-parser.yaml",
              lambda d: d.update(resources={"memory_mib": 30000, "throughput_rps": 100}))
    fleet = load_registry(registry)
    demands, rejections = derive(fleet)
    [demand] = demands["doc-layout-parser"]
    assert isinstance(demand, Demand) and demand.pool == "mig-a100"
    assert demand.mig_slice == "3g.40gb"
    assert rejections["doc-layout-parser"] == [Rejection(
        "doc-layout-parser", "shared-l4", "one replica never fits: 30000 MiB per GPU, a GPU "
        "of shared-l4 (l4) holds 20730 MiB after the 10% headroom")]
    plan = make_plan(fleet, SolverSettings(time_limit_s=5))
    placed = next(m for m in plan.models if m.name == "doc-layout-parser")
    assert placed.pool == "mig-a100"
    assert "not shared-l4: one replica never fits: 30000 MiB per GPU, a GPU of shared-l4 (l4) " \
           "holds 20730 MiB after the 10% headroom" in placed.reasons
    assert "hand-stated resources (estimated), used instead of the reference profile on " \
           "a100-80gb" in placed.reasons


def test_operating_point_is_the_highest_concurrency_that_fits_memory(registry: Path):
    # On a GPU made so small that only the lower concurrency levels fit, the plan takes the
    # highest level that fits rather than one that would overflow the GPU.
    profile = load_registry(registry).profiles[("pii-detector", "l4")]
    limit_mib = 500  # between the points at c=8 (493 MiB) and c=16 (523 MiB)
    edit_yaml(registry / "cluster.yaml",
              lambda d: d["gpu_types"]["l4"].update(memory_mib=round(limit_mib / 0.9) + 1))
    fleet = load_registry(registry)
    [demand] = derive(fleet)[0]["pii-detector"]
    assert demand.concurrency == max(p.concurrency for p in profile.points
                                     if p.peak_memory_mib <= limit_mib) == 8
    assert demand.memory_mib == 493


def _whole_pool() -> Pool:
    return Pool("p", capacity=(100, 800, 1), gpus_per_node=2, node_cost=10, max_nodes=2)


def test_engine_checks_whole_gpu_demand_per_gpu():
    big = Group("big", (Option("p", (150, 100, 1), 1, whole_gpus=1),), optional=True)
    fits = Group("fits", (Option("p", (90, 100, 1), 1, whole_gpus=2),), optional=True)
    problem = Problem(("memory_mib", "compute_milli", "replicas"), (_whole_pool(),),
                      (big, fits))
    solution = solve(problem, time_limit_s=2)
    assert solution.unplaced == {"big": "p: one replica (memory_mib 150, compute_milli 100, "
                                        "replicas 1) is larger than a GPU or slice"}
    assert {p.group for p in solution.placements} == {"fits"}
    forged = Solution("greedy", 10, 0, (Placement("big", 0, "p", 0, (0,)),),
                      {"fits": "left out"})
    assert violations(problem, forged) == [
        "p node 0 GPU 0: whole-GPU demand [150, 100, 1] exceeds capacity [100, 800, 1]"]


def test_duplicate_model_name_in_another_file_is_exit_2(cli, registry: Path):
    # Copying a model file as a template keeps its name: both files are named in the error.
    models = registry / "models"
    shutil.copy(models / "spam-filter.yaml", models / "a-copy.yaml")
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {models / 'a-copy.yaml'}:1: name: model 'spam-filter' is defined in both "
        "models/a-copy.yaml and models/spam-filter.yaml; model names must be unique, so rename "
        "one (its file name too) or delete it\n")


def test_two_profile_files_for_one_gpu_type_is_exit_2(cli, registry: Path):
    folder = registry / "profiles" / "spam-filter"
    shutil.copy(folder / "l4.yaml", folder / "l4.yml")
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {folder / 'l4.yml'}: a second profile of 'spam-filter' "
                             "on 'l4': profiles/spam-filter/l4.yaml is one too; keep one\n")


def test_stated_resources_next_to_a_measured_profile_is_exit_2(cli, registry: Path):
    edit_yaml(registry / "profiles" / "spam-filter" / "l4.yaml",
              lambda d: d.update(method="measured", environment={"backend": "cuda"}))
    model = registry / "models" / "spam-filter.yaml"
    edit_yaml(model, lambda d: d.update(resources={"memory_mib": 900, "throughput_rps": 800}))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {model}:{_line_of(model, 'resources')}: resources: states resources, but "
        "profiles/spam-filter/l4.yaml measured the model; remove `resources` to plan from the "
        "measurement, or remove the profile\n")


def test_explanation_names_only_rules_linked_to_the_unplaced_group(monkeypatch):
    # Pool a is one node short for `wide`; pool b, which `wide` may not use, is crowded and
    # spread-limited. The explanation blames pool a's limit alone, within the call budget,
    # each call on one worker under a deterministic-time limit and no wall-clock limit.
    from solvers import explain as explain_module
    from solvers import sat

    made = []
    original = sat.new_deterministic_solver

    def counting(deterministic_time, seed=0):
        solver = original(deterministic_time, seed)
        made.append(solver.parameters)
        return solver

    monkeypatch.setattr(sat, "new_deterministic_solver", counting)
    dims = ("memory_mib", "compute_milli", "replicas")
    pools = (Pool("a", (100, 800, 1), 2, 10, 1), Pool("b", (100, 800, 4), 1, 10, 2))
    groups = (Group("wide", (Option("a", (50, 100, 1), 3, whole_gpus=1),), optional=True),
              *(Group(f"crowd{i}", (Option("b", (40, 300, 1), 2, max_per_node=1),),
                      optional=True) for i in range(3)))
    problem = Problem(dims, pools, groups)
    solution = solve(problem, time_limit_s=2)
    assert set(solution.unplaced) == {"wide", "crowd2"}
    mandatory = Problem(dims, pools, tuple(Group(g.name, g.options) for g in groups))
    reasons = explain_module.explain(mandatory, focus=["wide"])
    assert reasons == ["these cannot all hold: pool a may use at most 1 nodes; with wide placed"]
    assert 1 <= len(made) <= explain_module.MAX_CALLS
    assert all(p.num_workers == 1 and p.max_deterministic_time ==
               explain_module.DETERMINISTIC_TIME_PER_CALL and p.max_time_in_seconds == float("inf")
               for p in made)
    assert explain_module.explain(mandatory, focus=["wide"]) == reasons


def test_cpu_and_host_memory_pack_each_node(registry: Path):
    # shared-l4 reshaped to g6.xlarge nodes: 4 vCPU less the reserve leaves 3,670 millicores,
    # so at most one 2-vCPU pod per node, however many replicas its L4 could share.
    edit_yaml(registry / "cluster.yaml", lambda d: next(
        p for p in d["pools"] if p["name"] == "shared-l4").update(
            instance_type="g6.xlarge", gpus_per_node=1, price_per_node_hour=0.8048,
            max_nodes=40))
    fleet = load_registry(registry)
    plan = make_plan(fleet, SolverSettings(time_limit_s=5))
    instance = fleet.cluster.instance_types["g6.xlarge"]
    assert instance.cpu_milli - instance.reserved.cpu_milli == 3670
    pool = next(p for p in plan.pools if p.name == "shared-l4")
    serving = {m.name: m.serving for m in plan.models}
    for node in pool.nodes:
        pods = {(r.model, r.replica) for g in node.gpus for r in g.replicas}
        assert sum(serving[m].cpu_milli for m, _ in pods) <= 3670
        assert sum(serving[m].host_memory_mib for m, _ in pods) <= 16384 - 3306
    assert max(len(n.gpus[0].replicas) for n in pool.nodes) == 1
    assert len(pool.nodes) == sum(m.replicas for m in plan.models if m.pool == "shared-l4")


def test_pod_larger_than_every_admitting_node_is_exit_2(cli, registry: Path):
    model = registry / "models" / "image-moderation.yaml"
    edit_yaml(model, lambda d: d["serving"].update(cpu_milli=5000))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {model}:{_line_of(model, 'cpu_milli')}: serving.cpu_milli: the pod fits no node "
        "of the pools that admit it: 5000 CPU millicores, a g6.xlarge node of exclusive-l4 "
        "allows 3670; lower serving.cpu_milli or serving.host_memory_mib, or admit the model "
        "to a pool with larger nodes\n")


def test_pool_on_an_undescribed_instance_type_is_exit_2(cli, registry: Path):
    cluster = registry / "cluster.yaml"
    edit_yaml(cluster, lambda d: d["pools"][0].update(instance_type="g6.12xlarg"))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert "pools[0].instance_type: instance type 'g6.12xlarg' is not described (did you " \
           "mean 'g6.12xlarge'?); add it under instance_types" in result.stderr


def test_engine_packs_node_dimensions():
    # Two GPUs per node, but a node's CPU holds one replica: each replica gets a node.
    pool = Pool("p", (100, 800, 4), gpus_per_node=2, node_cost=10, max_nodes=3,
                node_capacity=(4000, 16000))
    groups = tuple(Group(f"m{i}", (Option("p", (10, 10, 1), 1, node_size=(3000, 1000)),))
                   for i in range(3))
    problem = Problem(("memory_mib", "compute_milli", "replicas"), (pool,), groups,
                      node_dimensions=("cpu_milli", "host_memory_mib"))
    solution = solve(problem, time_limit_s=2)
    assert sorted(p.node for p in solution.placements) == [0, 1, 2]
    forged = Solution("greedy", 10, 0, tuple(Placement(f"m{i}", 0, "p", 0, (0,))
                                             for i in range(3)))
    assert violations(problem, forged) == [
        "p node 0: load [9000, 3000] exceeds node capacity [4000, 16000]"]
