"""An endpoint's numbers saved as the profile the planner reads, with the server's memory read
from the device (a faked NVML: the server's processes are not the profiler's).

The service-time model and its margins are those of tests/timing.py; nothing here is
timed against a fixed wall-clock limit.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import yaml

from planner.planfile import load_plan
from profiles.errors import ProfileError
from profiles.schema import Profile
from profiles.server_memory import ServerMemory, ServerProcesses, server_processes
from profiles.stub_server import StubServer, Timing
from tests.conftest import edit_yaml
from tests.timing import assert_latency, assert_rate

TIMING = Timing(base_ms=150, per_request_ms=10, max_batch=4, max_delay_ms=30, ttft_ms=150,
                tpot_ms=20)
SERVER_PID, NEIGHBOUR = 40123, 555
MODEL = "embedding-service"


def fake_nvml(processes: list[tuple[int, int | None]], used_mib: int = 3072):
    """One L4 whose compute processes are `processes`: (pid as NVML lists it, MiB or None
    where NVML cannot tell)."""

    class NVMLError(Exception):
        pass

    return types.SimpleNamespace(
        NVMLError=NVMLError, nvmlInit=lambda: None, nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1, nvmlDeviceGetHandleByIndex=lambda i: "gpu",
        nvmlDeviceGetMigMode=lambda h: (0, 0), nvmlDeviceGetUUID=lambda h: "GPU-1111",
        nvmlDeviceGetName=lambda h: b"NVIDIA L4", nvmlSystemGetDriverVersion=lambda: "580.65",
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=used_mib * 2**20),
        nvmlDeviceGetComputeRunningProcesses=lambda h: [
            types.SimpleNamespace(pid=pid, usedGpuMemory=None if mib is None else mib * 2**20)
            for pid, mib in processes])


def failing_nvml():
    fake = fake_nvml([])

    def init():
        raise fake.NVMLError("NVML Shared Library Not Found")

    fake.nvmlInit = init
    return fake


@pytest.fixture(scope="module")
def server():
    with StubServer("stub", TIMING) as running:
        yield running


@pytest.mark.parametrize("processes, memory, expected", [
    ([(SERVER_PID, 2048), (NEIGHBOUR, 900)], ServerMemory(server_pids=frozenset({SERVER_PID})),
     (2048, "nvml-process")),
    ([(SERVER_PID, 2048), (SERVER_PID + 1, 512)], ServerMemory(exclusive=True),
     (2560, "nvml-process")),  # the device is the server's: all its processes are
    ([(SERVER_PID, None)], ServerMemory(exclusive=True), (3072, "nvml-device")),
    ([(SERVER_PID, None)], ServerMemory(server_pids=frozenset({SERVER_PID})),
     (3072, "nvml-device")),  # no figure, but nothing else on the device
])
def test_server_memory_from_nvml(monkeypatch, processes, memory, expected):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(processes))
    reading, info = memory.read()
    assert (reading.mib, reading.method) == expected
    assert info is not None and info.name == "NVIDIA L4" and info.uuid == "GPU-1111"


@pytest.mark.parametrize("processes, memory, message", [
    ([(SERVER_PID, 2048)], ServerMemory(), "pass --exclusive-device"),
    ([(NEIGHBOUR, 900)], ServerMemory(server_pids=frozenset({7})),
     r"none of the server's processes \(7\) is on device GPU-1111; NVML lists 555"),
    ([(SERVER_PID, None), (NEIGHBOUR, 900)], ServerMemory(server_pids=frozenset({SERVER_PID})),
     r"other processes \(555\) share it"),
    ([], ServerMemory(exclusive=True, stated_mib=None), "no memory figure"),
    ([(SERVER_PID, 0)], ServerMemory(exclusive=True), "no memory figure"),  # never 0 MiB
])
def test_server_memory_without_a_figure_is_an_error_never_zero(monkeypatch, processes, memory,
                                                               message):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(processes, used_mib=0))
    with pytest.raises(ProfileError, match=message):
        memory.read()


@pytest.mark.parametrize("nvml", [None, failing_nvml()])
def test_no_device_readable_errors_or_states_a_labelled_figure(monkeypatch, nvml):
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with pytest.raises(ProfileError, match=r"state the server's memory with --memory-mib"):
        ServerMemory(exclusive=True).read()
    reading, info = ServerMemory(exclusive=True, stated_mib=1800).read()
    assert (reading.mib, reading.method, info) == (1800, "stated", None)


def _processes(root: Path, table: dict[int, bytes]) -> Path:
    for pid, environ in table.items():
        (root / str(pid)).mkdir()
        (root / str(pid) / "environ").write_bytes(environ)
    (root / "self").mkdir()
    return root


def test_device_from_the_pods_shared_process_namespace(tmp_path: Path):
    """The server's container got MIG-abcd from the device plugin; the profiler (pid 9) and
    the pause process name none."""
    proc = _processes(tmp_path, {1: b"PATH=/pause", 9: b"NVIDIA_VISIBLE_DEVICES=GPU-own",
                                 42: b"HOME=/\0NVIDIA_VISIBLE_DEVICES=MIG-abcd\0X=1"})
    assert server_processes(proc=proc, own_pid=9) == ServerProcesses("MIG-abcd",
                                                                     frozenset({42}))
    (tmp_path / "43").mkdir()
    (tmp_path / "43" / "environ").write_bytes(b"NVIDIA_VISIBLE_DEVICES=GPU-0,GPU-1")
    with pytest.raises(ProfileError, match="GPU-0, GPU-1, MIG-abcd in NVIDIA_VISIBLE_DEVICES"):
        server_processes(proc=proc, own_pid=9)


def test_server_processes_by_their_marker_in_the_hosts_table(tmp_path: Path):
    """Under hostPID every pod's processes show, with host ids: the server's are those
    carrying the Job's marker, a neighbour on the same time-sliced GPU is not."""
    marker = b"PLANNER_PROFILE_JOB=profile-a-l4"
    proc = _processes(tmp_path, {
        40123: marker + b"\0NVIDIA_VISIBLE_DEVICES=GPU-1111",
        40124: marker + b"\0NVIDIA_VISIBLE_DEVICES=GPU-1111",  # a worker of the server
        555: b"NVIDIA_VISIBLE_DEVICES=GPU-1111", 9: b"HOME=/"})
    found = server_processes(marker.decode(), proc=proc, own_pid=9)
    assert found == ServerProcesses("GPU-1111", frozenset({40123, 40124}))
    with pytest.raises(ProfileError, match="the processes with X=1 name none"):
        server_processes("X=1", proc=proc, own_pid=9)


