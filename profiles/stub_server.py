"""A small model server whose timing is known, for checking the endpoint profiler against it.

It speaks the KServe v2 inference protocol over HTTP (`POST /v2/models/{name}/infer`, with a
batcher: requests wait up to `max_delay_ms` for others, at most `max_batch` go together, and a
batch of n takes `base_ms + per_request_ms * n`) and the OpenAI-compatible completions API
(`POST /v1/completions`: the first token after `ttft_ms`, then one every `tpot_ms`, streamed as
server-sent events when asked, with the token counts last where `stream_options.include_usage`
asks; a prompt's tokens are its words). Being this simple, what a client should measure follows from
the numbers alone (`expected_closed_loop`), which is what makes it a yardstick.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Timing:
    base_ms: float = 80.0
    per_request_ms: float = 10.0
    max_batch: int = 4
    max_delay_ms: float = 20.0
    ttft_ms: float = 50.0
    tpot_ms: float = 20.0

    def batch_ms(self, size: int) -> float:
        return self.base_ms + self.per_request_ms * size

    def expected_closed_loop(self, concurrency: int) -> tuple[float, float]:
        """(latency ms, throughput rps) of `concurrency` clients, at most `max_batch`, sending
        back to back: their requests go as one batch, which waits the full delay unless it is
        full, then runs."""
        if not 1 <= concurrency <= self.max_batch:
            raise ValueError(f"concurrency {concurrency}: the model holds for 1..{self.max_batch}")
        wait_ms = 0.0 if concurrency == self.max_batch else self.max_delay_ms
        latency_ms = wait_ms + self.batch_ms(concurrency)
        return latency_ms, concurrency * 1000 / latency_ms


@dataclass
class _Pending:
    done: threading.Event
    size: int = 0  # the batch it ran in


class _Batcher(threading.Thread):
    def __init__(self, timing: Timing):
        super().__init__(daemon=True)
        self.timing = timing
        self.waiting: queue.Queue[_Pending | None] = queue.Queue()

    def run(self) -> None:
        while (first := self.waiting.get()) is not None:
            batch = [first]
            deadline = time.monotonic() + self.timing.max_delay_ms / 1000
            while len(batch) < self.timing.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = self.waiting.get(timeout=left)
                except queue.Empty:
                    break
                if item is None:
                    return
                batch.append(item)
            time.sleep(self.timing.batch_ms(len(batch)) / 1000)  # the model's work
            for item in batch:
                item.size = len(batch)
                item.done.set()

    def infer(self) -> int:
        pending = _Pending(threading.Event())
        self.waiting.put(pending)
        pending.done.wait()
        return pending.size


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as load generators expect
    disable_nagle_algorithm = True  # else a body written after its headers waits 40 ms for
    # the client's delayed ACK
    server: StubServer

    def log_message(self, format: str, *args: object) -> None:  # quiet: tests read stderr
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        """Readiness: KServe v2's, and the model list OpenAI-compatible servers give."""
        if self.path == "/v2/health/ready":
            self._json(200, {"ready": True})
        elif self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": self.server.model_name,
                                                         "object": "model"}]})
        else:
            self._json(404, {"error": f"no {self.path} on this server"})

    def do_POST(self) -> None:
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        except (ValueError, json.JSONDecodeError):
            self._json(400, {"error": "the body is not JSON"})
            return
        name = self.server.model_name
        if self.path == f"/v2/models/{name}/infer":
            self._infer(body)
        elif self.path == "/v1/completions" and body.get("model") == name:
            self._complete(body)
        else:
            self._json(404, {"error": f"no model at {self.path}; this server has {name}"})

    def _infer(self, body: dict) -> None:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            self._json(400, {"error": "`inputs` must be a non-empty list"})
            return
        size = self.server.batcher.infer()
        self._json(200, {"model_name": self.server.model_name, "id": body.get("id", ""),
                         "outputs": [{"name": "output-0", "shape": [1, 1], "datatype": "FP32",
                                      "data": [float(size)]}]})

    def _complete(self, body: dict) -> None:
        tokens = int(body.get("max_tokens", 16))
        timing = self.server.timing
        arrived = time.monotonic()

        def until_token(index: int) -> None:
            """Token `index` is due at a fixed time from arrival, so that the time spent
            writing earlier ones does not add up."""
            due = arrived + (timing.ttft_ms + timing.tpot_ms * index) / 1000
            time.sleep(max(due - time.monotonic(), 0.0))

        if not body.get("stream"):
            until_token(tokens - 1)
            self._json(200, {"object": "text_completion", "model": self.server.model_name,
                             "choices": [{"index": 0, "text": " x" * tokens,
                                          "finish_reason": "length"}],
                             "usage": {"completion_tokens": tokens}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")  # the body ends when the stream does
        self.end_headers()
        for index in range(tokens):
            until_token(index)
            event = {"object": "text_completion", "model": self.server.model_name,
                     "choices": [{"index": 0, "text": " x", "finish_reason":
                                  "length" if index == tokens - 1 else None}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": len(str(body.get("prompt", "")).split()),
                     "completion_tokens": tokens}
            self.wfile.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
                             .encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


class StubServer(ThreadingHTTPServer):
    """The server on `host:port` (port 0: any free one); `url` once bound. Use as a context
    manager, which serves in a background thread and stops on exit."""

    daemon_threads = True

    def __init__(self, model_name: str = "stub", timing: Timing = Timing(),
                 host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), _Handler)
        self.model_name = model_name
        self.timing = timing
        self.batcher = _Batcher(timing)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> StubServer:
        self.batcher.start()
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.batcher.waiting.put(None)
        self.server_close()
