"""A decoder LLM as its serving engine sees it: architecture, weight precision, and the memory
one replica allocates on each of its GPUs at a tensor-parallel degree.

LLM servers (vLLM, SGLang, TGI) hold per GPU:

- the weights, split over the tensor-parallel (TP) degree;
- an activation workspace: one engine step's hidden states and MLP intermediate for
  `STEP_TOKENS` batched tokens (the chunked-prefill budget the manifests pass the engine),
  and the sampler's 32-bit logits for every running sequence;
- the CUDA context, CUDA graphs and library workspaces (`ENGINE_OVERHEAD_MIB`, on top of the
  GPU type's CUDA context);
- the KV cache: concurrency x context x 2 (keys and values) x layers x key/value heads x
  head dimension x bytes, over the TP degree. Grouped-query attention shares a key/value head
  among several query heads, so `kv_heads` (not `heads`) counts; when the TP degree exceeds
  `kv_heads` the engines replicate heads, so each GPU holds at least one.

Torch-free: the registry, the planner and the reference estimates all read it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from profiles.schema import MAX_COUNT, Count, Strict

MIB = 2**20
Precision = Literal["bf16", "fp8", "int4"]
# Bytes per weight: 16-bit, FP8 and 4-bit weight-only quantisation (AWQ/GPTQ), the
# quantisation scales left out (about 1% at a group size of 128).
PRECISION_BYTES: dict[str, float] = {"bf16": 2.0, "fp8": 1.0, "int4": 0.5}
KV_CACHE_BYTES = 2  # the engines' default KV cache dtype follows the 16-bit activations
ACTIVATION_BYTES = 2
LOGIT_BYTES = 4  # the sampler works on 32-bit logits
# Tokens one engine step batches at most, prompt chunks included: passed to the engine
# (vLLM --max-num-batched-tokens, SGLang --chunked-prefill-size), it bounds how much a step
# that carries a prompt chunk delays the running sequences' next tokens.
STEP_TOKENS = 512
ENGINE_OVERHEAD_MIB = 512  # CUDA graphs, sampler and cuBLAS/NCCL workspaces per GPU


class Architecture(Strict):
    """What the memory and speed of a decoder depend on; the names follow a Hugging Face
    `config.json` (`num_hidden_layers`, `hidden_size`, ...)."""

    layers: Count
    """Transformer blocks (`num_hidden_layers`)."""
    hidden: Count
    """Hidden size (`hidden_size`)."""
    heads: Count
    """Query attention heads (`num_attention_heads`)."""
    kv_heads: Count | None = None
    """Key/value heads (`num_key_value_heads`); fewer than `heads` under grouped-query
    attention. Absent: as many as `heads` (multi-head attention)."""
    head_dim: Count | None = None
    """Dimension of one head (`head_dim`); absent: hidden / heads."""
    intermediate: Count | None = None
    """Width of the MLP (`intermediate_size`); absent: 4 x hidden."""
    vocab: Count
    """Vocabulary size (`vocab_size`)."""
    tie_embeddings: bool = False
    """Whether the output layer reuses the input embeddings (`tie_word_embeddings`)."""
    parameters: Annotated[int, Field(ge=1, le=MAX_COUNT * 10**7)] | None = None
    """Parameters in all; absent: counted from the rest for a Llama-style decoder (gated MLP
    of three matrices, two norms per block, no biases)."""

    @model_validator(mode="after")
    def _heads_group(self) -> Architecture:
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads "
                             f"({self.kv_heads}): each key/value head serves a group of heads")
        if self.head_dim is None and self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) is not a multiple of heads "
                             f"({self.heads}); state head_dim")
        return self

    @property
    def key_value_heads(self) -> int:
        return self.kv_heads or self.heads

    @property
    def dim_per_head(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def mlp_width(self) -> int:
        return self.intermediate or 4 * self.hidden

    def parameter_count(self) -> int:
        """The stated parameters, or those of a Llama-style decoder of this shape."""
        if self.parameters is not None:
            return self.parameters
        head = self.dim_per_head
        attention = (2 * self.hidden * self.heads * head  # query and output projections
                     + 2 * self.hidden * self.key_value_heads * head)  # keys and values
        block = attention + 3 * self.hidden * self.mlp_width + 2 * self.hidden
        embeddings = self.vocab * self.hidden * (1 if self.tie_embeddings else 2)
        return self.layers * block + embeddings + self.hidden

    def kv_bytes_per_token(self, tensor_parallel: int = 1) -> int:
        """KV cache bytes one token takes on each GPU at `tensor_parallel`: 2 (keys and
        values) x layers x key/value heads per GPU x head dimension x bytes."""
        heads_per_gpu = math.ceil(self.key_value_heads / tensor_parallel)
        return 2 * self.layers * heads_per_gpu * self.dim_per_head * KV_CACHE_BYTES


HF_KEYS = {"layers": "num_hidden_layers", "hidden": "hidden_size",
           "heads": "num_attention_heads", "kv_heads": "num_key_value_heads",
           "head_dim": "head_dim", "intermediate": "intermediate_size", "vocab": "vocab_size",
           "tie_embeddings": "tie_word_embeddings"}


def from_hf_config(text: str) -> Architecture:
    """The architecture in a Hugging Face `config.json` (a multimodal model's language part
    from its `text_config`). Raises ValueError (or pydantic's) naming what is missing."""
    config: Any = json.loads(text)
    if not isinstance(config, dict):
        raise ValueError("config.json must hold a JSON object")
    if isinstance(config.get("text_config"), dict):
        config = {**config, **config["text_config"]}
    missing = [hf for key, hf in HF_KEYS.items()
               if key in ("layers", "hidden", "heads", "vocab") and hf not in config]
    if missing:
        raise ValueError(f"config.json lacks {', '.join(missing)}")
    found = {key: config[hf] for key, hf in HF_KEYS.items() if config.get(hf) is not None}
    return Architecture.model_validate(found)


@dataclass(frozen=True)
class LlmMemory:
    """Memory of one replica on each of its GPUs, in MiB, by layer."""

    weights_mib: float
    workspace_mib: float
    context_mib: float  # CUDA context, graphs and library workspaces
    kv_cache_mib: float
    tensor_parallel: int

    @property
    def per_gpu_mib(self) -> float:
        return self.weights_mib + self.workspace_mib + self.context_mib + self.kv_cache_mib

    @property
    def total_mib(self) -> float:
        """Over all the replica's GPUs."""
        return self.per_gpu_mib * self.tensor_parallel

    def describe(self) -> str:
        return (f"weights {self.weights_mib:,.0f} + workspace {self.workspace_mib:,.0f} + CUDA "
                f"context {self.context_mib:,.0f} + KV cache {self.kv_cache_mib:,.0f} = "
                f"{self.per_gpu_mib:,.0f} MiB per GPU at TP {self.tensor_parallel}")


def memory_per_gpu(arch: Architecture, precision: str, tensor_parallel: int, concurrency: int,
                   context_tokens: int, cuda_context_mib: float) -> LlmMemory:
    """What one replica allocates on each GPU when it holds `concurrency` sequences of
    `context_tokens` (prompt and output) each."""
    weights = arch.parameter_count() * PRECISION_BYTES[precision] / tensor_parallel
    step = STEP_TOKENS * (4 * arch.hidden + 2 * arch.mlp_width / tensor_parallel) \
        * ACTIVATION_BYTES
    logits = concurrency * arch.vocab * LOGIT_BYTES
    kv = concurrency * context_tokens * arch.kv_bytes_per_token(tensor_parallel)
    return LlmMemory(weights_mib=weights / MIB, workspace_mib=(step + logits) / MIB,
                     context_mib=cuda_context_mib + ENGINE_OVERHEAD_MIB,
                     kv_cache_mib=kv / MIB, tensor_parallel=tensor_parallel)
