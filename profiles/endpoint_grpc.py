"""KServe v2 inference over gRPC (`inference.GRPCInferenceService`, as Triton and KServe serve
it): one channel per client, `ModelInfer` per request, and readiness from `ServerReady` and
`ModelReady`. The messages and stub are generated from the vendored protocol definition
(profiles/kserve_grpc); grpcio comes with the `profile` extra. Nothing here imports torch.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from profiles.errors import ProfileError

SCHEME = "grpc"
ITEM_BYTES = {"BOOL": 1, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8, "INT8": 1,
              "INT16": 2, "INT32": 4, "INT64": 8, "FP16": 2, "BF16": 2, "FP32": 4, "FP64": 8}
"""Bytes per element of the protocol's fixed-size datatypes, sent as raw input contents."""


def _modules():
    try:
        import grpc

        from profiles.kserve_grpc import open_inference_grpc_pb2 as messages
        from profiles.kserve_grpc import open_inference_grpc_pb2_grpc as services
    except ImportError as exc:
        raise ProfileError(f"gRPC needs grpcio and protobuf ({exc}): pip install "
                           "'placement-planner[profile]'") from None
    return grpc, messages, services


def target(url: str) -> str:
    """`grpc://host:port` as gRPC's `host:port`."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME or not parts.hostname or parts.port is None:
        raise ProfileError(f"{url}: expected grpc://host:port for --protocol kserve-v2-grpc")
    return f"{parts.hostname}:{parts.port}"


def _failure(url: str, call: str, error) -> ProfileError:
    code = error.code().name if hasattr(error, "code") and error.code() else "UNKNOWN"
    details = error.details() if hasattr(error, "details") else str(error)
    return ProfileError(f"{url} {call}: {code}: {details}")


class GrpcClient:
    """One channel to the server and the one request it sends, built once: a zero tensor of
    `[1, *shape]` in `datatype`, as raw input contents (BYTES as one empty string each)."""

    def __init__(self, url: str, model: str, shape: tuple[int, ...], datatype: str,
                 timeout_s: float):
        grpc, messages, services = _modules()
        self.url, self.timeout_s, self.grpc = url, timeout_s, grpc
        self.channel = grpc.insecure_channel(target(url))
        self.stub = services.GRPCInferenceServiceStub(self.channel)
        tensor = messages.ModelInferRequest.InferInputTensor(
            name="input-0", datatype=datatype, shape=[1, *shape])
        count = math.prod(shape)
        raw: list[bytes] = []
        if datatype == "BYTES":
            tensor.contents.bytes_contents.extend([b""] * count)
        elif datatype in ITEM_BYTES:
            raw = [bytes(ITEM_BYTES[datatype] * count)]
        else:
            raise ProfileError(f"--datatype {datatype}: not a KServe v2 datatype; one of "
                               + ", ".join([*ITEM_BYTES, "BYTES"]))
        self.request = messages.ModelInferRequest(model_name=model, inputs=[tensor],
                                                  raw_input_contents=raw)

    def infer(self) -> None:
        """One request, answered; the answer must hold outputs."""
        try:
            answer = self.stub.ModelInfer(self.request, timeout=self.timeout_s)
        except self.grpc.RpcError as error:
            raise _failure(self.url, "ModelInfer", error) from None
        if not answer.outputs:
            raise ProfileError(f"{self.url} ModelInfer: the answer has no outputs")

    def ready(self, model: str) -> str | None:
        """None when the server and the model are ready; else what it said."""
        _, messages, _ = _modules()
        try:
            if not self.stub.ServerReady(messages.ServerReadyRequest(),
                                         timeout=self.timeout_s).ready:
                return "ServerReady: false"
            if not self.stub.ModelReady(messages.ModelReadyRequest(name=model),
                                        timeout=self.timeout_s).ready:
                return f"ModelReady {model}: false"
        except self.grpc.RpcError as error:
            return str(_failure(self.url, "ServerReady", error))
        return None

    def close(self) -> None:
        self.channel.close()
