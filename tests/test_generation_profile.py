"""The profiler measures generation for an `llm` model: prefill, then a decode loop with a KV
cache, on a tiny causal model of the demo's own (`experiment-tiny-llm`), on CPU. The work is
fixed by counts (3 levels x 4 rounds x 192 prompt and 64 output tokens), never by time."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from planner.demand.derive import derive
from planner.profiling import ProfileSettings, measure_models, write_profile
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


@pytest.fixture(scope="module")
def generation_profile():
    from planner.demo import demo_registry_path

    fleet = load_registry(demo_registry_path())
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


def test_a_measured_generation_profile_is_planned_from(generation_profile, registry: Path):
    """Filed under the T4 (as `planner profile import` would from a T4 node), the measured
    TTFT and TPOT replace the roofline's for one GPU at 16 bits. The SLOs are made loose, so
    that the outcome does not hang on how fast this machine measured."""
    edit_yaml(registry / "models" / "experiment-tiny-llm.yaml", lambda d: (
        d["slo"].update(p99_ms=100_000), d["limits"].update(timeout_ms=1_000_000),
        d["llm"]["slo"].update(ttft_p99_ms=100_000, tpot_p99_ms=100_000)))
    measured = generation_profile.model_copy(update={"gpu_type": "t4"})
    write_profile(measured, registry / "profiles")
    path = registry / "profiles" / "experiment-tiny-llm" / "t4.yaml"
    assert yaml.safe_load(path.read_text())["generation"][0]["concurrency"] == 1
    demands, rejections = derive(load_registry(registry))
    assert rejections["experiment-tiny-llm"] == []
    [demand] = demands["experiment-tiny-llm"]
    assert demand.method == "measured" and not demand.estimated
    assert demand.llm is not None and demand.llm.tensor_parallel == 1
    assert "measured on " in demand.notes[0]
    level = next(g for g in measured.generation if g.concurrency == demand.concurrency)
    assert demand.llm.tpot_p99_ms == round(level.tpot_p99_ms, 2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_generation_records_device_memory_with_the_kv_cache():
    from planner.demo import demo_registry_path

    fleet = load_registry(demo_registry_path())
    settings = ProfileSettings(device="cuda", concurrency=(1, 4, 16))
    [profile] = measure_models(fleet, ["experiment-tiny-llm"], settings, gpu_type="t4")
    assert profile.memory.kind == "device" and profile.environment.backend == "cuda"
    peaks = [level.peak_memory_mib for level in profile.generation]
    assert peaks == sorted(peaks) and peaks[0] >= profile.memory.weights_mib
