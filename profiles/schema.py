"""The profile file: `profiles/<model>/<gpu-type>.yaml`, one per model and GPU type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROFILE_API_VERSION: Final = "planner/v1"

# Physical ceilings for the numbers in every file format: anything beyond them is a typo or an
# attack, and refusing it at load keeps every derived integer far inside the solver's 64 bits.
MAX_MIB: Final = 2**40  # memory in MiB: one exbibyte
MAX_RPS: Final = 1e9  # requests per second of one model
MIN_THROUGHPUT_RPS: Final = 1e-3  # one request per 1,000 s; less is a unit mistake
MAX_MS: Final = 1e9  # milliseconds: eleven days
MAX_COUNT: Final = 1_000_000  # concurrency levels, queue slots, repetitions
CPU_DEVICE: Final = "cpu"  # the GPU type a profile measured without a GPU is filed under

MiB = Annotated[float, Field(ge=0, le=MAX_MIB)]
PositiveMiB = Annotated[float, Field(gt=0, le=MAX_MIB)]
Throughput = Annotated[float, Field(ge=MIN_THROUGHPUT_RPS, le=MAX_RPS)]
Millis = Annotated[float, Field(gt=0, le=MAX_MS)]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]


class Strict(BaseModel):
    """The base of every file format the planner reads or writes: unknown keys are errors (a
    misspelt key must not be silently ignored) and values are immutable once loaded. A field's
    docstring is its description, in the JSON Schemas and the registry reference. It lives
    here, in the bottom layer, so that profiles, the registry and the plan file share it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              use_attribute_docstrings=True,
                              allow_inf_nan=False)  # every number finite: no .inf or .nan

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Self:
        """A copy, changed by `update`. Values derived from the fields and kept once worked
        out (`functools.cached_property`, which pydantic keeps beside the fields) are left
        behind when `update` changes fields: carried over, they would describe the original."""
        copied = super().model_copy(update=update, deep=deep)
        if update:
            for key in set(copied.__dict__) - set(type(self).model_fields):
                del copied.__dict__[key]
        return copied


class InputSpec(Strict):
    """One request's input: its shape (without the batch) and dtype; integers in [low, high)."""

    shape: list[Count]
    """One request's shape, without the batch dimension."""
    dtype: Literal["int64", "int32", "float32", "float16", "bfloat16"] = "float32"
    """The input tensor's dtype."""
    low: int = 0
    """Integer inputs: the lowest value (inclusive)."""
    high: int | None = None
    """Integer inputs: the highest value (exclusive), such as the vocabulary size."""


class Source(Strict):
    """Where the profiler gets a model (a model file's `source`): a `module:function` factory
    returning a torch.nn.Module, or a TorchScript file, and what one request looks like."""

    factory: Annotated[str, Field(pattern=r"^[\w.]+:\w+$")] | None = None
    """`module:function` returning a torch.nn.Module."""
    torchscript: str | None = None
    """Path of a TorchScript file, instead of `factory`."""
    kwargs: dict[str, int | float | str | bool] = {}
    """Keyword arguments of the factory."""
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    """The dtype the model's weights are cast to."""
    input: InputSpec
    """What one request looks like."""

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        if (self.factory is None) == (self.torchscript is None):
            raise ValueError("give exactly one of `factory` (module:function) or `torchscript`")
        return self


class Environment(Strict):
    backend: Literal["cuda", "cpu", "reference", "server"]
    """`cuda` or `cpu`: measured there; `reference`: an estimate; `server`: measured through
    a running server whose device the profiler could not read."""
    device_name: str = ""
    """The device's name."""
    device_uuid: str = ""
    """The device's UUID."""
    driver_version: str = ""
    """The NVIDIA driver's version."""
    cuda_version: str = ""
    """The CUDA version torch was built with."""
    torch_version: str = ""
    """Torch's version."""
    host: str = ""
    """The machine's name."""
    date: str = ""
    """When the profile was measured (ISO 8601)."""


