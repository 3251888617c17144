import pytest
from pydantic import ValidationError

from planner.schemas import GpuType, ModelSpec, Selector
from profiles.schema import Point, Source

MODEL = {
    "name": "m", "team": "t", "serving_profile": "online", "priority": "production",
    "labels": {"model-tier": "small", "latency-class": "interactive", "gpu-sharing": "allowed",
               "tenant-scope": "shared"},
    "traffic": {"peak_rps": 10}, "slo": {"p99_ms": 50},
    "limits": {"max_concurrency": 4, "queue_limit": 8, "timeout_ms": 100},
    "serving": {"image": "img:1"}, "resources": {"memory_mib": 1000, "throughput_rps": 50},
}


def test_model_defaults():
    model = ModelSpec.model_validate(MODEL)
    assert model.replicas.min == 1 and model.gpus_per_replica == 1
    assert model.loading.policy == "warm"
    assert model.shares_gpu


def test_forbidden_sharing_or_multi_gpu_means_whole_gpus():
    forbidden = ModelSpec.model_validate(
        {**MODEL, "labels": {**MODEL["labels"], "gpu-sharing": "forbidden"}})
    assert not forbidden.shares_gpu
    assert not ModelSpec.model_validate({**MODEL, "gpus_per_replica": 2}).shares_gpu


@pytest.mark.parametrize("change", [
    {"name": "Not_A_DNS_Name"}, {"gpus_per_replica": -1}, {"priority": "urgent"},
    {"extra": 1}, {"traffic": {"peak_rps": 0}},
])
def test_model_rejects(change):
    with pytest.raises(ValidationError):
        ModelSpec.model_validate({**MODEL, **change})


def test_source_needs_exactly_one_kind():
    spec = {"input": {"shape": [4]}}
    with pytest.raises(ValidationError, match="exactly one of"):
        Source.model_validate(spec)
    with pytest.raises(ValidationError, match="exactly one of"):
        Source.model_validate({**spec, "factory": "a.b:c", "torchscript": "m.pt"})
    assert Source.model_validate({**spec, "torchscript": "m.pt"}).torchscript == "m.pt"


def test_mig_layouts_must_use_known_profiles_within_seven_slices():
    profiles = {"1g": {"memory_mib": 10, "compute_slices": 1},
                "4g": {"memory_mib": 40, "compute_slices": 4}}
    GpuType(memory_mib=80, product="x", mig_profiles=profiles, mig_layouts=[["4g", "1g", "1g"]])
    with pytest.raises(ValidationError, match="unknown profiles"):
        GpuType(memory_mib=80, product="x", mig_profiles=profiles, mig_layouts=[["2g"]])
    with pytest.raises(ValidationError, match="more than 7"):
        GpuType(memory_mib=80, product="x", mig_profiles=profiles, mig_layouts=[["4g", "4g"]])


def test_selector_matches_every_given_key():
    model = ModelSpec.model_validate(MODEL)
    assert Selector().matches(model)
    assert Selector.model_validate({"model-tier": ["small"], "team": ["t"]}).matches(model)
    assert not Selector.model_validate({"model-tier": ["small"], "priority": ["batch"]}
                                       ).matches(model)


def test_profile_point_percentiles_ordered():
    with pytest.raises(ValidationError, match="p50_ms <= p95_ms <= p99_ms"):
        Point(concurrency=1, throughput_rps=1, p50_ms=3, p95_ms=2, p99_ms=4, peak_memory_mib=1)
