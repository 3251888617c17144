"""The profiler: measurement loops (faked clock), real CPU runs, NVML parsing (faked), bad
input, cluster Jobs and their logs. GPU runs are marked `gpu` and skip without one."""

from __future__ import annotations

import types
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from planner.profiling import ProfileSettings, measure_models
from planner.registry.loader import load_registry
from profiles.devices import DeviceProbe, nvml_pid, own_pids, peak_device_mib, probe_device
from profiles.errors import ProfileError
from profiles.jobs import job_name
from profiles.measure import (
    Budget,
    closed_loop,
    closed_loop_levels,
    open_loop,
    rate_search,
)
from profiles.text import read_logs, with_markers
from profiles.worker import shared_device_warnings, zero_rate_reason
from tests.conftest import edit_yaml

torch = pytest.importorskip("torch")


class FakeClock:
    """A clock that only moves when the fake server works or the loop sleeps."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_closed_loop_stops_when_three_windows_agree():
    clock = FakeClock()
    calls = []

    def serve(n):
        calls.append(n)
        clock.now += 0.01 + 0.002 * n

    result = closed_loop(serve, 4, window_s=0.1, max_windows=10, clock=clock)
    assert result.stable and result.windows == 3
    assert result.window.throughput_rps == pytest.approx(4 / 0.018)
    assert result.window.p50_ms == pytest.approx(18)
    assert calls[:2] == [4, 4]  # warm-up of at least `concurrency` requests


def test_closed_loop_unstable_when_windows_disagree():
    clock = FakeClock()
    state = {"n": 0}

    def serve(n):
        state["n"] += 1
        clock.now += 0.01 * (1 + 0.5 * state["n"])  # keeps slowing down

    result = closed_loop(serve, 1, window_s=0.1, max_windows=5, clock=clock)
    assert not result.stable and result.windows == 5


def test_open_loop_counts_queueing_from_the_scheduled_send_time():
    clock = FakeClock()
    state = {"first": True}

    def serve(n):
        clock.now += 0.5 if state["first"] else 0.001  # one stall, then fast
        state["first"] = False

    window = open_loop(serve, 100, duration_s=1.0, max_batch=1000, clock=clock,
                       sleep=clock.sleep)
    # Requests scheduled during the stall waited for it: the p99 shows the stall.
    assert window.p99_ms > 400
    assert window.p50_ms < 100


def test_rate_search_finds_the_knee():
    clock = FakeClock()

    def serve(n):  # 2 ms a request, batching does not help: capacity 500 rps
        clock.now += 0.002 * n

    found = rate_search(serve, 50, low_rps=10, high_rps=2000, duration_s=2, max_batch=64,
                        budget=Budget(clock), sleep=clock.sleep)
    assert 250 < found.rate_rps < 500 and found.window.p99_ms <= 50
    assert not found.cut_short and found.first_rps == 10 and found.first.requests > 0


def test_budget_bounds_levels_that_never_agree():
    """Three levels whose windows never agree would run 10 windows of 1 s each (30 s and more);
    a 20 s budget ends them, each point marked cut short, and later levels still get their
    share."""
    clock = FakeClock()
    state = {"batches": 0}

    def serve(n):  # each batch 2% slower than the last: no three windows alike
        state["batches"] += 1
        clock.now += 0.002 * 1.02 ** state["batches"]

    results = list(closed_loop_levels(serve, (1, 2, 4), window_s=1.0, max_windows=10,
                                      tolerance=0.10, budget=Budget.of(20, clock)))
    assert [r.concurrency for r in results] == [1, 2, 4]
    assert all(r.cut_short and not r.stable for r in results)
    assert all(r.windows >= 1 for r in results) and sum(r.windows for r in results) < 30
    # A level starts no window that would end past its share, and a window ends at the first
    # batch past its length, so the run ends at most one batch past the budget.
    assert clock.now <= 20 + 0.002 * 1.02 ** state["batches"]


def test_budget_fits_three_windows_into_each_share():
    """A 3 s budget over three levels gives each 1 s: windows of 1/3 s instead of 1 s, so three
    agreeing windows still fit and the points are stable, not cut short."""
    clock = FakeClock()

    def serve(n):
        clock.now += 0.01 * n

    results = list(closed_loop_levels(serve, (1, 2, 4), window_s=1.0, max_windows=10,
                                      tolerance=0.10, budget=Budget.of(3, clock)))
    assert [r.window_s for r in results] == pytest.approx([1 / 3] * 3, rel=0.1)
    assert all(r.stable and not r.cut_short and r.windows == 3 for r in results)
    assert clock.now <= 3 + 3 * 0.04


def test_budget_leaves_the_rate_search_its_share():
    clock = FakeClock()

    def serve(n):  # 2 ms a request: 500 rps
        clock.now += 0.002 * n

    budget = Budget.of(8, clock)
    results = list(closed_loop_levels(serve, (1, 4), window_s=5.0, max_windows=10,
                                      tolerance=0.10, budget=budget, parts_after=1))
    assert all(r.window_s == pytest.approx(8 / 3 / 3, rel=0.05) for r in results)
    assert clock.now == pytest.approx(8 * 2 / 3, rel=0.05)  # a third of the budget left
    found = rate_search(serve, 50, low_rps=10, high_rps=2000, duration_s=2, max_batch=64,
                        budget=budget, sleep=clock.sleep)
    assert found.rate_rps > 0 and found.steps >= 1
    assert clock.now <= 8 + 0.1  # each open-loop step at most its share, plus draining


def test_rate_search_with_no_time_left_says_so():
    clock = FakeClock()
    budget = Budget.of(1, clock)
    clock.now = 2.0
    found = rate_search(lambda n: None, 50, low_rps=10, high_rps=100, duration_s=1,
                        max_batch=4, budget=budget, sleep=clock.sleep)
    assert (found.rate_rps, found.first, found.steps, found.cut_short) == (0.0, None, 0, True)
    assert zero_rate_reason(found, 50, [{"concurrency": 1, "p99_ms": 10.0}]) == (
        "the time budget was spent before the rate search could run; raise --max-time")


def test_rate_search_zero_is_explained():
    """A 0 rps result names the lowest rate tried, its p99 over how many requests, and whether
    the closed loop met the SLO (then the open loop's few requests are the suspect)."""
    clock = FakeClock()
    served = {"batches": 0}

    def serve(n):  # the first batch stalls 60 ms, the rest take 5 ms
        served["batches"] += 1
        clock.now += 0.06 if served["batches"] == 1 else 0.005

    found = rate_search(serve, 40, low_rps=1.6, high_rps=120, duration_s=2, max_batch=64,
                        budget=Budget(clock), sleep=clock.sleep)
    assert found.rate_rps == 0 and found.steps == 1 and found.first.p99_ms > 40
    points = [{"concurrency": 1, "p99_ms": 24.5}, {"concurrency": 2, "p99_ms": 30.0}]
    reason = zero_rate_reason(found, 40, points)
    assert reason.startswith(f"the lowest rate tried, 1.60 rps, missed the SLO: p99 "
                             f"{found.first.p99_ms:.1f} ms > 40 ms over "
                             f"{found.first.requests} requests, while the closed loop met it "
                             "(p99 24.5 ms at concurrency 1)")
    slow = [{"concurrency": 1, "p99_ms": 55.0}]
    assert zero_rate_reason(found, 40, slow).endswith(
        "as did every closed-loop level (p99 at least 55.0 ms): the model is slower than its "
        "SLO on this device")


def test_window_counts_its_requests():
    clock = FakeClock()
    result = closed_loop(lambda n: setattr(clock, "now", clock.now + 0.125), 2, window_s=0.5,
                         clock=clock)  # binary fractions: the clock adds up exactly
    assert result.window.requests == 2 * 3 * 4  # three windows of four batches of two


def test_shared_device_refused_or_recorded():
    probe = DeviceProbe(others=[4242])
    with pytest.raises(ProfileError, match="pass --allow-shared-device"):
        shared_device_warnings(probe, False)
    assert "pids [4242]" in shared_device_warnings(probe, True)[0]
    assert shared_device_warnings(DeviceProbe(), False) == []


def _fake_nvml(own_pid: int, mig: bool):
    """Just enough of pynvml for probe_device: one GPU, optionally with one MIG device."""

    class NVMLError(Exception):
        pass

    process = types.SimpleNamespace
    devices = {"gpu": "GPU-1111", "mig": "MIG-2222"}
    return types.SimpleNamespace(
        NVMLError=NVMLError, nvmlInit=lambda: None, nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: "gpu",
        nvmlDeviceGetMigMode=lambda h: (1 if mig else 0, 1 if mig else 0),
        nvmlDeviceGetMaxMigDeviceCount=lambda h: 1,
        nvmlDeviceGetMigDeviceHandleByIndex=lambda h, i: "mig",
        nvmlDeviceGetUUID=lambda h: devices[h],
        nvmlDeviceGetName=lambda h: b"NVIDIA L4",
        nvmlSystemGetDriverVersion=lambda: "580.65",
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=3 * 2**30),
        nvmlDeviceGetComputeRunningProcesses=lambda h: [
            process(pid=own_pid, usedGpuMemory=1536 * 2**20),
            process(pid=99, usedGpuMemory=2**30)],
    )