class Settings(Strict):
    concurrency: list[Count] = []
    """The concurrency levels measured."""
    window_s: Annotated[float, Field(gt=0, le=MAX_MS)] | None = None
    """Length of one measurement window."""
    max_windows: Count | None = None
    """Windows per level at most."""
    stability_tolerance: Annotated[float, Field(gt=0, le=MAX_COUNT)] | None = None
    """Relative spread of the last windows under which a point is stable."""
    warmup_requests: Annotated[int, Field(ge=0, le=MAX_COUNT)] | None = None
    """Requests sent before measuring."""
    cpu_threads: Count | None = None
    """Torch's CPU threads."""
    mode: Literal["closed-loop", "open-loop"] = "closed-loop"
    """`closed-loop`: fixed requests in flight; `open-loop`: Poisson arrivals."""
    max_time_s: Annotated[float, Field(gt=0, le=MAX_MS)] | None = None
    """The time budget of the whole measurement (every level and the rate search, after
    loading); levels share it, with windows shortened to fit."""
    input_tokens: Count | None = None
    """Generation: prompt tokens of every sequence."""
    output_tokens: Count | None = None
    """Generation: tokens generated per sequence."""
    rounds: Count | None = None
    """Generation: measured rounds per level, after one warm-up round."""
    protocol: Literal["kserve-v2", "kserve-v2-grpc", "openai"] | None = None
    """Measured through a running server over this protocol (`planner profile endpoint`):
    KServe v2 over HTTP or gRPC, or streamed OpenAI completions; absent: in-process torch."""


MemoryMethod = Literal["nvml-process", "nvml-device", "torch-reserved", "host-rss", "stated"]
MEMORY_METHODS: tuple[str, ...] = get_args(MemoryMethod)  # best first


class Memory(Strict):
    """Memory layers in MiB. `kind: host` marks CPU measurements, which are not VRAM."""

    kind: Literal["device", "host"] = "device"
    """`device`: GPU memory; `host`: a CPU measurement's resident memory, not VRAM."""
    measured_by: MemoryMethod | None = None
    """How the points' peak memory was read (the weakest method any point needed):
    `nvml-process` NVML's figure for the profiler's own process, CUDA context included (found
    through its PID namespace); `nvml-device` the device's used memory, the GPU or MIG slice
    being the profiler's alone while NVML gives no figure per process; `torch-reserved` a
    fallback, torch's reserved peak without the CUDA context, as NVML could not attribute a
    process to the profiler; `host-rss` the peak resident set of a CPU measurement; `stated`
    given by hand (`planner profile endpoint --memory-mib`) where no device was readable: not
    a measurement. Through a server, `nvml-process` and `nvml-device` are the server's
    processes and its device."""
    weights_mib: MiB | None = None
    """The model's weights; absent when measured through a server, which does not say."""
    cuda_context_mib: MiB | None = None
    """The CUDA context of the serving process."""
    peak_allocated_mib: MiB | None = None
    """Torch's peak allocated memory."""
    peak_reserved_mib: MiB | None = None
    """Torch's peak reserved memory."""
    process_mib: MiB | None = None
    """The process's own device memory (NVML), CUDA context included; absent when NVML
    cannot attribute a process to the profiler (never 0 for that)."""
    device_used_before_mib: MiB | None = None
    """Memory in use on the device before loading."""
    device_used_after_mib: MiB | None = None
    """Memory in use on the device after measuring."""