def _save(cli, server, registry: Path, *extra: object):
    return cli("profile", "endpoint", server.url, "--model", "stub", "--save", MODEL,
               "--concurrency", "1,2,4", "--duration", "0.5", "--registry", registry, *extra)


def test_saved_endpoint_profile_is_planned_from(cli, server, registry: Path, tmp_path: Path,
                                                monkeypatch):
    """The stub server profiled as the demo's embedding-service on an L4 whose processes are
    the server's (2,048 MiB by NVML): the profile's points follow the service-time model
    (190, 200 and 190 ms; 5.3, 10 and 21.1 rps), and the planner plans the model from it."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([(SERVER_PID, 2048)]))
    edit_yaml(registry / "models" / f"{MODEL}.yaml", lambda d: d.update(
        slo={"p99_ms": 2000},
        limits={**d["limits"], "max_concurrency": 4, "timeout_ms": 5000},
        traffic={"peak_rps": 40, "mean_rps": 20}))
    result = _save(cli, server, registry, "--exclusive-device")
    assert result.exit_code == 0, result.stderr
    path = registry / "profiles" / MODEL / "l4.yaml"
    assert f"wrote {path}" in result.stderr
    profile = Profile.model_validate(yaml.safe_load(path.read_text()))
    assert profile.method == "measured" and profile.settings.protocol == "kserve-v2"
    assert profile.memory.measured_by == "nvml-process" and profile.memory.weights_mib is None
    assert profile.environment.backend == "cuda"
    assert profile.environment.device_name == "NVIDIA L4"
    assert [p.concurrency for p in profile.points] == [1, 2, 4]
    for point in profile.points:
        latency_ms, throughput_rps = TIMING.expected_closed_loop(point.concurrency)
        assert_latency(point.p50_ms, latency_ms)
        assert_rate(point.throughput_rps, throughput_rps)
        assert point.peak_memory_mib == 2048 and not point.beyond_limit
    out = tmp_path / "out"
    result = cli("plan", "--registry", registry, "--solver", "greedy", "--out", out)
    assert result.exit_code == 0, result.stderr
    planned = next(m for m in load_plan(out / "plan.yaml").models if m.name == MODEL)
    assert planned.profile_method == "measured" and not planned.estimated
    point = next(p for p in profile.points if p.concurrency == planned.concurrency)
    assert planned.memory_mib == 2048
    assert planned.throughput_rps == pytest.approx(point.throughput_rps, rel=1e-3)


def test_saved_to_a_log_and_imported(cli, server, registry: Path, tmp_path: Path, monkeypatch):
    """In a Job the profile goes to the log between markers; `profile import` files it. Levels
    above the model's limit are left out unless asked for, then marked."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([(SERVER_PID, None)], used_mib=2500))
    edit_yaml(registry / "models" / f"{MODEL}.yaml",
              lambda d: d.update(limits={**d["limits"], "max_concurrency": 2}))
    result = cli("profile", "endpoint", server.url, "--model", "stub", "--save", MODEL,
                 "--concurrency", "1,4", "--duration", "0.3", "--registry", registry,
                 "--server-pid", SERVER_PID, "--format", "markers", "--wait-ready", "5",
                 "--beyond-limit")
    assert result.exit_code == 0, result.stderr
    log = tmp_path / "job.log"
    log.write_text("starting\n" + result.stdout)
    out = tmp_path / "profiles"
    imported = cli("profile", "import", log, "--registry", registry, "--out", out)
    assert imported.exit_code == 0, imported.stderr
    profile = Profile.model_validate(yaml.safe_load((out / MODEL / "l4.yaml").read_text()))
    assert profile.memory.measured_by == "nvml-device"
    assert [(p.concurrency, p.beyond_limit, p.peak_memory_mib) for p in profile.points] == [
        (1, False, 2500), (4, True, 2500)]


