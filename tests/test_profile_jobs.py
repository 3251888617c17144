"""Profiling Jobs on the pools the plan places models on: one sharing mode per test, each
Job validated strictly against the Kubernetes API (kubernetes-validate) and checked against
the pool's nodes as Karpenter and the GPU Operator would make them (`tests/consumers.py`,
as the workloads' manifests are)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.errors import InputError
from planner.planfile import Plan, load_plan
from planner.profiling import gpu_type_for
from planner.registry.loader import load_registry
from planner.registry.locate import write_demo
from profiles.text import with_markers
from tests import consumers
from tests.conftest import edit_yaml

KUBERNETES = "1.33"
DEMO_POOLS = {"shared-l4": "time-slicing", "exclusive-l4": "exclusive", "mig-a100": "mig",
              "dedicated-h100": "exclusive", "batch-t4": "time-slicing"}


def _planned(out: Path) -> tuple[Plan, consumers.Manifests]:
    files = {str(p.relative_to(out)): p.read_text() for p in (out / "manifests").rglob("*.yaml")}
    return load_plan(out / "plan.yaml"), consumers.Manifests.of(files)


def _four_gpu_decoder(data: dict) -> None:
    """llm-chat-70b as a model of four whole GPUs per replica with a torch source (the demo's
    LLMs have their TP degree chosen by the planner, and no source to measure)."""
    del data["llm"]
    data.update(gpus_per_replica=4, resources={"memory_mib": 40000, "throughput_rps": 1},
                source={"factory": "planner.demo.models:decoder_lm",
                        "kwargs": {"vocab": 128256, "hidden": 8192, "layers": 80, "heads": 64,
                                   "ffn": 28672, "seq": 1024},
                        "dtype": "bfloat16",
                        "input": {"shape": [1024], "dtype": "int64", "high": 128256}})


@pytest.fixture
def demo(registry: Path, greedy_demo_out: Path) -> tuple[Path, Plan, consumers.Manifests]:
    """A copy of the demo registry (llm-chat-70b on four whole GPUs), and the demo's plan and
    manifests."""
    edit_yaml(registry / "models" / "llm-chat-70b.yaml", _four_gpu_decoder)
    return (registry, *_planned(greedy_demo_out))


@pytest.fixture(scope="module")
def with_mps(tmp_path_factory) -> tuple[Path, Plan, consumers.Manifests]:
    """The demo with its batch pool on MPS, planned (greedy)."""
    root = tmp_path_factory.mktemp("mps")
    write_demo(root / "registry")
    edit_yaml(root / "registry" / "cluster.yaml", lambda d: next(
        p for p in d["pools"] if p["name"] == "batch-t4").update(sharing="mps"))
    result = CliRunner().invoke(app, ["plan", "--registry", str(root / "registry"), "--solver",
                                      "greedy", "--out", str(root / "out")])
    assert result.exit_code == 0, result.stderr
    return (root / "registry", *_planned(root / "out"))


def _jobs(cli, registry: Path, *args: object) -> list[dict]:
    result = cli("profile", "jobs", *args, "--registry", registry)
    assert result.exit_code == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES, strict=True)
    assert [d["kind"] for d in documents[:4]] == ["Namespace", "ResourceQuota",
                                                  "ServiceAccount", "Role"]
    return [d for d in documents if d["kind"] == "Job"]


def _admitted(plan: Plan, manifests: consumers.Manifests, job: dict) -> list[str]:
    pool = job["metadata"]["labels"]["planner.example.com/pool"]
    return consumers.pool_pod_problems(plan, manifests, pool, job["spec"]["template"]["spec"],
                                       job["metadata"]["name"])


def _request(job: dict) -> dict[str, str]:
    requests = job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    return {k: v for k, v in requests.items() if k.startswith("nvidia.com/")}


def _command(job: dict) -> list[str]:
    return job["spec"]["template"]["spec"]["containers"][0]["command"]


def test_the_demo_has_each_of_its_pools_sharing_modes(demo):
    _, plan, _ = demo
    assert {p.name: p.sharing for p in plan.pools} == DEMO_POOLS


def _pool(plan: Plan, name: str):
    return next(p for p in plan.pools if p.name == name)


@pytest.mark.parametrize("pool,models", [("exclusive-l4", ["intent-classifier"]),
                                         ("dedicated-h100", ["intent-classifier",
                                                             "llm-chat-70b"])])
def test_exclusive_pools_get_whole_gpus_per_replica(cli, demo, pool, models):
    registry, plan, manifests = demo
    jobs = _jobs(cli, registry, *models, "--pool", pool)
    by_model = {j["metadata"]["labels"]["planner.example.com/model"]: j for j in jobs}
    assert list(by_model) == models
    assert _request(by_model["intent-classifier"]) == {"nvidia.com/gpu": "1"}
    if pool == "dedicated-h100":
        assert _request(by_model["llm-chat-70b"]) == {"nvidia.com/gpu": "4"}
    for job in jobs:
        assert _admitted(plan, manifests, job) == []
        assert "--allow-shared-device" not in _command(job)
        assert _command(job)[_command(job).index("--gpu-type") + 1] == _pool(plan,
                                                                               pool).gpu_type


def test_a_replica_larger_than_the_node_is_refused(cli, demo):
    registry, _, _ = demo
    result = cli("profile", "jobs", "llm-chat-70b", "--pool", "exclusive-l4", "--registry",
                 registry)
    assert result.exit_code == 2
    assert result.stderr == ("error: llm-chat-70b on pool exclusive-l4 (exclusive): a replica "
                             "needs 4 GPUs, a node has 1\n")


@pytest.mark.parametrize("pool", ["shared-l4", "batch-t4"])
def test_time_sliced_pools_only_with_the_flag_on_one_shared_replica(cli, demo, pool):
    registry, plan, manifests = demo
    result = cli("profile", "jobs", "intent-classifier", "--pool", pool, "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (f"error: intent-classifier on pool {pool} (time-slicing): its "
                             "GPUs are shared, so other pods' load would be in the measurement; "
                             "pass --allow-shared, or name an exclusive or MIG pool\n")
    [job] = _jobs(cli, registry, "intent-classifier", "--pool", pool, "--allow-shared")
    assert _request(job) == {"nvidia.com/gpu.shared": "1"}
    assert "--allow-shared-device" in _command(job)
    assert _admitted(plan, manifests, job) == []


def test_mps_pool_on_one_client(cli, with_mps):
    registry, plan, manifests = with_mps
    assert _pool(plan, "batch-t4").sharing == "mps" and _pool(plan, "batch-t4").nodes
    [job] = _jobs(cli, registry, "intent-classifier", "--pool", "batch-t4", "--allow-shared")
    assert _request(job) == {"nvidia.com/gpu.shared": "1"}
    assert _admitted(plan, manifests, job) == []


def test_mig_pool_one_job_per_slice_filed_under_the_slice(cli, demo):
    registry, plan, manifests = demo
    advertised = {r.removeprefix("nvidia.com/mig-")
                  for n in consumers.nodes(plan, manifests).values()
                  if n.labels.get(consumers.DEVICE_PLUGIN_LABEL) == "mig-a100"
                  for r in n.advertised if r.startswith("nvidia.com/mig-")}
    assert advertised  # the planned layouts cut some slices
    every = _jobs(cli, registry, "intent-classifier", "--pool", "mig-a100")
    assert [j["metadata"]["name"] for j in every] == [
        f"profile-intent-classifier-a100-80gb-{p}"
        for p in ("1g-10gb", "2g-20gb", "3g-40gb", "4g-40gb", "7g-80gb")]
    for job in every:
        profile = job["metadata"]["labels"]["planner.example.com/gpu-type"].removeprefix(
            "a100-80gb-")
        assert _request(job) == {f"nvidia.com/mig-{profile}": "1"}
        assert _command(job)[_command(job).index("--gpu-type") + 1] == f"a100-80gb-{profile}"
        problems = _admitted(plan, manifests, job)
        # a slice runs where the pool's nodes are cut into it; no planned layout, no node
        assert (problems == []) == (profile in advertised), problems
    chosen = sorted(advertised)
    jobs = _jobs(cli, registry, "intent-classifier", "--pool", "mig-a100",
                 *[a for p in chosen for a in ("--mig-profile", p)])
    assert [_admitted(plan, manifests, j) for j in jobs] == [[]] * len(chosen)


def test_mig_pool_refuses_unknown_slices_and_multi_gpu_replicas(cli, demo):
    registry, _, _ = demo
    result = cli("profile", "jobs", "intent-classifier", "llm-chat-70b", "--pool", "mig-a100",
                 "--mig-profile", "5g.50gb", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: intent-classifier on pool mig-a100 (mig): --mig-profile 5g.50gb: not in a MIG "
        "layout of a100-80gb; one of 1g.10gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb\n"
        "error: llm-chat-70b on pool mig-a100 (mig): a replica needs 4 whole GPUs; name an "
        "exclusive pool\n2 errors\n")


def test_one_job_per_gpu_type_whole_gpus_first(cli, demo):
    registry, _, _ = demo
    jobs = _jobs(cli, registry, "intent-classifier", "--pool", "shared-l4", "--pool",
                 "exclusive-l4", "--allow-shared")
    assert [(j["metadata"]["name"], _request(j)) for j in jobs] == [
        ("profile-intent-classifier-l4", {"nvidia.com/gpu": "1"})]
    by_type = _jobs(cli, registry, "intent-classifier", "--gpu-type", "l4")
    assert [j["metadata"]["labels"]["planner.example.com/pool"] for j in by_type] == [
        "exclusive-l4"]


def test_namespace_quota_and_host_pid_only_when_asked(cli, demo):
    registry, _, _ = demo
    result = cli("profile", "jobs", "intent-classifier", "spam-filter", "--pool", "exclusive-l4",
                 "--parallelism", "3", "--registry", registry)
    documents = list(yaml.safe_load_all(result.stdout))
    namespace, quota, account, role, *jobs = documents
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert quota["spec"]["hard"] == {"pods": "3"}
    assert account["automountServiceAccountToken"] is False
    assert {"pods/log"} <= {r for rule in role["rules"] for r in rule["resources"]}
    assert len(jobs) == 2 and all(
        "hostPID" not in j["spec"]["template"]["spec"]
        and j["metadata"]["namespace"] == namespace["metadata"]["name"] == "planner-profiling"
        for j in jobs)

    result = cli("profile", "jobs", "intent-classifier", "--pool", "exclusive-l4", "--host-pid",
                 "--namespace", "profiling", "--registry", registry)
    namespace, *_, job = yaml.safe_load_all(result.stdout)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert job["spec"]["template"]["spec"]["hostPID"] is True
    assert job["metadata"]["namespace"] == "profiling"


def test_jobs_need_pools_or_a_gpu_type(cli, demo):
    registry, _, _ = demo
    result = cli("profile", "jobs", "intent-classifier", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == ("error: name the pools to profile on with --pool POOL, or a GPU "
                             "type with --gpu-type TYPE (one of the two)\n")
    result = cli("profile", "jobs", "intent-classifier", "--pool", "shared-l5", "--registry",
                 registry)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --pool shared-l5: not a pool of cluster.yaml (did "
                                    "you mean 'shared-l4'?)")


@pytest.mark.parametrize("device,gpu_type", [
    ("NVIDIA A100-SXM4-80GB MIG 1g.10gb", "a100-80gb-1g.10gb"),
    ("NVIDIA A100-SXM4-80GB MIG 3g.40gb", "a100-80gb-3g.40gb"),
    ("NVIDIA A100-SXM4-80GB", "a100-80gb"),
    ("NVIDIA L4", "l4"),
])
def test_a_mig_measurement_is_filed_under_its_slice(registry, device, gpu_type):
    fleet = load_registry(registry)
    assert gpu_type_for(fleet, device, None) == gpu_type
    assert gpu_type_for(fleet, "whatever", gpu_type) == gpu_type


def test_a_slice_the_gpu_type_does_not_have_is_refused(registry):
    fleet = load_registry(registry)
    with pytest.raises(InputError) as error:
        gpu_type_for(fleet, "NVIDIA A100-SXM4-80GB MIG 1g.5gb", None)
    assert str(error.value) == (
        "the device 'NVIDIA A100-SXM4-80GB MIG 1g.5gb' is a MIG slice 1g.5gb, not a MIG "
        "profile of GPU type a100-80gb in cluster.yaml; add it under a100-80gb.mig_profiles or "
        "pass --gpu-type")


def test_a_slice_profile_imports_under_the_slice(cli, registry, tmp_path):
    reference = load_registry(registry).profiles[("spam-filter", "l4")]
    measured = reference.model_copy(update={"method": "measured", "basis": "",
                                            "gpu_type": "a100-80gb-1g.10gb"})
    log = tmp_path / "job.log"
    log.write_text(with_markers(measured))
    result = cli("profile", "import", log, "--registry", registry)
    assert result.exit_code == 0, result.stderr
    assert load_registry(registry).profiles[("spam-filter", "a100-80gb-1g.10gb")].method == \
        "measured"


# --- Jobs that measure the model through its own server -------------------------------------


def _server(job: dict) -> dict:
    (server,) = job["spec"]["template"]["spec"]["initContainers"]
    return server


def _profiler(job: dict) -> dict:
    (profiler,) = job["spec"]["template"]["spec"]["containers"]
    return profiler


def _server_gpus(job: dict) -> dict[str, str]:
    return {k: v for k, v in _server(job)["resources"]["requests"].items()
            if k.startswith("nvidia.com/")}


def _check_endpoint_job(job: dict, registry: Path, model: str, pool: str) -> list[str]:
    """The serving image beside the profiler, which drives it over localhost and reads its
    memory; the GPUs are the server's alone. Returns the profiler's command."""
    spec = load_registry(registry).models[model]
    server, profiler = _server(job), _profiler(job)
    assert server["image"] == spec.serving.image and server["restartPolicy"] == "Always"
    assert server["ports"] == [{"containerPort": spec.serving.port, "name": "serving"}]
    assert server["env"] == [{"name": "PLANNER_PROFILE_JOB", "value": job["metadata"]["name"]}]
    assert server["startupProbe"]["httpGet"]["port"] == spec.serving.port
    assert not any(k.startswith("nvidia.com/") for k in profiler["resources"]["requests"])
    assert profiler["securityContext"] == {"privileged": True}
    command = profiler["command"]
    assert command[:4] == ["planner", "profile", "endpoint",
                           f"http://127.0.0.1:{spec.serving.port}"]
    assert command[command.index("--save") + 1] == model
    assert command[command.index("--device") + 1] == "server"
    assert command[command.index("--server-env") + 1] == \
        f"PLANNER_PROFILE_JOB={job['metadata']['name']}"
    assert job["metadata"]["labels"]["planner.example.com/pool"] == pool
    return command


@pytest.mark.parametrize("pool,model,protocol,gpus", [
    ("exclusive-l4", "intent-classifier", "kserve-v2", "1"),
    ("dedicated-h100", "llm-chat-70b", "openai", "4"),
])
def test_endpoint_jobs_on_exclusive_pools(cli, demo, pool, model, protocol, gpus):
    registry, plan, manifests = demo
    result = cli("profile", "jobs", model, "--pool", pool, "--via", "endpoint", "--registry",
                 registry)
    assert result.exit_code == 0, result.stderr
    namespace, *_ = yaml.safe_load_all(result.stdout)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    [job] = _jobs(cli, registry, model, "--pool", pool, "--via", "endpoint")
    command = _check_endpoint_job(job, registry, model, pool)
    assert command[command.index("--protocol") + 1] == protocol
    assert "--exclusive-device" in command  # the GPUs are the pod's: all on them is the server's
    assert job["spec"]["template"]["spec"]["shareProcessNamespace"] is True
    assert "hostPID" not in job["spec"]["template"]["spec"]
    assert _server_gpus(job) == {"nvidia.com/gpu": gpus}
    assert _admitted(plan, manifests, job) == []
    spec = load_registry(registry).models[model]
    if protocol == "kserve-v2":  # one request as the model's source describes it
        assert command[command.index("--shape") + 1] == "128"
        assert command[command.index("--datatype") + 1] == "INT64"
    elif spec.llm is not None:  # an LLM generates its mean output
        assert command[command.index("--max-tokens") + 1] == str(spec.llm.output_tokens.mean)
    # vLLM answers only to the name it serves under, so it is told the one the load sends.
    served = ["--served-model-name", model] if spec.serving.engine in ("vllm", "sglang") else None
    assert spec.serving.engine in ("vllm", "triton")
    assert _server(job).get("args") == served
    assert command[command.index("--model") + 1] == model


def test_endpoint_jobs_on_a_mig_pool_per_slice(cli, demo):
    registry, plan, manifests = demo
    advertised = {r.removeprefix("nvidia.com/mig-")
                  for n in consumers.nodes(plan, manifests).values()
                  if n.labels.get(consumers.DEVICE_PLUGIN_LABEL) == "mig-a100"
                  for r in n.advertised if r.startswith("nvidia.com/mig-")}
    chosen = sorted(advertised)
    jobs = _jobs(cli, registry, "intent-classifier", "--pool", "mig-a100", "--via", "endpoint",
                 *[a for p in chosen for a in ("--mig-profile", p)])
    assert len(jobs) == len(chosen)
    for job, profile in zip(jobs, chosen, strict=True):
        command = _check_endpoint_job(job, registry, "intent-classifier", "mig-a100")
        assert command[command.index("--gpu-type") + 1] == f"a100-80gb-{profile}"
        assert "--exclusive-device" in command
        assert _server_gpus(job) == {f"nvidia.com/mig-{profile}": "1"}
        assert _admitted(plan, manifests, job) == []


@pytest.mark.parametrize("mode", ["time-slicing", "mps"])
def test_endpoint_jobs_on_shared_pools_need_the_hosts_process_ids(cli, demo, with_mps, mode):
    registry, plan, manifests = demo if mode == "time-slicing" else with_mps
    result = cli("profile", "jobs", "intent-classifier", "--pool", "batch-t4", "--via",
                 "endpoint", "--allow-shared", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == ("error: intent-classifier on pool batch-t4: on a shared GPU the "
                             "server's memory is told apart from other pods' only by its host "
                             "process ids; pass --host-pid\n")
    [job] = _jobs(cli, registry, "intent-classifier", "--pool", "batch-t4", "--via",
                  "endpoint", "--allow-shared", "--host-pid")
    command = _check_endpoint_job(job, registry, "intent-classifier", "batch-t4")
    assert "--exclusive-device" not in command  # the marker names the server's processes
    assert job["spec"]["template"]["spec"]["hostPID"] is True
    assert "shareProcessNamespace" not in job["spec"]["template"]["spec"]
    assert _server_gpus(job) == {"nvidia.com/gpu.shared": "1"}
    assert _admitted(plan, manifests, job) == []


def test_endpoint_job_needs_a_serving_engine(cli, demo):
    registry, _, _ = demo
    edit_yaml(registry / "models" / "intent-classifier.yaml",
              lambda d: d["serving"].pop("engine"))
    result = cli("profile", "jobs", "intent-classifier", "--pool", "exclusive-l4", "--via",
                 "endpoint", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == ("error: intent-classifier: no serving.engine, so the protocol of "
                             "its server is unknown; name the engine, or profile it with "
                             "--via torch\n")


@pytest.mark.parametrize("via", ["torch", "endpoint"])
def test_jobs_name_every_unknown_model(cli, demo, via):
    registry, _, _ = demo
    result = cli("profile", "jobs", "intent-clasifier", "nope", "--pool", "exclusive-l4",
                 "--via", via, "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == ("error: unknown model 'intent-clasifier' (did you mean "
                             f"'intent-classifier'?); see models/ in {registry}\n"
                             f"error: unknown model 'nope'; see models/ in {registry}\n"
                             "2 errors\n")


def test_the_endpoint_jobs_profiler_runs_and_its_log_imports(cli, demo, tmp_path, monkeypatch):
    """The profiler's command as the Job runs it, against the project's stub server standing
    in for the serving image (its address and the registry's path swapped for the test's),
    with the server's processes and an L4 faked: the log it writes imports as the model's
    profile, its memory NVML's figure for the server's processes."""
    import sys

    from profiles import server_memory
    from profiles.schema import Profile
    from profiles.stub_server import StubServer, Timing
    from tests.test_endpoint_profile import SERVER_PID, fake_nvml

    registry, _, _ = demo
    [job] = _jobs(cli, registry, "intent-classifier", "--pool", "exclusive-l4", "--via",
                  "endpoint", "--concurrency", "1,2", "--duration", "0.3")
    command = _profiler(job)["command"]
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([(SERVER_PID, 1900)]))
    monkeypatch.setattr(server_memory, "server_processes", lambda marker: (
        server_memory.ServerProcesses("GPU-1111", frozenset({7}))))
    timing = Timing(base_ms=40, per_request_ms=5, max_batch=4, max_delay_ms=10)
    with StubServer("intent-classifier", timing) as server:
        args = [server.url if a.startswith("http://127.0.0.1:") else
                str(registry) if a == "/registry" else a for a in command[1:]]
        result = cli(*args)
    assert result.exit_code == 0, result.stderr
    log = tmp_path / "profile-intent-classifier-l4.log"
    log.write_text(result.stdout)
    imported = cli("profile", "import", log, "--registry", registry)
    assert imported.exit_code == 0, imported.stderr
    assert f"wrote {registry / 'profiles' / 'intent-classifier' / 'l4.yaml'}" in imported.stderr
    profile = Profile.model_validate(yaml.safe_load(
        (registry / "profiles" / "intent-classifier" / "l4.yaml").read_text()))
    assert profile.method == "measured" and profile.settings.protocol == "kserve-v2"
    assert profile.memory.measured_by == "nvml-process"
    assert [(p.concurrency, p.peak_memory_mib) for p in profile.points] == [(1, 1900),
                                                                           (2, 1900)]
