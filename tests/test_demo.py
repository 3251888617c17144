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
                      "llm-rag-answerer": (8, 24)}


def test_pool_kinds(fleet):
    pools = fleet.cluster.pools
    assert any(p.sharing == "time-slicing" and p.pool_class == "shared" for p in pools)
    assert any(p.sharing == "mig" for p in pools)
    assert any(p.pool_class == "dedicated" and p.gpus_per_node >= 4 for p in pools)
    assert any(p.pool_class == "low-priority" for p in pools)
    dedicated = {p.name for p in pools if p.pool_class == "dedicated"}
    multi_gpu = [m for m in fleet.models.values() if m.gpus_per_replica > 1]
    assert multi_gpu and all({p.name for p, _ in fleet.admitting_pools(m)} <= dedicated
                             for m in multi_gpu)


def test_every_model_profiled_on_every_admitting_gpu_type(fleet):
    for model in fleet.models.values():
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
    pairs = [(p.memory.weights_mib, max(pt.throughput_rps for pt in p.points))
             for (_, g), p in fleet.profiles.items() if g == gpu_type]
    weights, throughput = np.array(pairs).T
    rank_correlation = np.corrcoef(weights.argsort().argsort(), throughput.argsort().argsort())
    assert rank_correlation[0, 1] < -0.5


def test_sources_point_at_real_factories(fleet):
    torch = pytest.importorskip("torch")
    for model in fleet.models.values():
        module, function = model.source.factory.split(":")
        factory = getattr(importlib.import_module(module), function)
        with torch.device("meta"):
            parameters = sum(p.numel() for p in factory(**model.source.kwargs).parameters())
        bytes_each = 4 if model.source.dtype == "float32" else 2
        some_profile = next(p for (n, _), p in fleet.profiles.items() if n == model.name)
        assert parameters * bytes_each / 2**20 == pytest.approx(
            some_profile.memory.weights_mib, abs=0.1)