def test_openai_stream_saved_with_its_tokens(cli, server, registry: Path, monkeypatch):
    """8 tokens of 20 ms after a 150 ms first token, the prompt's one word ("Hello") its one
    token: at 2 clients 2 x 1 / 0.15 = 13.3 prompt tokens/s prefilled and 2 x 8 / 0.29 = 55.2
    generated."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([(SERVER_PID, 2048)]))
    result = cli("profile", "endpoint", server.url, "--model", "stub", "--save", MODEL,
                 "--protocol", "openai", "--max-tokens", "8", "--concurrency", "2",
                 "--duration", "0.6", "--registry", registry, "--exclusive-device",
                 "--format", "json")
    assert result.exit_code == 0, result.stderr
    profile = Profile.model_validate(json.loads(result.stdout))
    assert profile.settings.protocol == "openai" and not profile.warnings
    (tokens,) = profile.generation
    assert_latency(tokens.ttft_p50_ms, 150)
    assert_latency(tokens.tpot_p50_ms, 20)
    assert_rate(tokens.decode_tokens_per_s, 2 * 8 / 0.29)
    assert_rate(tokens.prefill_tokens_per_s, 2 * 1 / 0.15)
    assert tokens.peak_memory_mib == 2048


def test_no_device_and_no_stated_memory_writes_nothing(cli, server, registry: Path,
                                                       monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    before = (registry / "profiles" / MODEL / "l4.yaml").read_text()
    result = _save(cli, server, registry, "--exclusive-device", "--gpu-type", "l4")
    assert result.exit_code == 2
    assert (f"{MODEL}: no device memory to read: NVML is not installed (pip install "
            "nvidia-ml-py)") in result.stderr
    assert (registry / "profiles" / MODEL / "l4.yaml").read_text() == before


def test_stated_memory_is_labelled(cli, server, registry: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    result = _save(cli, server, registry, "--memory-mib", "1800", "--gpu-type", "l4",
                   "--format", "json")
    assert result.exit_code == 0, result.stderr
    profile = Profile.model_validate(json.loads(result.stdout))
    assert profile.memory.measured_by == "stated" and profile.environment.backend == "server"
    assert profile.warnings == ["memory stated with --memory-mib, not measured: no device "
                                "was readable by the profiler"]
    assert {p.peak_memory_mib for p in profile.points} == {1800}


@pytest.mark.parametrize("args, message", [
    (("--save", "nope"), "--save: unknown model 'nope'"),
    (("--save", MODEL, "--rate", "2"), "--rate: open-loop rates are not saved"),
    (("--format", "markers"), "only with --save MODEL"),
])
def test_endpoint_save_input_errors(cli, server, registry: Path, args, message):
    result = cli("profile", "endpoint", server.url, "--model", "stub", "--concurrency", "1",
                 "--duration", "0.1", "--registry", registry, *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_wait_ready_names_the_last_answer():
    with StubServer("stub", TIMING) as stopped:
        url = stopped.url
    from profiles.endpoint import Endpoint, wait_ready

    ticks = iter(range(100))
    with pytest.raises(ProfileError, match=rf"{url}/v2/health/ready: not ready after 3 s"):
        wait_ready(Endpoint(url, "stub"), 3, clock=lambda: float(next(ticks)),
                   sleep=lambda s: None)
