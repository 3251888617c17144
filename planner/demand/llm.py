"""An LLM's candidate configurations in one pool, each as a curve the sharing model reads.

For every TP degree and weight precision the pool allows (`planner.rules.llm`), the roofline
of the pool's GPU type (`profiles.generation`) gives, per concurrency level (powers of two up
to `limits.max_concurrency`), TTFT and TPOT at the 99th percentile, the end-to-end latency and
the throughput in requests; memory is the engine's allocation with every sequence at
`max_context_tokens` (`profiles.llm`). A measured generation profile on the GPU type replaces
the roofline for the configuration it covers (TP 1 at 16 bits), and each candidate says which
it rests on. Levels that miss the TTFT or TPOT SLO alone are dropped; what is left is a
profile, and derivation chooses the operating point on it as for any model, checking TTFT and
TPOT again as sharing stretches them. A GPU type without datasheet figures offers no candidate
but the measured one.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.rules.llm import architecture, cuda_context_mib, degrees, gpu_spec, precisions
from planner.schemas import ModelSpec, Pool
from profiles.generation import GenerationPoint, Tokens, basis, estimate
from profiles.llm import memory_per_gpu
from profiles.reference import GpuSpec
from profiles.schema import Environment, Memory, Point, Profile, Settings


@dataclass(frozen=True)
class LlmConfig:
    """The configuration a replica runs: what the engine is told, and its latencies."""

    tensor_parallel: int
    precision: str
    max_num_seqs: int
    max_model_len: int
    step_tokens: int
    ttft_p99_ms: float
    tpot_p99_ms: float
    gpu_memory_utilization: float = 0.0  # of the device (GPU or MIG slice), set once placed


@dataclass(frozen=True)
class Candidate:
    """One configuration: the model as it runs there, its curve, or why it has none."""

    tensor_parallel: int
    precision: str
    spec: ModelSpec  # gpus_per_replica = the TP degree
    profile: Profile | None
    generation: dict[int, GenerationPoint]  # by concurrency, the levels that meet TTFT/TPOT
    source: str  # what its speeds rest on: "measured" (a generation profile) or "roofline"
    failure: str | None = None

    @property
    def label(self) -> str:
        return f"TP {self.tensor_parallel} {self.precision} ({self.source})"


def levels(model: ModelSpec) -> list[int]:
    return [2**i for i in range(21) if 2**i <= model.limits.max_concurrency]


def _tokens(model: ModelSpec) -> Tokens:
    assert model.llm is not None
    return Tokens(model.llm.input_tokens.mean, model.llm.input_tokens.p95,
                  model.llm.output_tokens.mean, model.llm.output_tokens.p95)


def _measured_speeds(model: ModelSpec, measured: Profile) -> dict[int, GenerationPoint]:
    """A measured generation profile's levels within `limits.max_concurrency`."""
    requests = {p.concurrency: p for p in measured.points if p.stable}
    return {g.concurrency: GenerationPoint(
        concurrency=g.concurrency, ttft_p99_ms=g.ttft_p99_ms, tpot_p99_ms=g.tpot_p99_ms,
        p50_ms=requests[g.concurrency].p50_ms, p99_ms=requests[g.concurrency].p99_ms,
        throughput_rps=requests[g.concurrency].throughput_rps,
        prefill_tokens_per_s=g.prefill_tokens_per_s, decode_tokens_per_s=g.decode_tokens_per_s)
        for g in measured.generation
        if g.concurrency in requests and g.concurrency <= model.limits.max_concurrency}


def _covered(measured: Profile | None, degree: int, precision: str) -> bool:
    """Whether a measured generation profile speaks for this configuration: it was measured
    on one GPU at 16 bits, so it covers TP 1 bf16 only; every other configuration stays on
    the roofline."""
    return measured is not None and degree == 1 and precision == "bf16"


