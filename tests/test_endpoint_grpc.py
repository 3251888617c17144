"""The endpoint profiler over KServe v2 gRPC against the project's own server, whose timing
is known: the same service-time model and margins as over HTTP (tests/timing.py),
the gRPC call's own overhead being under a millisecond of the 150 ms and more."""

from __future__ import annotations

import json

import pytest

from profiles.endpoint import Endpoint, closed_loop, open_loop, wait_ready
from profiles.endpoint_grpc import GrpcClient, target
from profiles.errors import ProfileError
from profiles.stub_grpc import StubGrpcServer
from profiles.stub_server import Timing
from tests.timing import assert_latency, assert_rate

TIMING = Timing(base_ms=150, per_request_ms=10, max_batch=4, max_delay_ms=30)


@pytest.fixture(scope="module")
def server():
    with StubGrpcServer("stub", TIMING) as running:
        yield running


def _endpoint(url: str, model: str = "stub", **kwargs) -> Endpoint:
    return Endpoint(url, model, "kserve-v2-grpc", **kwargs)


@pytest.mark.parametrize("concurrency", [1, 2, 4])
def test_closed_loop_grpc_matches_the_service_time_model(server, concurrency):
    """190, 200 and 190 ms; 5.3, 10 and 21.1 rps, as over HTTP."""
    measured = closed_loop(_endpoint(server.url), concurrency, duration_s=1.5)
    latency_ms, throughput_rps = TIMING.expected_closed_loop(concurrency)
    assert_latency(measured.p50_ms, latency_ms)
    assert_rate(measured.throughput_rps, throughput_rps)
    assert measured.requests >= concurrency * 1.5 * 1000 / latency_ms * 0.7


def test_open_loop_grpc(server):
    measured = open_loop(_endpoint(server.url), 5, duration_s=1.5, seed=3)
    assert measured.requests > 0 and measured.p50_ms >= TIMING.batch_ms(1) * 0.95


@pytest.mark.parametrize("datatype, raw_bytes", [("FP32", 4 * 6), ("INT64", 8 * 6),
                                                 ("BF16", 2 * 6), ("BYTES", 0)])
def test_request_is_a_zero_tensor_of_the_datatype(server, datatype, raw_bytes):
    client = GrpcClient(server.url, "stub", (2, 3), datatype, 5)
    try:
        (tensor,) = client.request.inputs
        assert list(tensor.shape) == [1, 2, 3] and tensor.datatype == datatype
        assert sum(len(r) for r in client.request.raw_input_contents) == raw_bytes
        assert len(tensor.contents.bytes_contents) == (6 if datatype == "BYTES" else 0)
        client.infer()
    finally:
        client.close()


def test_unknown_model_names_the_status(server):
    with pytest.raises(ProfileError, match=rf"{server.url} ModelInfer: NOT_FOUND: no model "
                       "other; this server has stub"):
        closed_loop(_endpoint(server.url, "other"), 1, duration_s=0.1)


def test_unreachable_grpc_server():
    with StubGrpcServer("stub", TIMING) as stopped:
        url = stopped.url
    with pytest.raises(ProfileError, match=rf"{url} ModelInfer: UNAVAILABLE"):
        closed_loop(_endpoint(url, timeout_s=5), 2, duration_s=0.1)


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "grpc://127.0.0.1", "127.0.0.1:1"])
def test_not_a_grpc_url(url):
    with pytest.raises(ProfileError, match="expected grpc://host:port"):
        target(url)


def test_ready_from_server_and_model(server):
    assert wait_ready(_endpoint(server.url), 5) >= 0
    ticks = iter(range(100))
    with pytest.raises(ProfileError, match=r"not ready after 2 s \(ModelReady other: false\)"):
        wait_ready(_endpoint(server.url, "other"), 2, clock=lambda: float(next(ticks)),
                   sleep=lambda s: None)


def test_cli_endpoint_grpc(cli, server):
    """4 clients over gRPC: a full batch, 190 ms and 21.1 rps."""
    result = cli("profile", "endpoint", server.url, "--model", "stub", "--protocol",
                 "kserve-v2-grpc", "--concurrency", "4", "--duration", "1.5", "--wait-ready",
                 "5", "--format", "json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert_latency(row["p50_ms"], 190)
    assert_rate(row["throughput_rps"], 4000 / 190)


def test_cli_saves_a_grpc_profile(cli, server, registry, monkeypatch):
    """Saved as over HTTP, with the protocol recorded: 1, 2 and 4 clients within 15% of the
    service-time model, the server's 2,048 MiB from NVML."""
    import sys

    from profiles.schema import Profile
    from tests.test_endpoint_profile import SERVER_PID, fake_nvml

    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([(SERVER_PID, 2048)]))
    result = cli("profile", "endpoint", server.url, "--model", "stub", "--protocol",
                 "kserve-v2-grpc", "--save", "embedding-service", "--concurrency", "1,2,4",
                 "--duration", "0.5", "--exclusive-device", "--registry", registry,
                 "--format", "json")
    assert result.exit_code == 0, result.stderr
    profile = Profile.model_validate(json.loads(result.stdout))
    assert profile.settings.protocol == "kserve-v2-grpc" and profile.gpu_type == "l4"
    assert profile.memory.measured_by == "nvml-process"
    for point in profile.points:
        latency_ms, throughput_rps = TIMING.expected_closed_loop(point.concurrency)
        assert_latency(point.p50_ms, latency_ms)
        assert_rate(point.throughput_rps, throughput_rps)
        assert point.peak_memory_mib == 2048
