"""Kubernetes' name rules, and the registry input that would produce objects a cluster refuses:
refused when the registry is read, with file, line and field, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from planner import k8s_names
from planner.errors import InputError
from planner.registry.loader import load_registry
from tests.conftest import edit_yaml


@pytest.mark.parametrize("value, valid", [
    ("a", True), ("shared-l4", True), ("a" * 63, True), ("a" * 64, False), ("-a", False),
    ("a-", False), ("A", False), ("a.b", False), ("a_b", False), ("", False), ("1a", True),
])
def test_dns1123_label(value, valid):
    assert (k8s_names.dns1123_label_problem(value) is None) == valid


@pytest.mark.parametrize("value, valid", [
    ("a.b-c.d", True), ("gpu", True), ("a..b", False), (".a", False), ("a" * 254, False),
    ("Gpu", False),
])
def test_dns1123_subdomain(value, valid):
    assert (k8s_names.dns1123_subdomain_problem(value) is None) == valid


@pytest.mark.parametrize("value, valid", [
    ("app.kubernetes.io/name", True), ("model-tier", True), ("A_b.c", True),
    ("example.com/" + "a" * 63, True), ("example.com/" + "a" * 64, False), ("/a", False),
    ("example.com/", False), ("a/b/c", False), ("Example.com/a", False), ("a b", False),
    ("_a", False),
])
def test_qualified_name(value, valid):
    assert (k8s_names.qualified_name_problem(value) is None) == valid


@pytest.mark.parametrize("value, valid", [
    ("", True), ("NVIDIA-L4", True), ("a.b_c", True), ("NVIDIA L4", False), ("a/b", False),
    ("a" * 64, False), ("-a", False),
])
def test_label_value(value, valid):
    assert (k8s_names.label_value_problem(value) is None) == valid


@pytest.mark.parametrize("key, reason", [
    ("karpenter.sh/pool", "in the reserved domain karpenter.sh; choose a prefix of your own"),
    ("x.kubernetes.io/pool", "in the reserved domain kubernetes.io; choose a prefix of your "
                             "own"),
    ("team.example.com/pool", None),
])
def test_label_keys_outside_reserved_domains(key, reason):
    assert k8s_names.label_key_problem(key) == reason


def test_config_map_key():
    assert k8s_names.config_map_key_problem("shared-l4") is None
    assert k8s_names.config_map_key_problem("a/b") is not None


def errors_of(root: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        load_registry(root)
    return [str(p).replace(str(root) + "/", "") for p in info.value.problems]


def _pool(name: str):
    return lambda d: next(p for p in d["pools"] if p["name"] == name)


def test_a_pool_of_another_provider_is_refused(registry: Path):
    edit_yaml(registry / "cluster.yaml", lambda d: _pool("mig-a100")(d).update(
        node_class={"group": "karpenter.k8s.gcp", "kind": "GCENodeClass", "name": "gpu"}))
    errors = errors_of(registry)
    assert len(errors) == 2
    assert errors[0].startswith("cluster.yaml:")
    line = (registry / "cluster.yaml").read_text().splitlines()[int(errors[0].split(":")[1]) - 1]
    assert line.strip() == "group: karpenter.k8s.gcp"
    assert errors[0].split(": ", 1)[1] == (
        "pools[2].node_class.group: 'karpenter.k8s.gcp' differs from the cluster's node class "
        "karpenter.k8s.aws/EC2NodeClass; one Karpenter installation runs one provider, so a "
        "pool may only name another node class of it (node_class: {name: ...}); plan another "
        "provider's pools in a registry of their own")
    assert "pools[2].node_class.kind: 'GCENodeClass' differs" in errors[1]


def test_a_pool_may_name_another_node_class_of_the_provider(registry: Path):
    edit_yaml(registry / "cluster.yaml",
              lambda d: _pool("mig-a100")(d).update(node_class={"name": "gpu-large-disk"}))
    fleet = load_registry(registry)
    node_class = fleet.cluster.node_class_of(fleet.pool("mig-a100"))
    assert (node_class.group, node_class.kind, node_class.name) == (
        "karpenter.k8s.aws", "EC2NodeClass", "gpu-large-disk")


@pytest.mark.parametrize("change, field, message", [
    (lambda p: p.update(labels={"karpenter.sh/tier": "gpu"}), "labels.karpenter.sh/tier",
     "in the reserved domain karpenter.sh"),
    (lambda p: p.update(labels={"team.example.com/tier": "gpu l4"}),
     "labels.team.example.com/tier", "'gpu l4' is not a label value"),
    (lambda p: p.update(labels={"team.example.com/tier": "a/b"}),
     "labels.team.example.com/tier", "'a/b' is not a label value"),
    (lambda p: p.update(labels={"planner.example.com/pool": "x"}),
     "labels.planner.example.com/pool", "the planner sets 'planner.example.com/pool' on the "
     "pool's nodes itself; remove it"),
    (lambda p: p.update(taints=[{"key": "bad key", "value": "x"}]), "taints[0].key",
     "'bad key' is not a qualified name"),
    (lambda p: p.update(instance_type="g6 xlarge"), "instance_type",
     "'g6 xlarge' is not a label value"),
    (lambda p: p.update(max_models_per_gpu=1), "max_models_per_gpu",
     "a time-slicing pool shares each GPU among at least 2 replicas (the device plugin refuses "
     "fewer); raise max_models_per_gpu or set sharing: exclusive"),
])
def test_pool_names_and_labels_follow_kubernetes_rules(registry: Path, change, field, message):
    edit_yaml(registry / "cluster.yaml", lambda d: change(_pool("shared-l4")(d)))
    [error] = errors_of(registry)
    assert error.startswith("cluster.yaml:")
    assert f": pools[0].{field}: " in error
    assert message in error


def test_gpu_product_with_spaces_is_refused(registry: Path):
    edit_yaml(registry / "cluster.yaml",
              lambda d: d["gpu_types"]["l4"].update(product="NVIDIA L4"))
    [error] = errors_of(registry)
    assert error.startswith("cluster.yaml:") and ": gpu_types.l4.product: 'NVIDIA L4' is not a " \
        "label value" in error


@pytest.mark.parametrize("settings, message", [
    ({"namespace_prefix": "Team_"}, "namespace_prefix: 'Team_' is not a Namespace prefix: "
                                    "empty, or lower-case letters"),
    ({"label_domain": "karpenter.sh"}, "label_domain 'karpenter.sh' lies in the reserved domain "
                                       "karpenter.sh; use a domain your organisation owns"),
    ({"label_domain": "Not A Domain"}, "label_domain: 'Not A Domain' is not a DNS-1123 "
                                       "subdomain"),
])
def test_planner_settings_follow_kubernetes_rules(registry: Path, settings, message):
    edit_yaml(registry / "planner.yaml", lambda d: d.update(settings))
    [error] = errors_of(registry)
    assert error.startswith("planner.yaml:") and message in error


def test_namespace_of_prefix_and_team_is_a_dns_label(registry: Path):
    edit_yaml(registry / "planner.yaml", lambda d: d.update(namespace_prefix="x" * 60 + "-"))
    errors = errors_of(registry)
    assert errors and all(": team: the team's namespace '" in e for e in errors)
    assert errors[0].startswith("models/ab-test-ranker.yaml:2: ")


def test_label_domain_reaches_every_key(cli, registry: Path, tmp_path: Path):
    edit_yaml(registry / "planner.yaml", lambda d: d.update(label_domain="ml.corp.internal"))
    text = (registry / "cluster.yaml").read_text()  # the demo's own taints use the old domain
    (registry / "cluster.yaml").write_text(text.replace("planner.example.com", "ml.corp.internal"))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--solver", "greedy")
    assert result.exit_code == 0, result.stderr
    text = "".join(p.read_text() for p in (tmp_path / "out" / "manifests").rglob("*.yaml"))
    assert "planner.example.com" not in text
    assert "ml.corp.internal/pool: shared-l4" in text


def test_plan_exits_2_on_input_that_makes_an_invalid_object(cli, registry: Path, tmp_path):
    edit_yaml(registry / "cluster.yaml", lambda d: _pool("batch-t4")(d).update(
        labels={"karpenter.sh/capacity": "x"}))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {registry / 'cluster.yaml'}:")
    assert "pools[4].labels.karpenter.sh/capacity: 'karpenter.sh/capacity' is in the reserved " \
           "domain karpenter.sh" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, message", [
    ("7-day-forecaster", "'7-day-forecaster' does not start with a letter, which KServe "
                         "requires; rename the model for --target kserve"),
    ("m" * 54, f"'{'m' * 54}' makes the predictor name '{'m' * 54}-predictor' longer than 63 "
               "characters; rename the model for --target kserve"),
])
def test_kserve_target_refuses_names_kserve_refuses(cli, registry: Path, tmp_path, name,
                                                    message):
    models = registry / "models"
    (models / "spam-filter.yaml").rename(models / f"{name}.yaml")
    edit_yaml(models / f"{name}.yaml", lambda d: d.update(name=name))
    profiles = registry / "profiles"
    (profiles / "spam-filter").rename(profiles / name)
    for profile in (profiles / name).iterdir():
        edit_yaml(profile, lambda d: d.update(model=name))
    result = cli("plan", "--registry", registry, "--target", "kserve", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert result.stderr == f"error: {models / (name + '.yaml')}:1: name: {message}\n"
    assert not (tmp_path / "o").exists()
    assert cli("validate", "--registry", registry).exit_code == 0


def test_mig_profile_names_make_resource_names(registry: Path):
    def rename(d):
        profiles = d["gpu_types"]["a100-80gb"]["mig_profiles"]
        profiles["1g 10gb"] = profiles.pop("1g.10gb")
    edit_yaml(registry / "cluster.yaml", rename)
    errors = errors_of(registry)
    assert errors[0].startswith("cluster.yaml:")
    assert ": gpu_types.a100-80gb.mig_profiles.1g 10gb: '1g 10gb' is not usable in the " \
           "resource name nvidia.com/mig-<profile>" in errors[0]


def test_report_kserve_refuses_names_kserve_refuses(cli, registry: Path, tmp_path: Path):
    assert cli("plan", "--registry", registry, "--out", tmp_path / "p", "--solver",
               "greedy").exit_code == 0
    plan_file = tmp_path / "p" / "plan.yaml"
    plan_file.write_text(plan_file.read_text().replace("name: spam-filter", "name: 9-spam"))
    result = cli("report", "--plan", plan_file, "--target", "kserve", "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert result.stderr == (f"error: {plan_file}: models: '9-spam' does not start with a "
                             "letter, which KServe requires; rename the model for --target "
                             "kserve\n")
    assert not (tmp_path / "r").exists()


def test_a_pool_names_its_instance_type(registry: Path):
    edit_yaml(registry / "cluster.yaml", lambda d: _pool("exclusive-l4")(d).pop("instance_type"))
    [error] = errors_of(registry)
    assert error.startswith("cluster.yaml:") and error.split(": ", 1)[1] == (
        "pools[1].instance_type: required key is missing")


def test_gpu_operator_namespace_holds_its_config_maps(cli, registry: Path, tmp_path: Path):
    edit_yaml(registry / "planner.yaml", lambda d: d.update(
        gpu_operator_namespace="nvidia-gpu-operator"))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--solver", "greedy")
    assert result.exit_code == 0, result.stderr
    config_maps = list(yaml.safe_load_all(
        (tmp_path / "out" / "manifests" / "gpu-operator" / "configmaps.yaml").read_text()))
    assert [c["metadata"]["namespace"] for c in config_maps] == ["nvidia-gpu-operator"] * 2
    edit_yaml(registry / "planner.yaml", lambda d: d.update(gpu_operator_namespace="GPU Op"))
    [error] = errors_of(registry)
    assert error.startswith("planner.yaml:") and ": gpu_operator_namespace: " in error