@pytest.mark.parametrize("mig, uuid", [(False, "GPU-1111"), (True, "MIG-2222")])
def test_nvml_probe_reads_own_process_and_others(monkeypatch, mig, uuid):
    monkeypatch.setitem(__import__("sys").modules, "pynvml", _fake_nvml(1234, mig))
    probe = probe_device(0, uuid, pid=1234)
    assert probe.process_mib == 1536 and probe.used_mib == 3072
    assert probe.others == [99] and probe.uuid == uuid
    assert probe.name == "NVIDIA L4" and probe.driver_version == "580.65"


def test_nvml_missing_gives_empty_probe(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pynvml", None)
    assert probe_device(0) == DeviceProbe()


FAST = ProfileSettings(device="cpu", concurrency=(1, 2, 4), window_s=0.15, max_windows=6)


@pytest.fixture(scope="module")
def cpu_runs():
    from planner.demo import demo_registry_path

    fleet = load_registry(demo_registry_path())
    first = next(measure_models(fleet, ["intent-classifier"], FAST))
    second = next(measure_models(fleet, ["intent-classifier"], FAST))
    return fleet, first, second


def test_cpu_profile_is_real(cpu_runs):
    fleet, profile, _ = cpu_runs
    assert profile.method == "measured" and profile.gpu_type == "cpu"
    assert profile.memory.kind == "host" and profile.environment.backend == "cpu"
    from planner.demo.models import text_classifier

    parameters = sum(p.numel() for p in text_classifier(
        **fleet.models["intent-classifier"].source.kwargs).parameters())
    assert profile.memory.weights_mib == pytest.approx(parameters * 4 / 2**20, abs=0.1)
    for point in profile.points:
        assert point.peak_memory_mib >= parameters * 4 / 2**20
        assert point.p50_ms <= point.p95_ms <= point.p99_ms
    assert all(point.throughput_rps > 0 for point in profile.points)
    assert profile.load_time_s > 0


def test_two_cpu_runs_agree_on_memory(cpu_runs):
    """Two fresh processes measure the same weights and peak memory within 25%; throughput is
    left out, as it depends on what else the machine runs."""
    _, first, second = cpu_runs
    assert first.memory.weights_mib == second.memory.weights_mib
    a, b = first.points[-1].peak_memory_mib, second.points[-1].peak_memory_mib
    assert max(a, b) <= 1.25 * min(a, b)
    assert [p.concurrency for p in first.points] == [p.concurrency for p in second.points]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_profile_records_device_memory():
    from planner.demo import demo_registry_path

    fleet = load_registry(demo_registry_path())
    settings = ProfileSettings(device="cuda", concurrency=(1, 4), window_s=0.2)
    [profile] = measure_models(fleet, ["intent-classifier"], settings, gpu_type="l4")
    assert profile.memory.kind == "device" and profile.environment.backend == "cuda"
    assert profile.memory.process_mib >= profile.memory.weights_mib
    assert profile.memory.peak_reserved_mib >= profile.memory.peak_allocated_mib
    assert profile.points[-1].peak_memory_mib >= profile.memory.cuda_context_mib


def test_cli_unknown_model_exit_2(cli, registry: Path):
    result = cli("profile", "run", "intent-clasifier", "--registry", registry, "--device", "cpu")
    assert result.exit_code == 2
    assert result.stderr == ("error: unknown model 'intent-clasifier' (did you mean "
                             f"'intent-classifier'?); see models/ in {registry}\n")


def test_cli_missing_cuda_device_exit_2(cli, registry: Path):
    if torch.cuda.device_count() > 3:
        pytest.skip("this machine has a cuda:3")
    result = cli("profile", "run", "spam-filter", "--registry", registry, "--device", "cuda:3")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --device cuda:3: no such CUDA device (")


@pytest.mark.parametrize("change, message", [
    (lambda d: d["source"].update(factory="planner.demo.missing:net"),
     "source.factory: cannot import module 'planner.demo.missing'"),
    (lambda d: d["source"]["input"].update(dtype="float32"),
     "source.input: the model rejects input of shape [128] (float32)"),
])
def test_cli_bad_source_exit_2_and_no_partial_file(cli, registry: Path, tmp_path, change,
                                                   message):
    edit_yaml(registry / "models" / "spam-filter.yaml", change)
    out = tmp_path / "profiles"
    result = cli("profile", "run", "anomaly-detector", "spam-filter", "--registry", registry,
                 "--device", "cpu", "--concurrency", "1", "--duration", "0.05", "--out", out)
    assert result.exit_code == 2
    assert message in result.stderr
    # anomaly-detector, measured first, is kept; spam-filter leaves no file, not even a temporary
    assert [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()] == [
        "anomaly-detector/cpu.yaml"]
    assert f"wrote {out / 'anomaly-detector' / 'cpu.yaml'}" in result.stderr


def test_jobs_validate_and_logs_import(cli, registry: Path, tmp_path: Path):
    result = cli("profile", "jobs", "intent-classifier", "spam-filter", "--registry", registry,
                 "--gpu-type", "l4", "--concurrency", "1,4")
    assert result.exit_code == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    jobs = [d for d in documents if d["kind"] == "Job"]
    assert [j["metadata"]["name"] for j in jobs] == ["profile-intent-classifier-l4",
                                                     "profile-spam-filter-l4"]
    for document in documents:
        kubernetes_validate.validate(document, "1.33", strict=True)
    for document in jobs:
        container = document["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"] == {"memory": "4096Mi", "nvidia.com/gpu": "1"}
        assert container["command"][:4] == ["planner", "profile", "run", document["metadata"][
            "labels"]["planner.example.com/model"]]

    fleet = load_registry(registry)
    reference = fleet.profiles[("spam-filter", "l4")]
    measured = reference.model_copy(update={"method": "measured", "basis": ""})
    log = tmp_path / "job.log"
    log.write_text("starting\n" + with_markers(measured) + "done\n")
    result = cli("profile", "import", log, "--registry", registry)
    assert result.exit_code == 0, result.stderr
    written = yaml.safe_load((registry / "profiles" / "spam-filter" / "l4.yaml").read_text())
    assert written["method"] == "measured"
    assert load_registry(registry).profiles[("spam-filter", "l4")].method == "measured"


def test_broken_log_names_file_and_line(tmp_path: Path):
    log = tmp_path / "job.log"
    log.write_text("x\n=== planner profile begin m l4 ===\nmodel: [\n")
    with pytest.raises(ProfileError, match=r"job.log:2: profile begins but never ends"):
        read_logs([log])


def test_job_names_are_dns_labels():
    name = job_name("a" * 70, "a100-80gb-1g.10gb")
    assert len(name) <= 63 and name.startswith("profile-aaa") and "." not in name


def test_torchscript_source_rate_search_budget_and_beyond_limit(cli, registry: Path):
    from planner.demo.models import tabular_mlp

    scripted = torch.jit.trace(tabular_mlp(features=16, hidden=32, layers=2),
                               torch.zeros(1, 16))
    scripted.save(str(registry / "scorer.pt"))

    def change(document):
        document.update(source={"torchscript": "scorer.pt",
                                "input": {"shape": [16], "dtype": "float32"}})
        document["limits"]["max_concurrency"] = 2

    edit_yaml(registry / "models" / "anomaly-detector.yaml", change)
    result = cli("profile", "run", "anomaly-detector", "--registry", registry, "--device", "cpu",
                 "--concurrency", "1,4", "--duration", "0.1", "--rate-search", "--format",
                 "json", "--max-time", "120", "--beyond-limit")
    assert result.exit_code == 0, result.stderr
    [profile] = __import__("json").loads(result.stdout)
    assert profile["method"] == "measured" and profile["load_time_s"] > 0
    assert profile["settings"]["max_time_s"] == 120
    assert [(p["concurrency"], p["beyond_limit"]) for p in profile["points"]] == [
        (1, False), (4, True)]
    search = profile["rate_search"]
    assert search["slo_p99_ms"] == 2000 and search["rate_rps"] > 0 and search["reason"] == ""
    assert search["p99_ms"] <= 2000
    assert (registry / "profiles" / "anomaly-detector" / "cpu.yaml").exists()
    loaded = load_registry(registry).profiles[("anomaly-detector", "cpu")]
    assert loaded.rate_search and loaded.points[1].beyond_limit


def test_levels_above_the_limit_only_when_asked(registry: Path):
    from planner.profiling import request_for

    fleet = load_registry(registry)
    model = fleet.models["anomaly-detector"]  # max_concurrency 32
    asked = ProfileSettings(concurrency=(16, 32, 64), max_time_s=20)
    assert request_for(model, fleet, asked).concurrency == (16, 32)
    beyond = ProfileSettings(concurrency=(16, 32, 64), beyond_limit=True, max_time_s=20)
    request = request_for(model, fleet, beyond)
    assert request.concurrency == (16, 32, 64) and request.max_batch == 32
    assert request.max_time_s == 20


def _nvml_with(processes: list[tuple[int, int | None]], used_mib: int = 3072):
    """A one-GPU pynvml whose compute processes are `processes`: (pid as NVML lists it, its
    memory in MiB or None where NVML cannot tell)."""
    fake = _fake_nvml(0, False)
    fake.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=used_mib * 2**20)
    fake.nvmlDeviceGetComputeRunningProcesses = lambda h: [
        types.SimpleNamespace(pid=pid, usedGpuMemory=None if mib is None else mib * 2**20)
        for pid, mib in processes]
    return fake


CONTAINER_PID, HOST_PID, NEIGHBOUR = 7, 40123, 555


@pytest.mark.parametrize("others_before", [[], [(NEIGHBOUR, 900)]])
def test_nvml_finds_the_profiler_through_its_pid_namespace(monkeypatch, others_before):
    """In a pod without hostPID the profiler is pid 7 while NVML lists it as 40123: it is the
    process that appears when the profiler creates its CUDA context."""
    sys_modules = __import__("sys").modules
    monkeypatch.setitem(sys_modules, "pynvml", _nvml_with(others_before))
    before = probe_device(0, "GPU-1111", pid=CONTAINER_PID)
    assert before.process_mib is None and before.method is None
    monkeypatch.setitem(sys_modules, "pynvml", _nvml_with([*others_before, (HOST_PID, 1536)]))
    after = probe_device(0, "GPU-1111", pid=CONTAINER_PID)
    assert after.others == [p for p, _ in others_before] + [HOST_PID]  # not matched by pid
    found = nvml_pid(before, after, pid=CONTAINER_PID)
    assert found == HOST_PID
    probe = probe_device(0, "GPU-1111", pid=CONTAINER_PID, nvml_id=found)
    assert (probe.process_mib, probe.method) == (1536, "nvml-process")
    assert probe.others == [p for p, _ in others_before]
    if others_before:  # a neighbour still shares the device
        with pytest.raises(ProfileError, match=rf"pids \[{NEIGHBOUR}\]"):
            shared_device_warnings(probe, False)
    else:
        assert shared_device_warnings(probe, False) == []


def test_nvml_context_older_than_the_first_look_is_the_only_process(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pynvml", _nvml_with([(HOST_PID, 1536)]))
    probe = probe_device(0, "GPU-1111", pid=CONTAINER_PID)
    assert nvml_pid(probe, probe, pid=CONTAINER_PID) == HOST_PID


def test_nvml_ambiguous_process_is_unattributed_never_zero(monkeypatch):
    """Two processes appear at once: neither is known to be the profiler's. Its memory is
    absent, the device is refused as shared unless allowed, and the peak falls back to torch's
    reserved memory, labelled as such."""
    sys_modules = __import__("sys").modules
    monkeypatch.setitem(sys_modules, "pynvml", _nvml_with([]))
    before = probe_device(0, "GPU-1111", pid=CONTAINER_PID)
    monkeypatch.setitem(sys_modules, "pynvml", _nvml_with([(HOST_PID, 1536), (NEIGHBOUR, 900)]))
    after = probe_device(0, "GPU-1111", pid=CONTAINER_PID)
    assert nvml_pid(before, after, pid=CONTAINER_PID) is None
    assert after.process_mib is None and after.method is None
    with pytest.raises(ProfileError, match="pass --allow-shared-device"):
        shared_device_warnings(after, False)
    assert peak_device_mib(after, reserved_mib=1200.0) == (1200.0, "torch-reserved")


@pytest.mark.parametrize("processes, expected", [
    ([(HOST_PID, None)], (2048, "nvml-device")),  # alone on the device: its used memory
    ([(HOST_PID, None), (NEIGHBOUR, 900)], (None, None)),  # shared: no figure, not 0
])
def test_nvml_without_a_figure_for_the_process(monkeypatch, processes, expected):
    monkeypatch.setitem(__import__("sys").modules, "pynvml",
                        _nvml_with(processes, used_mib=2048))
    probe = probe_device(0, "GPU-1111", pid=CONTAINER_PID, nvml_id=HOST_PID)
    assert (probe.process_mib, probe.method) == expected
    assert peak_device_mib(probe, 1200.0) == (expected if expected[0] is not None
                                               else (1200.0, "torch-reserved"))


def test_own_pids_include_this_process():
    import os

    assert os.getpid() in own_pids()
