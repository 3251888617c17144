"""The profiler measures generation for an `llm` model: prefill, then a decode loop with a KV
cache, on a tiny causal model of the demo's own (`experiment-tiny-llm` made an `llm` model), on
CPU. The work is fixed by counts (3 levels x 4 rounds x 192 prompt and 64 output tokens), never
by time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from planner.profiling import ProfileSettings, measure_models
from planner.registry.loader import load_registry
from tests.conftest import edit_yaml

torch = pytest.importorskip("torch")


def test_kv_cache_decoding_gives_the_full_forward_pass():
    from planner.demo.models import causal_lm

    model = causal_lm(vocab=100, hidden=32, layers=2, heads=4, kv_heads=2, ffn=64).eval()
    tokens = torch.randint(0, 100, (3, 12), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        whole, _ = model(tokens)
        _, cache = model(tokens[:, :10])
        _, cache = model(tokens[:, 10:11], cache)
        last, cache = model(tokens[:, 11:], cache)
    assert torch.allclose(whole, last, atol=1e-5)
    assert cache[0][0].shape == (3, 2, 12, 8)  # batch, kv heads, tokens, head dim


def as_tiny_llm(registry: Path) -> Path:
    """experiment-tiny-llm as an `llm` model whose source is the demo's causal model."""
    def change(data: dict) -> None:
        data.pop("gpus_per_replica", None)
        data["llm"] = {"architecture": {"layers": 8, "hidden": 512, "heads": 8,
                                        "intermediate": 2048, "vocab": 32000},
                       "max_context_tokens": 512, "input_tokens": {"mean": 192, "p95": 256},
                       "output_tokens": {"mean": 64, "p95": 128},
                       "slo": {"ttft_p99_ms": 500, "tpot_p99_ms": 30}}
        data["source"] = {"factory": "planner.demo.models:causal_lm",
                          "kwargs": {"vocab": 32000, "hidden": 512, "layers": 8, "heads": 8,
                                     "kv_heads": 8, "ffn": 2048, "max_seq": 512},
                          "dtype": "bfloat16",
                          "input": {"shape": [192], "dtype": "int64", "high": 32000}}

    edit_yaml(registry / "models" / "experiment-tiny-llm.yaml", change)
    shutil.rmtree(registry / "profiles" / "experiment-tiny-llm", ignore_errors=True)
    return registry


@pytest.fixture(scope="module")
def generation_profile(tmp_path_factory):
    from planner.registry.locate import write_demo

    root = tmp_path_factory.mktemp("tiny") / "registry"
    write_demo(root)
    fleet = load_registry(as_tiny_llm(root))
    settings = ProfileSettings(device="cpu", concurrency=(1, 2, 4), cpu_threads=1)
    [profile] = measure_models(fleet, ["experiment-tiny-llm"], settings)
    return profile


def test_cpu_profiler_measures_ttft_tpot_and_tokens_per_level(generation_profile):
    profile = generation_profile
    assert profile.method == "measured" and profile.gpu_type == "cpu"
    assert (profile.settings.input_tokens, profile.settings.output_tokens,
            profile.settings.rounds) == (192, 64, 3)
    assert [g.concurrency for g in profile.generation] == [1, 2, 4]
    assert [p.concurrency for p in profile.points] == [1, 2, 4]
    for level, point in zip(profile.generation, profile.points, strict=True):
        assert 0 < level.ttft_p50_ms <= level.ttft_p99_ms
        assert 0 < level.tpot_p50_ms <= level.tpot_p99_ms
        assert level.prefill_tokens_per_s > 0 and level.decode_tokens_per_s > 0
        # a request's end to end holds its prefill and 63 decode steps
        assert point.p50_ms >= level.ttft_p50_ms + 63 * level.tpot_p50_ms * 0.5
        assert point.throughput_rps > 0 and level.peak_memory_mib >= profile.memory.weights_mib


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_generation_records_device_memory_with_the_kv_cache(tmp_path: Path):
    from planner.registry.locate import write_demo

    root = tmp_path / "registry"
    write_demo(root)
    fleet = load_registry(as_tiny_llm(root))
    settings = ProfileSettings(device="cuda", concurrency=(1, 4, 16))
    [profile] = measure_models(fleet, ["experiment-tiny-llm"], settings, gpu_type="t4")
    assert profile.memory.kind == "device" and profile.environment.backend == "cuda"
    peaks = [level.peak_memory_mib for level in profile.generation]
    assert peaks == sorted(peaks) and peaks[0] >= profile.memory.weights_mib
