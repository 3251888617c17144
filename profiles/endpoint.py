"""Load on a running model server over HTTP, as production clients send it.

Speaks the KServe v2 inference protocol (`POST /v2/models/{name}/infer`, served by Triton,
KServe and others; over gRPC, `ModelInfer` of `inference.GRPCInferenceService`, through
profiles.endpoint_grpc) and the OpenAI-compatible completions API (`POST /v1/completions`, served
by vLLM, SGLang and TGI), the latter streamed so that time to first token (TTFT) and time per
output token (TPOT) are seen as a client sees them. Closed loop: `c` clients each send their
next request when the last is answered, so the server's batcher and queue are in the numbers.
Open loop: requests at Poisson arrival times, each latency from its scheduled send time, so a
slow server cannot hide its queue (no coordinated omission). Nothing here imports torch.
"""

from __future__ import annotations

import http.client
import json
import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import numpy as np

from profiles.errors import ProfileError
from profiles.measure import _percentiles

Protocol = Literal["kserve-v2", "kserve-v2-grpc", "openai"]
Clock = Callable[[], float]


@dataclass(frozen=True)
class Endpoint:
    """A served model: where, which protocol, and what one request carries."""

    url: str  # http://host:port, or grpc://host:port for kserve-v2-grpc
    model: str
    protocol: Protocol = "kserve-v2"
    shape: tuple[int, ...] = (1,)  # KServe v2: one request's input shape, without the batch
    datatype: str = "FP32"  # KServe v2 tensor datatype (BOOL, INT8..64, UINT8..64, FP16/32/64,
    # BF16, BYTES)
    prompt: str = "Hello"  # completions
    max_tokens: int = 16  # completions: tokens to generate
    timeout_s: float = 60.0

    def path_and_body(self) -> tuple[str, bytes]:
        if self.protocol == "openai":
            body: dict = {"model": self.model, "prompt": self.prompt,
                          "max_tokens": self.max_tokens, "stream": True,
                          "stream_options": {"include_usage": True}}
            return "/v1/completions", json.dumps(body).encode()
        zero = 0.0 if self.datatype.startswith("FP") else 0
        body = {"inputs": [{"name": "input-0", "shape": [1, *self.shape],
                            "datatype": self.datatype,
                            "data": [zero] * math.prod(self.shape)}]}
        return f"/v2/models/{self.model}/infer", json.dumps(body).encode()


@dataclass(frozen=True)
class Answer:
    latency_s: float  # from sending (closed loop) or the scheduled time (open loop)
    ttft_s: float | None = None  # streaming: to the first token
    tpot_s: float | None = None  # streaming: mean time between later tokens
    tokens: int = 0
    prompt_tokens: int | None = None  # streaming: the prompt's tokens, where the server says


class _Client:
    """One connection, kept alive between requests where the server allows it."""

    def __init__(self, endpoint: Endpoint, clock: Clock):
        parts = urlsplit(endpoint.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ProfileError(f"{endpoint.url}: expected http://host:port (grpc://host:port "
                               "with --protocol kserve-v2-grpc)")
        self.endpoint, self.clock = endpoint, clock
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port or 80,
                                                     timeout=endpoint.timeout_s)
        self.path, self.body = endpoint.path_and_body()

    def send(self, since: float | None = None) -> Answer:
        """One request; latency counted from `since` (default: now)."""
        start = self.clock() if since is None else since
        try:
            self.connection.request("POST", self.path, body=self.body,
                                    headers={"Content-Type": "application/json"})
            response = self.connection.getresponse()
            if response.status != 200:
                detail = response.read()[:300].decode(errors="replace")
                raise ProfileError(f"{self.endpoint.url}{self.path}: HTTP {response.status}: "
                                   f"{detail}")
            if self.endpoint.protocol == "openai":
                return self._stream(response, start)
            answer = json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.connection.close()
            raise ProfileError(f"{self.endpoint.url}{self.path}: {exc}") from None
        if not isinstance(answer, dict) or not answer.get("outputs"):
            raise ProfileError(f"{self.endpoint.url}{self.path}: the answer has no `outputs`")
        return Answer(self.clock() - start)

    def _stream(self, response: http.client.HTTPResponse, start: float) -> Answer:
        """Server-sent events, one `data:` line per chunk of tokens, until `data: [DONE]`."""
        token_times = []
        prompt_tokens = None
        for line in response:
            text = line.decode().strip()
            if not text.startswith("data:"):
                continue
            payload = text[5:].strip()
            if payload == "[DONE]":
                break
            event = json.loads(payload)
            choices = event.get("choices") or [{}]
            if choices[0].get("text"):
                token_times.append(self.clock())
            usage = event.get("usage") or {}
            if isinstance(usage.get("prompt_tokens"), int):
                prompt_tokens = usage["prompt_tokens"]
        response.read()  # the rest, so the connection can be reused or is closed cleanly
        end = self.clock()
        if not token_times:
            raise ProfileError(f"{self.endpoint.url}{self.path}: the stream held no tokens")
        tpot = ((token_times[-1] - token_times[0]) / (len(token_times) - 1)
                if len(token_times) > 1 else None)
        return Answer(end - start, token_times[0] - start, tpot, len(token_times),
                      prompt_tokens)

    def close(self) -> None:
        self.connection.close()


