"""The endpoint profiler against the project's own server, whose timing is known.

Tolerances come from the service-time model, which leaves out the HTTP round trip and the
wake-up of client and server threads: a loaded machine can only add those, so figures may come
out a little better than the model and clearly worse (tests/timing.py); nothing here is timed
against a fixed wall-clock limit.
"""

from __future__ import annotations

import random

import pytest

from profiles.endpoint import Endpoint, closed_loop, open_loop
from profiles.errors import ProfileError
from profiles.stub_server import StubServer, Timing
from tests.timing import assert_latency, assert_rate

TIMING = Timing(base_ms=150, per_request_ms=10, max_batch=4, max_delay_ms=30, ttft_ms=150,
                tpot_ms=20)


@pytest.fixture(scope="module")
def server():
    with StubServer("stub", TIMING) as running:
        yield running


@pytest.mark.parametrize("concurrency", [1, 2, 4])
def test_closed_loop_kserve_v2_matches_the_service_time_model(server, concurrency):
    """At 1 and 2 clients a batch waits the 30 ms delay, then runs 150 + 10 n ms (190 and
    200 ms); 4 clients fill the batch, which runs at once (190 ms): 5.3, 10 and 21.1 rps."""
    measured = closed_loop(Endpoint(server.url, "stub"), concurrency, duration_s=1.5)
    latency_ms, throughput_rps = TIMING.expected_closed_loop(concurrency)
    assert_latency(measured.p50_ms, latency_ms)
    assert_rate(measured.throughput_rps, throughput_rps)
    assert measured.requests >= concurrency * 1.5 * 1000 / latency_ms * 0.7
    assert measured.ttft_p50_ms is None and measured.tokens_per_s is None


def test_closed_loop_openai_stream_gives_ttft_and_tpot(server):
    """8 tokens: the first after 150 ms, then one each 20 ms, so 290 ms a request; 2 clients
    get 2 x 8 / 0.29 = 55.2 tokens/s."""
    endpoint = Endpoint(server.url, "stub", protocol="openai", max_tokens=8)
    measured = closed_loop(endpoint, 2, duration_s=1.5)
    assert_latency(measured.ttft_p50_ms, 150)
    assert_latency(measured.tpot_p50_ms, 20)
    assert_latency(measured.p50_ms, 150 + 7 * 20)
    assert_rate(measured.tokens_per_s, 2 * 8 / 0.29)


def test_open_loop_sends_every_scheduled_request(server):
    """Poisson arrivals at 8 rps for 2 s (the count follows from the seed). A request waits at
    least its own batch; the median one at most the batch running when it arrives and then its
    own (each at most the delay and a full batch, 220 ms), since 8 rps is far below the 21.1
    rps that full batches serve."""
    rng, t, expected = random.Random(3), 0.0, 0
    while (t := t + rng.expovariate(8)) < 2:
        expected += 1
    measured = open_loop(Endpoint(server.url, "stub"), 8, duration_s=2, seed=3)
    assert measured.requests == expected
    longest_ms = TIMING.max_delay_ms + TIMING.batch_ms(TIMING.max_batch)
    assert TIMING.batch_ms(1) * 0.95 <= measured.p50_ms <= 2 * longest_ms * 1.15


def test_unknown_model_names_the_url_and_status(server):
    with pytest.raises(ProfileError, match=r"/v2/models/other/infer: HTTP 404: .*this server "
                       r"has stub"):
        closed_loop(Endpoint(server.url, "other"), 1, duration_s=0.1)


def test_unreachable_server_with_several_clients():
    """Four clients of a server that has stopped: the connection error comes back, naming the
    URL, and no client is left waiting for the others."""
    with StubServer("stub", TIMING) as silent:
        url = silent.url
    with pytest.raises(ProfileError, match=f"{url}/v2/models/stub/infer: "):
        closed_loop(Endpoint(url, "stub", timeout_s=5), 4, duration_s=0.1)


def test_not_a_server_url():
    with pytest.raises(ProfileError, match="expected http://host:port"):
        closed_loop(Endpoint("grpc://127.0.0.1:1", "stub"), 1, duration_s=0.1)


def test_expected_model_only_where_it_holds():
    assert TIMING.expected_closed_loop(4) == (190, pytest.approx(4000 / 190))
    with pytest.raises(ValueError, match="1..4"):
        TIMING.expected_closed_loop(5)


def test_cli_endpoint_closed_and_open_loop(cli, server):
    """`planner profile endpoint` at 4 clients (a full batch: 190 ms, 21.1 rps) and 5 rps of
    Poisson arrivals; JSON rows in order of the loads asked for."""
    result = cli("profile", "endpoint", server.url, "--model", "stub", "--concurrency", "4",
                 "--duration", "1.5", "--rate", "5", "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = __import__("json").loads(result.stdout)
    assert [row["load"] for row in rows] == ["c=4", "5 rps"]
    assert_latency(rows[0]["p50_ms"], 190)
    assert_rate(rows[0]["throughput_rps"], 4000 / 190)
    assert rows[1]["requests"] > 0 and rows[1]["p50_ms"] >= TIMING.batch_ms(1) * 0.95


def test_cli_endpoint_stream_table(cli, server):
    result = cli("profile", "endpoint", server.url, "--model", "stub", "--protocol", "openai",
                 "--concurrency", "1", "--duration", "0.5", "--max-tokens", "4")
    assert result.exit_code == 0, result.stderr
    assert "ttft p50 ms" in result.stdout and "tokens per s" in result.stdout


def test_cli_endpoint_wrong_model_exit_2(cli, server):
    result = cli("profile", "endpoint", server.url, "--model", "nope", "--concurrency", "1",
                 "--duration", "0.2")
    assert result.exit_code == 2
    assert f"{server.url}/v2/models/nope/infer: HTTP 404" in result.stderr
