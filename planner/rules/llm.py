"""An LLM replica's configurations in a pool, and whether any of them can ever hold one
sequence of the longest context.

A configuration is a tensor-parallel (TP) degree and a weight precision the model file allows.
TP above 1 takes whole GPUs, so only exclusive pools offer it; a degree must fit one node and
divide the attention heads (the engines split heads evenly over the GPUs). The KV check judges
the cheapest memory any configuration could need: one sequence of `max_context_tokens`.
"""

from __future__ import annotations

from planner.rules.fit import memory_limit_mib
from planner.schemas import Cluster, ModelSpec, Policy, Pool
from profiles.llm import PRECISION_BYTES, Architecture, LlmMemory, memory_per_gpu
from profiles.reference import GPU_SPECS, GpuSpec

DEFAULT_CUDA_CONTEXT_MIB = 600  # a GPU type without datasheet figures: a generous context


def architecture(model: ModelSpec) -> Architecture:
    """The model's architecture; loading resolved `config_json` into it."""
    assert model.llm is not None and model.llm.architecture is not None
    return model.llm.architecture


def gpu_spec(gpu_type: str) -> GpuSpec | None:
    """The datasheet figures the roofline uses, when the GPU type has them."""
    return GPU_SPECS.get(gpu_type)


def cuda_context_mib(gpu_type: str) -> float:
    spec = gpu_spec(gpu_type)
    return spec.cuda_context_mib if spec is not None else DEFAULT_CUDA_CONTEXT_MIB


def degrees(model: ModelSpec, pool: Pool) -> list[int]:
    """The TP degrees the model may use in `pool`, lowest first."""
    assert model.llm is not None
    heads = architecture(model).heads
    return [d for d in sorted(model.llm.tensor_parallel)
            if d <= pool.gpus_per_node and heads % d == 0
            and (d == 1 or pool.sharing == "exclusive")]


def precisions(model: ModelSpec) -> list[str]:
    """The allowed weight precisions, fewest bytes first."""
    assert model.llm is not None
    return sorted(model.llm.precisions, key=lambda p: PRECISION_BYTES[p])


def least_memory(model: ModelSpec, pool: Pool) -> LlmMemory | None:
    """The configuration in `pool` needing the least memory per GPU for one sequence of the
    longest context; None when no TP degree suits the pool."""
    assert model.llm is not None
    assert pool.gpu_type is not None  # a CPU pool never takes a model with GPUs
    found = [memory_per_gpu(architecture(model), precision, degree, 1,
                            model.llm.max_context_tokens, cuda_context_mib(pool.gpu_type))
             for degree in degrees(model, pool) for precision in precisions(model)]
    return min(found, key=lambda m: m.per_gpu_mib, default=None)


def llm_misfit(model: ModelSpec, cluster: Cluster, pool: Pool, policy: Policy) -> str | None:
    """Why no configuration of the model could ever run in `pool`, with the numbers; or
    None."""
    assert model.llm is not None
    least = least_memory(model, pool)
    if least is None:
        allowed = ", ".join(map(str, model.llm.tensor_parallel))
        shared = "" if pool.sharing == "exclusive" else \
            f"; the pool shares GPUs ({pool.sharing}), so only TP 1"
        return (f"no tensor-parallel degree of {allowed} fits {pool.name}: at most "
                f"{pool.gpus_per_node} GPUs per node, dividing the "
                f"{architecture(model).heads} attention heads{shared}")
    limit = memory_limit_mib(cluster, pool, policy)
    if least.per_gpu_mib <= limit:
        return None
    what = "its largest MIG slice" if pool.sharing == "mig" else "a GPU"
    return (f"one sequence of max_context_tokens {model.llm.max_context_tokens} needs "
            f"{least.describe()} ({precisions(model)[0]}), {what} of {pool.name} "
            f"({pool.gpu_type}) holds {limit:,} MiB after the {policy.memory_headroom:.0%} "
            "headroom")
