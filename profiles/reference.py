"""Reference profiles: a roofline estimate for GPU types nobody has measured the model on yet.

A reference profile is a stand-in until `planner profile` measures the model on that GPU, and it
says so (`method: reference`) and states its basis. Each request is one batch slot: a batch of
`c` requests takes the longer of reading the weights once and computing `c` requests, plus a
fixed overhead. Generating models (the `llm` kind) are estimated in tokens instead
(`profiles.generation`), from the GPU figures kept here.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiles.schema import Environment, Memory, Point, Profile, Settings

MIB = 2**20


@dataclass(frozen=True)
class GpuSpec:
    """Datasheet figures: memory bandwidth, dense 16-bit, 32-bit and FP8 tensor throughput
    (`tflops_8bit` 0 where the GPU has no FP8 tensor cores)."""

    name: str
    bandwidth_gb_s: float
    tflops_16bit: float
    tflops_32bit: float
    cuda_context_mib: float
    tflops_8bit: float = 0.0


# NVIDIA datasheets (dense, without sparsity): L4, T4, A100 80GB SXM, H100 80GB SXM.
GPU_SPECS: dict[str, GpuSpec] = {
    "l4": GpuSpec("NVIDIA L4", 300, 121, 30.3, 420, tflops_8bit=242),
    "t4": GpuSpec("NVIDIA T4", 320, 65, 8.1, 380),
    "a100-80gb": GpuSpec("NVIDIA A100 80GB SXM", 2039, 312, 19.5, 520),
    "h100-80gb": GpuSpec("NVIDIA H100 80GB SXM", 3350, 989, 67, 560, tflops_8bit=1979),
}

# MIG slices of the A100 80GB (NVIDIA's MIG user guide): a slice gets its sevenths of the SMs
# and its eighths of the memory (and so of the memory bandwidth).
A100_MIG_SLICES = {"1g.10gb": (1, 1), "2g.20gb": (2, 2), "3g.40gb": (3, 4), "4g.40gb": (4, 4),
                   "7g.80gb": (7, 8)}
for _name, (_sevenths, _eighths) in A100_MIG_SLICES.items():
    _whole = GPU_SPECS["a100-80gb"]
    GPU_SPECS[f"a100-80gb-{_name}"] = GpuSpec(
        f"{_whole.name} MIG {_name}", _whole.bandwidth_gb_s * _eighths / 8,
        _whole.tflops_16bit * _sevenths / 7, _whole.tflops_32bit * _sevenths / 7,
        _whole.cuda_context_mib, _whole.tflops_8bit * _sevenths / 7)

COMPUTE_EFFICIENCY = 0.35
BANDWIDTH_EFFICIENCY = 0.7
OVERHEAD_MS = 1.5
P95_FACTOR = 1.25
P99_FACTOR = 1.5
# A cold load: the weights read from the model repository at one object-storage stream's rate
# (S3 serves roughly 100-300 MB/s per connection) and copied to the GPU (PCIe, far faster),
# plus the server's fixed work to build the model and answer a warm-up request.
LOAD_READ_MIB_S = 250.0
LOAD_FIXED_S = 2.0


@dataclass(frozen=True)
class Workload:
    """What one request costs the model, from its architecture."""

    parameters: int
    bytes_per_parameter: int
    flops_per_request: float
    activation_mib_per_request: float
    gpus: int = 1


TENSOR_PARALLEL_EFFICIENCY = 0.85


def _latency_ms(work: Workload, gpu: GpuSpec, concurrency: int) -> float:
    tflops = gpu.tflops_16bit if work.bytes_per_parameter <= 2 else gpu.tflops_32bit
    scale = 1.0 if work.gpus == 1 else work.gpus * TENSOR_PARALLEL_EFFICIENCY
    compute_flops_per_s = tflops * 1e12 * COMPUTE_EFFICIENCY * scale
    bytes_per_s = gpu.bandwidth_gb_s * 1e9 * BANDWIDTH_EFFICIENCY * scale
    weight_bytes = work.parameters * work.bytes_per_parameter
    forward_s = max(weight_bytes / bytes_per_s,
                    concurrency * work.flops_per_request / compute_flops_per_s)
    return OVERHEAD_MS + 1000 * forward_s


def load_time_s(weights_mib: float) -> float:
    """A cold load of `weights_mib` of weights, to a tenth of a second."""
    return round(LOAD_FIXED_S + weights_mib / LOAD_READ_MIB_S, 1)


def reference_profile(model: str, gpu_type: str, work: Workload, concurrency: list[int],
                      basis: str) -> Profile:
    """A profile estimated from `work` on `gpu_type`.

    Memory is the replica's total over its GPUs, a CUDA context on each included.
    """
    gpu = GPU_SPECS[gpu_type]
    weights_mib = work.parameters * work.bytes_per_parameter / MIB
    points = []
    for c in concurrency:
        latency_ms = _latency_ms(work, gpu, c)
        memory_mib = (work.gpus * gpu.cuda_context_mib + weights_mib
                      + c * work.activation_mib_per_request)
        points.append(Point(concurrency=c, throughput_rps=round(1000 * c / latency_ms, 2),
                            p50_ms=round(latency_ms, 2), p95_ms=round(latency_ms * P95_FACTOR, 2),
                            p99_ms=round(latency_ms * P99_FACTOR, 2),
                            peak_memory_mib=round(memory_mib), stable=True))
    return Profile(
        model=model, gpu_type=gpu_type, method="reference",
        basis=(f"{work.parameters / 1e6:,.1f}M parameters at {work.bytes_per_parameter} bytes "
               f"each, {work.flops_per_request / 1e9:,.2f} GFLOP per request; {basis}; roofline "
               f"on {gpu.name} ({gpu.bandwidth_gb_s:g} GB/s, {gpu.tflops_16bit:g} TFLOP/s 16-bit "
               f"dense) at {COMPUTE_EFFICIENCY:.0%} compute and {BANDWIDTH_EFFICIENCY:.0%} "
               f"bandwidth efficiency, CUDA context {gpu.cuda_context_mib:g} MiB per GPU"
               + (f", tensor-parallel over {work.gpus} GPUs at "
                  f"{TENSOR_PARALLEL_EFFICIENCY:.0%} scaling" if work.gpus > 1 else "")
               + f"; load time: weights read at {LOAD_READ_MIB_S:g} MiB/s plus "
                 f"{LOAD_FIXED_S:g} s to build and warm the model"),
        environment=Environment(backend="reference", device_name=gpu.name),
        settings=Settings(concurrency=concurrency),
        memory=Memory(kind="device", weights_mib=round(weights_mib, 1),
                      cuda_context_mib=gpu.cuda_context_mib),
        load_time_s=load_time_s(weights_mib),
        points=points,
    )