class Point(Strict):
    concurrency: Count
    """Requests in flight."""
    throughput_rps: Throughput
    """Requests served per second."""
    p50_ms: Millis
    """Median latency."""
    p95_ms: Millis
    """95th percentile latency."""
    p99_ms: Millis
    """99th percentile latency; compared with the model's SLO."""
    peak_memory_mib: PositiveMiB
    """Peak memory at this concurrency; the planner packs on it."""
    stable: bool = True
    """Whether the last windows agreed within the tolerance."""
    cut_short: bool = False
    """The time budget ran out before the windows agreed (so not `stable`)."""
    beyond_limit: bool = False
    """Measured above the model's `limits.max_concurrency` on request, to show what raising
    the limit would buy; the planner does not plan from it."""

    @model_validator(mode="after")
    def _ordered_percentiles(self) -> Point:
        if not self.p50_ms <= self.p95_ms <= self.p99_ms:
            raise ValueError("latency percentiles must satisfy p50_ms <= p95_ms <= p99_ms")
        return self


class RateSearch(Strict):
    """Open-loop result: the highest Poisson arrival rate whose p99 met the SLO."""

    slo_p99_ms: Millis
    """The SLO the search met."""
    rate_rps: Annotated[float, Field(ge=0, le=MAX_RPS)]
    """The highest arrival rate whose p99 met it."""
    p50_ms: float | None = None
    """Median latency at that rate."""
    p95_ms: float | None = None
    """95th percentile latency at that rate."""
    p99_ms: float | None = None
    """99th percentile latency at that rate."""
    cut_short: bool = False
    """The time budget ended the search before it converged."""
    reason: str = ""
    """Why no rate met the SLO, when `rate_rps` is 0."""


class GenerationPoint(Strict):
    """A generating model at one concurrency: its sequences prefilled together, then decoded
    one token per step with a KV cache."""

    concurrency: Count
    """Sequences in flight."""
    ttft_p50_ms: Millis
    """Median time to first token (the prefill)."""
    ttft_p99_ms: Millis
    """99th percentile time to first token."""
    tpot_p50_ms: Annotated[float, Field(ge=0, le=MAX_MS)]
    """Median time per output token (one decode step)."""
    tpot_p99_ms: Annotated[float, Field(ge=0, le=MAX_MS)]
    """99th percentile time per output token."""
    prefill_tokens_per_s: Annotated[float, Field(gt=0, le=1e12)]
    """Prompt tokens prefilled per second."""
    decode_tokens_per_s: Annotated[float, Field(gt=0, le=1e12)]
    """Tokens generated per second over all sequences."""
    peak_memory_mib: PositiveMiB
    """Peak memory with the KV cache of this many sequences."""


class Profile(Strict):
    api_version: Literal["planner/v1"] = Field(PROFILE_API_VERSION, alias="apiVersion")
    """The file format's version."""
    kind: Literal["ModelProfile"] = "ModelProfile"
    """The file's kind."""
    model: str
    """The model measured (its folder's name)."""
    gpu_type: str
    """The GPU type (a key of cluster.yaml's `gpu_types`; the file's stem)."""
    method: Literal["measured", "reference"]
    """`measured` on the device, or `reference`: an estimate that states its basis."""
    basis: str = ""
    """How a reference profile was estimated (required for `reference`)."""
    environment: Environment
    """Where it was measured."""
    settings: Settings = Settings()
    """How it was measured."""
    memory: Memory
    """The memory layers."""
    load_time_s: Annotated[float, Field(ge=0, le=MAX_MS)] | None = None
    """Cold-start time to load the model."""
    warnings: list[str] = []
    """What the profiler noticed while measuring."""
    rate_search: RateSearch | None = None
    """The open-loop result, when asked for."""
    points: list[Point] = Field(min_length=1)
    """One per concurrency level, in increasing order."""
    generation: list[GenerationPoint] = []
    """A generating model's tokens per concurrency level (`points` then hold its requests)."""


    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if self.method == "reference" and not self.basis.strip():
            raise ValueError("a reference profile must state its `basis` "
                             "(parameter count, dtype, published benchmark)")
        levels = [p.concurrency for p in self.points]
        if levels != sorted(set(levels)):
            raise ValueError("points must have distinct concurrency levels in increasing order")
        return self
