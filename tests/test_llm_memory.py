"""LLM memory as the serving engines allocate it, against numbers worked out by hand from the
published config.json of two public architectures (meta-llama/Llama-3.1-8B and
meta-llama/Llama-3.1-70B on Hugging Face)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from profiles.llm import Architecture, from_hf_config, memory_per_gpu

# The fields of the published config.json files that matter here.
LLAMA_31_8B = {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
               "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 128256,
               "tie_word_embeddings": False, "max_position_embeddings": 131072,
               "model_type": "llama"}
LLAMA_31_70B = {"hidden_size": 8192, "intermediate_size": 28672, "num_attention_heads": 64,
                "num_hidden_layers": 80, "num_key_value_heads": 8, "vocab_size": 128256,
                "tie_word_embeddings": False, "max_position_embeddings": 131072,
                "model_type": "llama"}


def test_parameters_counted_as_published():
    # 8,030,261,248 and 70,553,706,496: the sizes of the published safetensors indexes / 2.
    assert from_hf_config(json.dumps(LLAMA_31_8B)).parameter_count() == 8_030_261_248
    assert from_hf_config(json.dumps(LLAMA_31_70B)).parameter_count() == 70_553_706_496


def test_kv_cache_per_token_counts_key_value_heads():
    eight = from_hf_config(json.dumps(LLAMA_31_8B))
    seventy = from_hf_config(json.dumps(LLAMA_31_70B))
    # 2 (K and V) x 32 layers x 8 kv heads x 128 head dim x 2 bytes = 128 KiB per token
    assert eight.kv_bytes_per_token() == 131_072
    # 2 x 80 x 8 x 128 x 2 = 320 KiB per token; at TP 4 each GPU holds 2 of the 8 kv heads
    assert seventy.kv_bytes_per_token() == 327_680
    assert seventy.kv_bytes_per_token(4) == 81_920
    # TP 16 > 8 kv heads: the engines replicate, every GPU keeps one head
    assert seventy.kv_bytes_per_token(16) == 40_960


def test_llama_8b_memory_by_layer():
    arch = from_hf_config(json.dumps(LLAMA_31_8B))
    memory = memory_per_gpu(arch, "bf16", 1, concurrency=16, context_tokens=8192,
                            cuda_context_mib=560)
    assert memory.weights_mib == 15_316.5078125  # 8,030,261,248 x 2 bytes / 2^20
    assert memory.kv_cache_mib == 16_384  # 16 x 8192 tokens x 128 KiB
    # 512 step tokens x (4 x 4096 + 2 x 14336) x 2 bytes + 16 x 128256 x 4-byte logits
    assert memory.workspace_mib == 44 + 7.828125
    assert memory.context_mib == 560 + 512
    assert memory.per_gpu_mib == pytest.approx(15_316.5078 + 16_384 + 51.828 + 1072, abs=1e-3)
    half = memory_per_gpu(arch, "fp8", 1, concurrency=16, context_tokens=8192,
                          cuda_context_mib=560)
    assert half.weights_mib == 15_316.5078125 / 2 and half.kv_cache_mib == 16_384


def test_llama_70b_long_context_does_not_fit_four_h100s():
    arch = from_hf_config(json.dumps(LLAMA_31_70B))
    four = memory_per_gpu(arch, "bf16", 4, concurrency=8, context_tokens=131_072,
                          cuda_context_mib=560)
    assert four.weights_mib == 33_642.62890625  # 70,553,706,496 x 2 bytes / 4 GPUs
    assert four.kv_cache_mib == 81_920  # 8 x 131072 tokens x 80 KiB per GPU
    assert four.per_gpu_mib > 81_559  # an H100 80GB's memory
    eight = memory_per_gpu(arch, "bf16", 8, concurrency=8, context_tokens=131_072,
                           cuda_context_mib=560)
    assert eight.kv_cache_mib == 40_960 and eight.per_gpu_mib < 81_559 * 0.9


def test_multimodal_config_reads_its_text_config():
    config = {"model_type": "llava", "text_config": LLAMA_31_8B, "vision_config": {}}
    assert from_hf_config(json.dumps(config)).layers == 32


@pytest.mark.parametrize("config, message", [
    ({"hidden_size": 4096}, "lacks num_hidden_layers, num_attention_heads, vocab_size"),
    ([1, 2], "must hold a JSON object"),
])
def test_config_without_the_facts_is_refused(config, message):
    with pytest.raises(ValueError, match=message):
        from_hf_config(json.dumps(config))


def test_heads_must_group_over_kv_heads():
    with pytest.raises(ValidationError, match="multiple of kv_heads"):
        Architecture(layers=2, hidden=64, heads=6, kv_heads=4, vocab=100)
