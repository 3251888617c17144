"""The stub server's model over KServe v2 gRPC: `ServerLive`, `ServerReady`, `ModelReady` and
`ModelInfer` of `inference.GRPCInferenceService`, each request through the same batcher and
timing as over HTTP (profiles.stub_server), so the same service-time model predicts it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc

from profiles.kserve_grpc import open_inference_grpc_pb2 as messages
from profiles.kserve_grpc import open_inference_grpc_pb2_grpc as services
from profiles.stub_server import Timing, _Batcher


class _Servicer(services.GRPCInferenceServiceServicer):
    def __init__(self, model_name: str, batcher: _Batcher):
        self.model_name, self.batcher = model_name, batcher

    def ServerLive(self, request, context):
        return messages.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        return messages.ServerReadyResponse(ready=True)

    def ModelReady(self, request, context):
        return messages.ModelReadyResponse(ready=request.name == self.model_name)

    def ModelInfer(self, request, context):
        if request.model_name != self.model_name:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"no model {request.model_name}; this server has {self.model_name}")
        if not request.inputs:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "`inputs` must not be empty")
        size = self.batcher.infer()
        output = messages.ModelInferResponse.InferOutputTensor(name="output-0", datatype="FP32",
                                                               shape=[1, 1])
        output.contents.fp32_contents.append(float(size))
        return messages.ModelInferResponse(model_name=self.model_name, id=request.id,
                                           outputs=[output])


class StubGrpcServer:
    """The server on `host:port` (port 0: any free one); `url` (grpc://host:port) once bound.
    A context manager: serves on entry, stops on exit. `workers` bounds the requests in
    flight, which wait in the batcher, so it must exceed the clients a test runs."""

    def __init__(self, model_name: str = "stub", timing: Timing | None = None,
                 host: str = "127.0.0.1", port: int = 0, workers: int = 32):
        self.batcher = _Batcher(timing or Timing())
        self.server = grpc.server(ThreadPoolExecutor(workers))
        services.add_GRPCInferenceServiceServicer_to_server(_Servicer(model_name, self.batcher),
                                                            self.server)
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        self.host = host

    @property
    def url(self) -> str:
        return f"grpc://{self.host}:{self.port}"

    def __enter__(self) -> StubGrpcServer:
        self.batcher.start()
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)
        self.batcher.waiting.put(None)
