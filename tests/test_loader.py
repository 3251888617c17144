"""The loader's error messages, exact text, and the cross-file rules."""

from pathlib import Path

import pytest

from planner.errors import InputError
from planner.registry.loader import load_registry
from tests.conftest import edit_yaml


def errors_of(root: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        load_registry(root)
    return [str(p).replace(str(root) + "/", "") for p in info.value.problems]


def test_demo_loads(registry: Path):
    fleet = load_registry(registry)
    assert len(fleet.models) >= 30
    assert list(fleet.models) == sorted(fleet.models)


def test_misspelt_key_and_wrong_enum_reported_together(registry: Path):
    path = registry / "models" / "intent-classifier.yaml"
    path.write_text(path.read_text().replace("max_concurrency", "max_concurency"))
    path = registry / "models" / "embedding-service.yaml"
    path.write_text(path.read_text().replace("serving_profile: online", "serving_profile: onlne"))
    assert errors_of(registry) == [
        "models/embedding-service.yaml:4: serving_profile: 'onlne' is not one of online, "
        "bursty, batch, large (did you mean 'online'?)",
        "models/intent-classifier.yaml:9: limits.max_concurency: unknown key "
        "(did you mean 'max_concurrency'?)",
    ]


def test_unknown_key_without_close_match_lists_allowed_keys(registry: Path):
    edit_yaml(registry / "models" / "spam-filter.yaml", lambda d: d["slo"].update(zzz=1))
    [error] = errors_of(registry)
    assert error.endswith("slo.zzz: unknown key; allowed keys: p99_ms")


def test_enum_inside_labels_uses_the_yaml_key(registry: Path):
    edit_yaml(registry / "models" / "spam-filter.yaml",
              lambda d: d["labels"].update({"gpu-sharing": "alowed"}))
    [error] = errors_of(registry)
    assert ": labels.gpu-sharing: 'alowed' is not one of allowed, forbidden " \
           "(did you mean 'allowed'?)" in error


@pytest.mark.parametrize("filename, message", [
    ("cluster.yaml", "cluster.yaml: file not found"),
    ("policy.yaml", "policy.yaml: file not found"),
])
def test_missing_required_file(registry: Path, filename, message):
    (registry / filename).unlink()
    assert errors_of(registry) == [message]


def test_name_must_match_file_stem(registry: Path):
    edit_yaml(registry / "models" / "spam-filter.yaml", lambda d: d.update(name="spam"))
    assert errors_of(registry) == [
        "models/spam-filter.yaml:1: name: name 'spam' differs from the file name "
        "'spam-filter'; make them the same"]


def test_duplicate_model_files(registry: Path):
    source = registry / "models" / "spam-filter.yaml"
    (registry / "models" / "spam-filter.yml").write_text(source.read_text())
    assert errors_of(registry) == [
        "models/spam-filter.yml:1: duplicate model 'spam-filter': spam-filter.yaml defines it "
        "too; keep one"]


def test_unknown_gpu_type_in_pool(registry: Path):
    edit_yaml(registry / "cluster.yaml", lambda d: d["pools"][0].update(gpu_type="l40"))
    errors = errors_of(registry)
    assert errors[0].startswith("cluster.yaml:")
    assert "pools[0].gpu_type: unknown GPU type 'l40' (did you mean 'l4'?)" in errors[0]


def test_unknown_pool_in_admission(registry: Path):
    edit_yaml(registry / "policy.yaml",
              lambda d: d["admission"][0].update(pools=["shared-l40"]))
    errors = errors_of(registry)
    assert any("admission[0].pools[0]: unknown pool 'shared-l40' (did you mean 'shared-l4'?)"
               in e for e in errors)


def test_production_never_admitted_to_low_priority_pool(registry: Path):
    edit_yaml(registry / "policy.yaml",
              lambda d: next(r for r in d["admission"] if r["name"] == "low-priority")["match"]
              .update(priority=["production", "batch"]))
    assert any("admits production models into low-priority pool 'batch-t4'" in e
               for e in errors_of(registry))


def test_profile_for_unknown_model_and_gpu(registry: Path):
    folder = registry / "profiles" / "intent-classifer"
    folder.mkdir()
    (folder / "l4.yaml").write_text(
        (registry / "profiles" / "intent-classifier" / "l4.yaml").read_text())
    errors = errors_of(registry)
    assert ("profiles/intent-classifer/l4.yaml:3: profile for unknown model "
            "'intent-classifer' (did you mean 'intent-classifier'?); remove it or rename its "
            "folder") in errors
    assert any("says model 'intent-classifier' but lies in the folder of 'intent-classifer'"
               in e for e in errors)


def test_model_without_profile_or_resources_names_the_command(registry: Path):
    (registry / "profiles" / "spam-filter" / "l4.yaml").unlink()
    [error] = errors_of(registry)
    assert error.startswith("models/spam-filter.yaml:1: name: no profile for GPU type l4 and "
                            "no `resources`; measure it with `planner profile run spam-filter")


def test_hand_stated_resources_replace_a_profile(registry: Path):
    (registry / "profiles" / "spam-filter" / "l4.yaml").unlink()
    edit_yaml(registry / "models" / "spam-filter.yaml",
              lambda d: d.update(resources={"memory_mib": 900, "throughput_rps": 800}))
    assert load_registry(registry).models["spam-filter"].resources.memory_mib == 900


def test_model_no_pool_admits(registry: Path):
    edit_yaml(registry / "models" / "spam-filter.yaml",
              lambda d: d["labels"].update({"model-tier": "large"}))
    [error] = errors_of(registry)
    assert error.startswith("models/spam-filter.yaml:")
    assert "labels: no pool admits this model (team trust-safety, priority production" in error


@pytest.mark.parametrize("change, message", [
    (lambda d: d["limits"].update(max_concurrency=300),
     "limits.max_concurrency: max_concurrency (300) exceeds queue_limit (256)"),
    (lambda d: d["limits"].update(timeout_ms=10),
     "limits.timeout_ms: timeout_ms (10) is below slo.p99_ms (40)"),
    (lambda d: d["traffic"].update(mean_rps=10_000),
     "traffic.mean_rps: mean_rps (10000) exceeds peak_rps (700)"),
    (lambda d: d["replicas"].update(max=1),
     "replicas.max: replicas.max (1) is below replicas.min (2)"),
    (lambda d: d.update(gpus_per_replica=16),
     "gpus_per_replica: 16 GPUs per replica, but the nodes of the pools that admit it "
     "(shared-l4) have at most 4; lower it or admit the model to a pool with larger nodes"),
])
def test_contradicting_limits(registry: Path, change, message):
    edit_yaml(registry / "models" / "spam-filter.yaml", change)
    [error] = errors_of(registry)
    assert message in error


def test_errors_in_many_files_all_reported(registry: Path):
    (registry / "models" / "spam-filter.yaml").write_text("")
    (registry / "models" / "ticket-router.yaml").write_text("a: [\n")
    edit_yaml(registry / "cluster.yaml", lambda d: d["pools"][0].update(sharing="timeslice"))
    errors = errors_of(registry)
    assert len(errors) == 3
    assert "models/spam-filter.yaml:1: file is empty; expected a YAML mapping" in errors