def _speeds(model: ModelSpec, precision: str, degree: int, gpu: GpuSpec | None, gpu_type: str,
            measured: Profile | None) -> tuple[dict[int, GenerationPoint], str, str] | str:
    """Each level's latencies and throughput, with their method and basis: measured where a
    measured generation profile covers the configuration, else the roofline's."""
    if measured is not None and _covered(measured, degree, precision):
        return (_measured_speeds(model, measured), "measured",
                f"measured on {measured.environment.device_name or gpu_type}; memory as the "
                "engine allocates it at max_context_tokens")
    if gpu is None:
        return f"no datasheet figures for {gpu_type} to estimate from, and no measured profile"
    return ({c: estimate(architecture(model), precision, degree, gpu, _tokens(model), c)
             for c in levels(model)}, "reference", basis(gpu, precision, degree))


def candidates(model: ModelSpec, pool: Pool, limit_mib: int, gpu_type: str | None = None,
               measured: Profile | None = None) -> list[Candidate]:
    """Every configuration of `model` in `pool` (whose replicas may use `limit_mib` per GPU),
    fewest GPUs and bytes first; on `gpu_type` when given (a MIG slice's), else the pool's;
    from the `measured` generation profile where it applies."""
    assert model.llm is not None
    gpu_type = gpu_type or pool.gpu_type
    assert gpu_type is not None  # a CPU pool never takes a model with GPUs
    gpu = gpu_spec(gpu_type)
    arch = architecture(model)
    slo = model.llm.slo
    context = cuda_context_mib(gpu_type)
    found = []
    for degree in degrees(model, pool):
        spec = model.model_copy(update={"gpus_per_replica": degree})
        for precision in precisions(model):
            source = "measured" if _covered(measured, degree, precision) else "roofline"
            one = memory_per_gpu(arch, precision, degree, 1, model.llm.max_context_tokens,
                                 context)
            if one.per_gpu_mib > limit_mib:
                found.append(Candidate(degree, precision, spec, None, {}, source,
                                       f"one sequence of {model.llm.max_context_tokens} tokens "
                                       f"needs {one.describe()}, {limit_mib:,} allowed"))
                continue
            speeds = _speeds(model, precision, degree, gpu, gpu_type, measured)
            if isinstance(speeds, str):
                found.append(Candidate(degree, precision, spec, None, {}, source, speeds))
                continue
            by_level, method, basis_text = speeds
            points, generation, misses = [], {}, []
            for c, g in sorted(by_level.items()):
                if g.ttft_p99_ms > slo.ttft_p99_ms or g.tpot_p99_ms > slo.tpot_p99_ms:
                    misses.append(g)
                    continue
                memory = memory_per_gpu(arch, precision, degree, c,
                                        model.llm.max_context_tokens, context)
                generation[c] = g
                points.append(Point(concurrency=c, throughput_rps=round(g.throughput_rps, 4),
                                    p50_ms=round(g.p50_ms, 2), p95_ms=round(g.p99_ms, 2),
                                    p99_ms=round(g.p99_ms, 2),
                                    peak_memory_mib=round(memory.total_mib)))
            if not points:
                first = misses[0] if misses else None
                found.append(Candidate(
                    degree, precision, spec, None, {}, source,
                    f"TTFT p99 {first.ttft_p99_ms:.4g} ms and TPOT p99 "
                    f"{first.tpot_p99_ms:.3g} ms at concurrency {first.concurrency} on "
                    f"{gpu_type} (SLO {slo.ttft_p99_ms:g} ms and {slo.tpot_p99_ms:g} ms)"
                    if first else f"no measured level within max_concurrency on {gpu_type}"))
                continue
            if method == "measured":
                assert measured is not None
                environment = measured.environment
            else:
                assert gpu is not None
                environment = Environment(backend="reference", device_name=gpu.name)
            profile = Profile(
                model=model.name, gpu_type=gpu_type, method=method, basis=basis_text,
                environment=environment,
                settings=Settings(concurrency=[p.concurrency for p in points]),
                memory=Memory(weights_mib=round(one.weights_mib * degree, 1),
                              cuda_context_mib=one.context_mib),
                points=points)
            found.append(Candidate(degree, precision, spec, profile, generation, source))
    return found