class _GrpcClient:
    """One gRPC channel sending `ModelInfer`, timed as `_Client` times a request."""

    def __init__(self, endpoint: Endpoint, clock: Clock):
        from profiles.endpoint_grpc import GrpcClient

        self.clock = clock
        self.client = GrpcClient(endpoint.url, endpoint.model, endpoint.shape,
                                 endpoint.datatype, endpoint.timeout_s)

    def send(self, since: float | None = None) -> Answer:
        start = self.clock() if since is None else since
        self.client.infer()
        return Answer(self.clock() - start)

    def close(self) -> None:
        self.client.close()


def _client(endpoint: Endpoint, clock: Clock) -> _Client | _GrpcClient:
    if endpoint.protocol == "kserve-v2-grpc":
        return _GrpcClient(endpoint, clock)
    return _Client(endpoint, clock)


@dataclass(frozen=True)
class EndpointWindow:
    """What a client saw in one measurement: requests answered, throughput, latency
    percentiles, and for streams TTFT, TPOT and output tokens per second."""

    requests: int
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    ttft_p50_ms: float | None = None
    ttft_p99_ms: float | None = None
    tpot_p50_ms: float | None = None
    tokens_per_s: float | None = None
    tpot_p99_ms: float | None = None
    prompt_tokens: float | None = None  # the mean, where the server reported it


def window_of(answers: list[Answer], elapsed_s: float) -> EndpointWindow:
    if not answers:
        raise ProfileError("no request was answered in the window; lengthen it")
    p50, p95, p99 = _percentiles([a.latency_s for a in answers])
    elapsed_s = max(elapsed_s, 1e-9)
    streamed = [a for a in answers if a.ttft_s is not None]
    if not streamed:
        return EndpointWindow(len(answers), len(answers) / elapsed_s, p50, p95, p99)
    ttft = np.array([a.ttft_s for a in streamed]) * 1000
    tpot = [a.tpot_s * 1000 for a in streamed if a.tpot_s is not None]
    prompts = [a.prompt_tokens for a in streamed if a.prompt_tokens is not None]
    return EndpointWindow(len(answers), len(answers) / elapsed_s, p50, p95, p99,
                          float(np.percentile(ttft, 50)), float(np.percentile(ttft, 99)),
                          float(np.median(tpot)) if tpot else None,
                          sum(a.tokens for a in streamed) / elapsed_s,
                          float(np.percentile(tpot, 99)) if tpot else None,
                          float(np.mean(prompts)) if len(prompts) == len(streamed) else None)


def closed_loop(endpoint: Endpoint, concurrency: int, *, duration_s: float,
                clock: Clock = time.perf_counter) -> EndpointWindow:
    """`concurrency` clients, each on its own connection, send back to back for `duration_s`
    after one warm-up request each; a request counts if it was sent inside the window."""
    return window_of(*closed_loop_answers(endpoint, concurrency, duration_s=duration_s,
                                        clock=clock))


