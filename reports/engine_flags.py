"""The command-line flags an LLM engine gets from the plan, so that it runs the configuration
the plan packed: its tensor-parallel degree, sequences at once, longest sequence, the fraction
of its device it preallocates (co-located replicas then never grab more than their shares),
the step's token budget the latency estimates assume, and the port the manifests probe.

- vLLM (`vllm serve`): `--served-model-name`, `--tensor-parallel-size`, `--max-num-seqs`,
  `--max-model-len`, `--gpu-memory-utilization`, `--max-num-batched-tokens`,
  `--quantization fp8`;
- SGLang (`python -m sglang.launch_server`): `--served-model-name`, `--tp-size`,
  `--max-running-requests`, `--context-length`, `--mem-fraction-static`,
  `--chunked-prefill-size`, `--quantization fp8`;
- TGI (`text-generation-launcher`): `--num-shard`, `--max-total-tokens`,
  `--max-batch-total-tokens` (the sequences' tokens at once: its batches are sized in
  tokens), `--cuda-memory-fraction`, `--quantize fp8`.

vLLM and SGLang get `--served-model-name` with the registry's name (see
`planner.schemas.SERVED_NAME_ENGINES`).

INT4 weights come from an AWQ or GPTQ checkpoint whose config names its quantisation to the
engine, so they need no flag. Every engine serves its health on `GET /health`. The image's
entrypoint starts the engine with its model; these flags are appended as the container's
arguments.
"""

from __future__ import annotations

from typing import Final

from planner.planfile import LlmPlan, ModelPlan
from planner.schemas import SERVED_NAME_ENGINES

HEALTH_PATH: Final = "/health"


def engine_args(model: ModelPlan) -> list[str]:
    """The flags for `model`'s engine; empty for a model that is not an LLM."""
    llm, engine = model.llm, model.serving.engine
    if llm is None or engine is None:
        return []
    flags = _FLAGS[engine](llm, model.serving.port)
    if engine in SERVED_NAME_ENGINES:
        flags = {"--served-model-name": model.name, **flags}
    return [str(value) for pair in flags.items() for value in pair]


def _vllm(llm: LlmPlan, port: int) -> dict[str, object]:
    flags: dict[str, object] = {
        "--port": port, "--tensor-parallel-size": llm.tensor_parallel,
        "--max-num-seqs": llm.max_num_seqs, "--max-model-len": llm.max_model_len,
        "--gpu-memory-utilization": llm.gpu_memory_utilization,
        "--max-num-batched-tokens": max(llm.step_tokens, llm.max_num_seqs)}
    if llm.precision == "fp8":
        flags["--quantization"] = "fp8"
    return flags


def _sglang(llm: LlmPlan, port: int) -> dict[str, object]:
    flags: dict[str, object] = {
        "--port": port, "--tp-size": llm.tensor_parallel,
        "--max-running-requests": llm.max_num_seqs, "--context-length": llm.max_model_len,
        "--mem-fraction-static": llm.gpu_memory_utilization,
        "--chunked-prefill-size": llm.step_tokens}
    if llm.precision == "fp8":
        flags["--quantization"] = "fp8"
    return flags


def _tgi(llm: LlmPlan, port: int) -> dict[str, object]:
    flags: dict[str, object] = {
        "--port": port, "--num-shard": llm.tensor_parallel,
        "--max-total-tokens": llm.max_model_len,
        "--max-batch-total-tokens": llm.max_num_seqs * llm.max_model_len,
        "--cuda-memory-fraction": llm.gpu_memory_utilization}
    if llm.precision == "fp8":
        flags["--quantize"] = "fp8"
    return flags


_FLAGS = {"vllm": _vllm, "sglang": _sglang, "tgi": _tgi}
