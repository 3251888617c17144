"""The bundled demo registry must look like a real platform and be physically plausible."""

import importlib

import numpy as np
import pytest

from planner.demo import demo_registry_path
from planner.registry.loader import load_registry


@pytest.fixture(scope="module")
def fleet():
    return load_registry(demo_registry_path())


def test_size_and_variety(fleet):
    assert len(fleet.models) >= 30
    assert len(fleet.teams) >= 4
    assert {m.serving_profile for m in fleet.models.values()} == {"online", "bursty", "batch",
                                                                  "large"}
    limits = {name: (fleet.models[name].limits.max_concurrency,
                     fleet.models[name].limits.queue_limit)
              for name in ("intent-classifier", "embedding-service", "llm-rag-answerer")}
    assert limits == {"intent-classifier": (64, 256), "embedding-service": (32, 128),
                      "llm-rag-answerer": (32, 64)}


def test_pool_kinds(fleet):
    pools = fleet.cluster.pools
    assert any(p.sharing == "time-slicing" and p.pool_class == "shared" for p in pools)
    assert any(p.sharing == "mig" for p in pools)
    assert any(p.pool_class == "dedicated" and p.gpus_per_node >= 4 for p in pools)
    assert any(p.pool_class == "low-priority" for p in pools)
    dedicated = {p.name for p in pools if p.pool_class == "dedicated"}
    large_llms = [m for m in fleet.models.values()
                  if m.llm is not None and m.labels.model_tier == "large"]
    assert len(large_llms) == 4 and all(
        {p.name for p, _ in fleet.admitting_pools(m)} <= dedicated for m in large_llms)


def test_llms_are_the_llm_kind_on_gpu_types_with_datasheet_figures(fleet):
    """Every generating model is sized in tokens, on GPU types the roofline has figures for."""
    from planner.rules.llm import gpu_spec

    llms = sorted(name for name, m in fleet.models.items() if m.llm is not None)
    assert llms == ["code-assistant", "experiment-tiny-llm", "llm-chat-70b",
                    "llm-rag-answerer", "query-rewriter", "support-summarizer",
                    "translation-service", "vision-language-assistant"]
    for name in llms:
        assert not any(owner == name for owner, _ in fleet.profiles)
        for pool, _ in fleet.admitting_pools(fleet.models[name]):
            assert gpu_spec(pool.gpu_type) is not None, (name, pool.gpu_type)


def test_every_model_profiled_on_every_admitting_gpu_type(fleet):
    for model in fleet.models.values():
        if model.llm is not None:  # estimated in tokens when planned
            continue
        for pool, _ in fleet.admitting_pools(model):
            assert (model.name, pool.gpu_type) in fleet.profiles, (model.name, pool.gpu_type)


def _device_memory_mib(fleet, gpu_type: str) -> int:
    """A GPU type's memory, or a MIG slice's (the slice profiled as `<gpu-type>-<slice>`)."""
    if gpu_type in fleet.cluster.gpu_types:
        return fleet.cluster.gpu_types[gpu_type].memory_mib
    return next(profile.memory_mib for name, gpu in fleet.cluster.gpu_types.items()
                for slice_name, profile in gpu.mig_profiles.items()
                if f"{name}-{slice_name}" == gpu_type)


def test_profiles_are_physically_plausible(fleet):
    for (name, gpu_type), profile in fleet.profiles.items():
        model = fleet.models[name]
        gpu_mib = _device_memory_mib(fleet, gpu_type)
        context = (profile.memory.cuda_context_mib or 0) * model.gpus_per_replica
        for point in profile.points:
            assert point.peak_memory_mib >= profile.memory.weights_mib + context
        smallest = profile.points[0].peak_memory_mib / model.gpus_per_replica
        assert smallest <= gpu_mib, f"{name} does not fit one {gpu_type} even at concurrency 1"
        if profile.method == "reference":
            assert "parameters" in profile.basis


@pytest.mark.parametrize("gpu_type", ["l4", "t4", "a100-80gb"])
def test_throughput_falls_off_with_model_size(fleet, gpu_type):
    """One request at a time, larger models answer fewer requests per second (batching gains
    differ by architecture: an MLP batches far better than a CNN, so the largest throughput
    need not fall with size)."""
    pairs = [(p.memory.weights_mib, p.points[0].throughput_rps)
             for (_, g), p in fleet.profiles.items() if g == gpu_type]
    weights, throughput = np.array(pairs).T
    rank_correlation = np.corrcoef(weights.argsort().argsort(), throughput.argsort().argsort())
    assert rank_correlation[0, 1] < -0.5


def test_sources_point_at_real_factories(fleet):
    torch = pytest.importorskip("torch")
    for model in fleet.models.values():
        if model.source is None or model.llm is not None:  # an LLM's source is for measuring
            continue
        module, function = model.source.factory.split(":")
        factory = getattr(importlib.import_module(module), function)
        with torch.device("meta"):
            parameters = sum(p.numel() for p in factory(**model.source.kwargs).parameters())
        bytes_each = 4 if model.source.dtype == "float32" else 2
        some_profile = next(p for (n, _), p in fleet.profiles.items() if n == model.name)
        assert parameters * bytes_each / 2**20 == pytest.approx(
            some_profile.memory.weights_mib, abs=0.1)