def closed_loop_answers(endpoint: Endpoint, concurrency: int, *, duration_s: float,
                        clock: Clock = time.perf_counter) -> tuple[list[Answer], float]:
    """The answers of one closed-loop window and its length in seconds (`closed_loop`)."""
    clients = [_client(endpoint, clock) for _ in range(concurrency)]
    ready = threading.Barrier(concurrency)
    window: dict[str, float] = {}

    def run(client: _Client | _GrpcClient) -> list[Answer]:
        try:
            client.send()
            if ready.wait() == 0:  # one thread, after every warm-up, opens the window
                window["start"] = clock()
                window["end"] = window["start"] + duration_s
            ready.wait()
        except threading.BrokenBarrierError:
            return []  # another client failed; its error is the one raised
        except BaseException:
            ready.abort()  # release the clients waiting for this one
            raise
        answers = []
        while clock() < window["end"]:
            answers.append(client.send())
        return answers

    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(run, client) for client in clients]
        try:
            answers = [a for future in futures for a in future.result()]
        finally:
            for client in clients:
                client.close()
    return answers, clock() - window["start"]


def open_loop(endpoint: Endpoint, rate_rps: float, *, duration_s: float, seed: int = 0,
              max_in_flight: int = 64, clock: Clock = time.perf_counter,
              sleep: Callable[[float], None] = time.sleep) -> EndpointWindow:
    """Requests at Poisson arrival times for `duration_s`, up to `max_in_flight` at once on
    their own connections; a request the client could not send on time still counts from its
    scheduled time, so the latency is never flattered."""
    rng = random.Random(seed)
    arrivals, t = [], rng.expovariate(rate_rps)
    while t < duration_s:
        arrivals.append(t)
        t += rng.expovariate(rate_rps)
    local = threading.local()
    connections: list[_Client | _GrpcClient] = []
    start = clock() + 0.05  # room to queue the first requests

    def send_at(offset_s: float) -> Answer:
        if not hasattr(local, "client"):
            local.client = _client(endpoint, clock)
            connections.append(local.client)
        scheduled = start + offset_s
        if (wait := scheduled - clock()) > 0:
            sleep(wait)
        return local.client.send(since=scheduled)

    with ThreadPoolExecutor(max_in_flight) as pool:
        try:
            answers = list(pool.map(send_at, arrivals))
        finally:
            for client in connections:
                client.close()
    return window_of(answers, clock() - start)


def _grpc_ready(endpoint: Endpoint) -> str | None:
    from profiles.endpoint_grpc import GrpcClient

    client = GrpcClient(endpoint.url, endpoint.model, endpoint.shape, endpoint.datatype,
                        timeout_s=5.0)
    try:
        return client.ready(endpoint.model)
    finally:
        client.close()


def ready_path(endpoint: Endpoint) -> str:
    """Where the server says it is ready: KServe v2's readiness, or for an OpenAI-compatible
    server the model list, which vLLM, SGLang and TGI serve once the model is loaded."""
    return "/v2/health/ready" if endpoint.protocol == "kserve-v2" else "/v1/models"


def wait_ready(endpoint: Endpoint, timeout_s: float, *, clock: Clock = time.monotonic,
               sleep: Callable[[float], None] = time.sleep, poll_s: float = 1.0) -> float:
    """Poll the server until it is ready, as a sidecar started beside it must while it loads
    the model (over gRPC: `ServerReady`, then `ModelReady`); the seconds waited, or an error
    naming the last answer after `timeout_s`."""
    started = clock()
    if endpoint.protocol == "kserve-v2-grpc":
        while (last := _grpc_ready(endpoint)) is not None:
            if clock() - started >= timeout_s:
                raise ProfileError(f"{endpoint.url}: not ready after {timeout_s:g} s ({last})")
            sleep(poll_s)
        return clock() - started
    parts = urlsplit(endpoint.url)
    if parts.scheme != "http" or not parts.hostname:
        raise ProfileError(f"{endpoint.url}: expected http://host:port")
    path = ready_path(endpoint)
    while True:
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80,
                                                timeout=max(poll_s, 1.0))
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                return clock() - started
            last = f"HTTP {response.status}"
        except (OSError, http.client.HTTPException) as exc:
            last = str(exc) or type(exc).__name__
        finally:
            connection.close()
        if clock() - started >= timeout_s:
            raise ProfileError(f"{endpoint.url}{path}: not ready after {timeout_s:g} s ({last})")
        sleep(poll_s)

