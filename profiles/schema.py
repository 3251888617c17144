"""The profile file: `profiles/<model>/<gpu-type>.yaml`, one per model and GPU type."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROFILE_API_VERSION: Final = "planner/v1"


class Strict(BaseModel):
    """The base of every file format the planner reads or writes: unknown keys are errors (a
    misspelt key must not be silently ignored) and values are immutable once loaded. It lives
    here, in the bottom layer, so that profiles, the registry and the plan file share it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class InputSpec(Strict):
    """One request's input: its shape (without the batch) and dtype; integers in [low, high)."""

    shape: list[Annotated[int, Field(ge=1)]]
    dtype: Literal["int64", "int32", "float32", "float16", "bfloat16"] = "float32"
    low: int = 0
    high: int | None = None


class Source(Strict):
    """Where the profiler gets a model (a model file's `source`): a `module:function` factory
    returning a torch.nn.Module, or a TorchScript file, and what one request looks like."""

    factory: Annotated[str, Field(pattern=r"^[\w.]+:\w+$")] | None = None
    torchscript: str | None = None
    kwargs: dict[str, int | float | str | bool] = {}
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    input: InputSpec

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        if (self.factory is None) == (self.torchscript is None):
            raise ValueError("give exactly one of `factory` (module:function) or `torchscript`")
        return self


class Environment(Strict):
    backend: Literal["cuda", "cpu", "reference"]
    device_name: str = ""
    device_uuid: str = ""
    driver_version: str = ""
    cuda_version: str = ""
    torch_version: str = ""
    host: str = ""
    date: str = ""


class Settings(Strict):
    concurrency: list[Annotated[int, Field(ge=1)]] = []
    window_s: Annotated[float, Field(gt=0)] | None = None
    max_windows: Annotated[int, Field(ge=1)] | None = None
    stability_tolerance: Annotated[float, Field(gt=0)] | None = None
    warmup_requests: Annotated[int, Field(ge=0)] | None = None
    cpu_threads: Annotated[int, Field(ge=1)] | None = None
    mode: Literal["closed-loop", "open-loop"] = "closed-loop"


class Memory(Strict):
    """Memory layers in MiB. `kind: host` marks CPU measurements, which are not VRAM."""

    kind: Literal["device", "host"] = "device"
    weights_mib: Annotated[float, Field(ge=0)]
    cuda_context_mib: Annotated[float, Field(ge=0)] | None = None
    peak_allocated_mib: Annotated[float, Field(ge=0)] | None = None
    peak_reserved_mib: Annotated[float, Field(ge=0)] | None = None
    process_mib: Annotated[float, Field(ge=0)] | None = None
    device_used_before_mib: Annotated[float, Field(ge=0)] | None = None
    device_used_after_mib: Annotated[float, Field(ge=0)] | None = None


class Point(Strict):
    concurrency: Annotated[int, Field(ge=1)]
    throughput_rps: Annotated[float, Field(gt=0)]
    p50_ms: Annotated[float, Field(gt=0)]
    p95_ms: Annotated[float, Field(gt=0)]
    p99_ms: Annotated[float, Field(gt=0)]
    peak_memory_mib: Annotated[float, Field(gt=0)]
    stable: bool = True

    @model_validator(mode="after")
    def _ordered_percentiles(self) -> Point:
        if not self.p50_ms <= self.p95_ms <= self.p99_ms:
            raise ValueError("latency percentiles must satisfy p50_ms <= p95_ms <= p99_ms")
        return self


class RateSearch(Strict):
    """Open-loop result: the highest Poisson arrival rate whose p99 met the SLO."""

    slo_p99_ms: Annotated[float, Field(gt=0)]
    rate_rps: Annotated[float, Field(ge=0)]
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class Profile(Strict):
    api_version: Literal["planner/v1"] = Field(PROFILE_API_VERSION, alias="apiVersion")
    kind: Literal["ModelProfile"] = "ModelProfile"
    model: str
    gpu_type: str
    method: Literal["measured", "reference"]
    basis: str = ""
    environment: Environment
    settings: Settings = Settings()
    memory: Memory
    load_time_s: Annotated[float, Field(ge=0)] | None = None
    warnings: list[str] = []
    rate_search: RateSearch | None = None
    points: list[Point] = Field(min_length=1)


    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if self.method == "reference" and not self.basis.strip():
            raise ValueError("a reference profile must state its `basis` "
                             "(parameter count, dtype, published benchmark)")
        levels = [p.concurrency for p in self.points]
        if levels != sorted(set(levels)):
            raise ValueError("points must have distinct concurrency levels in increasing order")
        return self
