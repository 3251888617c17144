"""An LLM's candidate configurations in one pool, each as a curve the sharing model reads.

For every TP degree and weight precision the pool allows (`planner.rules.llm`), the roofline
of the pool's GPU type (`profiles.generation`) gives, per concurrency level (powers of two up
to `limits.max_concurrency`), TTFT and TPOT at the 99th percentile, the end-to-end latency and
the throughput in requests; memory is the engine's allocation with every sequence at
`max_context_tokens` (`profiles.llm`). Levels that miss the TTFT or TPOT SLO are dropped; what
is left is a reference profile, and derivation chooses the operating point on it as for any
model. A GPU type without datasheet figures offers no candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.rules.llm import architecture, cuda_context_mib, degrees, gpu_spec, precisions
from planner.schemas import ModelSpec, Pool
from profiles.generation import GenerationPoint, Tokens, basis, estimate
from profiles.llm import memory_per_gpu
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
    failure: str | None = None

    @property
    def label(self) -> str:
        return f"TP {self.tensor_parallel} {self.precision}"


def levels(model: ModelSpec) -> list[int]:
    return [2**i for i in range(21) if 2**i <= model.limits.max_concurrency]


def _tokens(model: ModelSpec) -> Tokens:
    assert model.llm is not None
    return Tokens(model.llm.input_tokens.mean, model.llm.input_tokens.p95,
                  model.llm.output_tokens.mean, model.llm.output_tokens.p95)


def candidates(model: ModelSpec, pool: Pool, limit_mib: int) -> list[Candidate]:
    """Every configuration of `model` in `pool` (whose replicas may use `limit_mib` per GPU),
    fewest GPUs and bytes first."""
    assert model.llm is not None
    assert pool.gpu_type is not None  # a CPU pool never takes a model with GPUs
    gpu = gpu_spec(pool.gpu_type)
    arch = architecture(model)
    slo = model.llm.slo
    found = []
    for degree in degrees(model, pool):
        spec = model.model_copy(update={"gpus_per_replica": degree})
        for precision in precisions(model):
            if gpu is None:
                found.append(Candidate(degree, precision, spec, None, {},
                                       f"no datasheet figures for {pool.gpu_type} to estimate "
                                       "from"))
                continue
            one = memory_per_gpu(arch, precision, degree, 1, model.llm.max_context_tokens,
                                 cuda_context_mib(pool.gpu_type))
            if one.per_gpu_mib > limit_mib:
                found.append(Candidate(degree, precision, spec, None, {},
                                       f"one sequence of {model.llm.max_context_tokens} tokens "
                                       f"needs {one.describe()}, {limit_mib:,} allowed"))
                continue
            points, generation, misses = [], {}, []
            for c in levels(model):
                g = estimate(arch, precision, degree, gpu, _tokens(model), c)
                if g.ttft_p99_ms > slo.ttft_p99_ms or g.tpot_p99_ms > slo.tpot_p99_ms:
                    misses.append(g)
                    continue
                memory = memory_per_gpu(arch, precision, degree, c,
                                        model.llm.max_context_tokens,
                                        cuda_context_mib(pool.gpu_type))
                generation[c] = g
                points.append(Point(concurrency=c, throughput_rps=round(g.throughput_rps, 4),
                                    p50_ms=round(g.p50_ms, 2), p95_ms=round(g.p99_ms, 2),
                                    p99_ms=round(g.p99_ms, 2),
                                    peak_memory_mib=round(memory.total_mib)))
            if not points:
                first = misses[0]
                found.append(Candidate(
                    degree, precision, spec, None, {},
                    f"TTFT p99 {first.ttft_p99_ms:.4g} ms and TPOT p99 "
                    f"{first.tpot_p99_ms:.3g} ms at concurrency 1 on {pool.gpu_type} (SLO "
                    f"{slo.ttft_p99_ms:g} ms and {slo.tpot_p99_ms:g} ms)"))
                continue
            profile = Profile(
                model=model.name, gpu_type=pool.gpu_type, method="reference",
                basis=basis(gpu, precision, degree),
                environment=Environment(backend="reference", device_name=gpu.name),
                settings=Settings(concurrency=[p.concurrency for p in points]),
                memory=Memory(weights_mib=round(memory.weights_mib * degree, 1),
                              cuda_context_mib=memory.context_mib),
                points=points)
            found.append(Candidate(degree, precision, spec, profile, generation))
    return found
