"""Reference estimates of an LLM's generation per configuration: a roofline of the GPU type.

An engine step (continuous batching) takes the longer of reading what it needs from memory and
computing its tokens, plus `STEP_OVERHEAD_MS` for scheduling and kernel launches:

- decode (bandwidth-bound): a step of `c` sequences reads the weights once and each sequence's
  KV cache, and computes 2 x parameters FLOPs per sequence;
- prefill (compute-bound): n prompt tokens cost 2 x parameters x n FLOPs plus causal attention,
  2 x layers x n^2 x heads x head_dim, and at least one read of the weights.

Latencies at concurrency `c` (the sequences a replica holds at most):

- TPOT p99: a decode step at `c` with every sequence at the p95 context that also carries a
  prefill chunk (a new prompt joins every output_mean / c steps, so at least 1% of steps do);
- TTFT p99: the running step, then the prefill of a p95 prompt;
- end-to-end p99: TTFT p99 plus p95 output tokens of plain decode steps at the p95 context;
  p50 likewise with the means;
- throughput: c / (prefill of a mean prompt + mean output tokens of steps at the mean context).

Tensor parallelism multiplies bandwidth and compute by the degree at `TENSOR_PARALLEL_EFFICIENCY`.
FP8 weights use the GPU's 8-bit tensor cores where it has them (else 16-bit); INT4 weights are
dequantised to 16-bit for the math, so only the bytes read shrink.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiles.llm import PRECISION_BYTES, STEP_TOKENS, Architecture
from profiles.reference import (
    BANDWIDTH_EFFICIENCY,
    COMPUTE_EFFICIENCY,
    TENSOR_PARALLEL_EFFICIENCY,
    GpuSpec,
)

STEP_OVERHEAD_MS = 1.0


@dataclass(frozen=True)
class Tokens:
    """Tokens per request: prompt and output, mean and 95th percentile."""

    input_mean: int
    input_p95: int
    output_mean: int
    output_p95: int


@dataclass(frozen=True)
class GenerationPoint:
    """One configuration at one concurrency."""

    concurrency: int
    ttft_p99_ms: float
    tpot_p99_ms: float
    p50_ms: float  # end to end
    p99_ms: float
    throughput_rps: float
    prefill_tokens_per_s: float
    decode_tokens_per_s: float


@dataclass(frozen=True)
class _Roofline:
    arch: Architecture
    parameters: int
    weight_bytes: float
    flops_per_s: float
    bytes_per_s: float

    def step_s(self, sequences: int, context: float, prefill_tokens: int = 0) -> float:
        """One engine step: `sequences` decoding at `context` tokens each, plus a prefill
        chunk of `prefill_tokens`."""
        read = self.weight_bytes + sequences * context * self.arch.kv_bytes_per_token()
        heads = self.arch.heads * self.arch.dim_per_head
        flops = (2 * self.parameters * (sequences + prefill_tokens)
                 + 2 * self.arch.layers * prefill_tokens ** 2 * heads)
        return max(read / self.bytes_per_s, flops / self.flops_per_s) + STEP_OVERHEAD_MS / 1000

    def prefill_s(self, tokens: int) -> float:
        return self.step_s(0, 0, tokens)


def _roofline(arch: Architecture, precision: str, tensor_parallel: int,
              gpu: GpuSpec) -> _Roofline:
    tflops = gpu.tflops_16bit
    if precision == "fp8" and gpu.tflops_8bit:
        tflops = gpu.tflops_8bit
    scale = tensor_parallel * (TENSOR_PARALLEL_EFFICIENCY if tensor_parallel > 1 else 1.0)
    parameters = arch.parameter_count()
    return _Roofline(arch, parameters, parameters * PRECISION_BYTES[precision],
                     tflops * 1e12 * COMPUTE_EFFICIENCY * scale,
                     gpu.bandwidth_gb_s * 1e9 * BANDWIDTH_EFFICIENCY * scale)


def estimate(arch: Architecture, precision: str, tensor_parallel: int, gpu: GpuSpec,
             tokens: Tokens, concurrency: int) -> GenerationPoint:
    """The roofline's latencies and throughput of one replica holding `concurrency`
    sequences."""
    roof = _roofline(arch, precision, tensor_parallel, gpu)
    c = concurrency
    context_p95 = tokens.input_p95 + tokens.output_p95
    context_mean = tokens.input_mean + tokens.output_mean / 2
    step_p95 = roof.step_s(c, context_p95)
    chunk = min(tokens.input_p95, STEP_TOKENS)
    tpot_p99 = roof.step_s(c, context_p95, chunk)
    ttft_p99 = tpot_p99 + roof.prefill_s(tokens.input_p95)
    step_mean = roof.step_s(c, context_mean)
    e2e_mean = roof.prefill_s(tokens.input_mean) + tokens.output_mean * step_mean
    return GenerationPoint(
        concurrency=c, ttft_p99_ms=1000 * ttft_p99, tpot_p99_ms=1000 * tpot_p99,
        p50_ms=1000 * e2e_mean, p99_ms=1000 * (ttft_p99 + tokens.output_p95 * step_p95),
        throughput_rps=c / e2e_mean,
        prefill_tokens_per_s=STEP_TOKENS / roof.prefill_s(STEP_TOKENS),
        decode_tokens_per_s=c / step_mean)


def basis(gpu: GpuSpec, precision: str, tensor_parallel: int) -> str:
    """What an estimate rests on, for the plan's reasons."""
    tflops = gpu.tflops_8bit if precision == "fp8" and gpu.tflops_8bit else gpu.tflops_16bit
    bits = "8-bit" if tflops != gpu.tflops_16bit else "16-bit"
    text = (f"roofline of {gpu.name}: {gpu.bandwidth_gb_s:g} GB/s at "
            f"{BANDWIDTH_EFFICIENCY:.0%}, {tflops:g} TFLOP/s {bits} at "
            f"{COMPUTE_EFFICIENCY:.0%}")
    if tensor_parallel > 1:
        text += f", over {tensor_parallel} GPUs at {TENSOR_PARALLEL_EFFICIENCY:.0%} scaling"
    return text
