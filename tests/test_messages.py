"""Errors in the registry's terms: what was expected (with the shape), quoting where YAML typed
a value, one error per typo however many places it breaks, and plan and registry files told
apart."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from planner.errors import InputError
from planner.planfile import load_plan
from tests.conftest import edit_yaml
from tests.test_loader import errors_of


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_unquoted_version_is_asked_to_be_quoted(registry: Path):
    _replace(registry / "planner.yaml", 'kubernetes_version: "1.33"', "kubernetes_version: 1.30")
    assert errors_of(registry) == [
        'planner.yaml:3: kubernetes_version: expected text, found the number 1.30; write it as '
        'a string: "1.30"']


def test_a_scalar_where_a_mapping_belongs_shows_the_mapping(registry: Path):
    edit_yaml(registry / "policy.yaml", lambda d: d["priorities"].update(production=5))
    [error] = errors_of(registry)
    assert error.endswith(
        "priorities.production: expected a mapping such as {value: WHOLE-NUMBER} (optional keys: "
        "preemption, description), found the number 5")
    assert "PriorityClass" not in error


def test_missing_section_shows_what_it_holds(registry: Path):
    edit_yaml(registry / "models" / "spam-filter.yaml", lambda d: d.pop("traffic"))
    assert errors_of(registry) == [
        "models/spam-filter.yaml:1: traffic: required key is missing; expected "
        "{peak_rps: NUMBER} (optional keys: mean_rps)"]


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(name="Spam_Filter"),
     "name: 'Spam_Filter' is not a DNS-1123 label: lower-case letters, digits and '-', starting "
     "and ending with a letter or digit, at most 63 characters"),
    (lambda d: d.update(gpus_per_replica=1.5),
     "gpus_per_replica: expected a whole number, found the number 1.5"),
    (lambda d: d["traffic"].update(peak_rps=-3),
     "traffic.peak_rps: must be greater than 0, found the number -3"),
    (lambda d: d["limits"].update(max_concurrency="many"),
     "limits.max_concurrency: expected a whole number, found the text 'many'"),
], ids=["pattern in words", "whole number", "bound", "text for a number"])
def test_value_errors_in_words(registry: Path, change, message):
    edit_yaml(registry / "models" / "spam-filter.yaml", change)
    [error] = errors_of(registry)
    assert error.split(": ", 1)[1] == message


def test_one_misspelt_pool_is_one_error_naming_the_models_it_strands(registry: Path):
    _replace(registry / "policy.yaml", "pools: [shared-l4]", "pools: [shared-l44]")
    assert errors_of(registry) == [
        "policy.yaml:17: admission[0].pools[0]: unknown pool 'shared-l44' (did you mean "
        "'shared-l4'?); cluster.yaml defines shared-l4, exclusive-l4, mig-a100, dedicated-h100, "
        "batch-t4; 11 model(s) no other pool admits: autocomplete, candidate-retriever, "
        "ctr-ranker, embedding-service, intent-classifier and 6 more"]


def test_a_pool_name_used_twice_is_one_error_listing_both_uses(registry: Path):
    def rename(data):
        data["admission"][0]["pools"] = ["shared-l44"]
        data["admission"][2]["pools"] = ["shared-l44", "mig-a100"]
    edit_yaml(registry / "policy.yaml", rename)
    [error] = errors_of(registry)
    assert "unknown pool 'shared-l44'" in error
    assert "used by admission rules shared-small (line " in error
    assert ", medium-bursty (line " in error


def test_one_misspelt_gpu_type_is_one_error_for_the_pools_and_one_for_the_profiles(
        registry: Path):
    edit_yaml(registry / "cluster.yaml",
              lambda d: d.update(gpu_types={("l4x" if k == "l4" else k): v
                                            for k, v in d["gpu_types"].items()}))
    errors = errors_of(registry)
    assert len(errors) == 2, errors
    assert "pools[0].gpu_type: unknown GPU type 'l4' (did you mean 'l4x'?); define it under " \
           "gpu_types; used by pools shared-l4, exclusive-l4; 12 model(s) admitted only there " \
           "have no profile to plan from until it is fixed: " in errors[0]
    assert errors[1].startswith("profiles/autocomplete/l4.yaml:")
    assert "profile for unknown GPU type 'l4' (did you mean 'l4x'?); define it under gpu_types " \
           "in cluster.yaml; 16 more profile(s) are filed under it: " in errors[1]


@pytest.mark.parametrize("name, what", [
    ("cluster.yaml", "cluster.yaml: GPU types and node pools"),
    ("policy.yaml", "policy.yaml: placement rules"),
    ("models/spam-filter.yaml", "models/<name>.yaml: one model per file"),
    ("profiles/spam-filter/l4.yaml",
     "profiles/<model>/<gpu-type>.yaml: measured (or reference) profile per model and GPU type"),
])
def test_a_registry_file_given_as_a_plan(registry: Path, name, what):
    with pytest.raises(InputError) as info:
        load_plan(registry / name)
    assert str(info.value) == (f"{registry / name}:1: this is a registry file ({what}), not a "
                               "plan file; pass the plan.yaml that `planner plan --out DIR` "
                               "wrote")


@pytest.fixture(scope="module")
def plan_text(tmp_path_factory) -> str:
    from typer.testing import CliRunner

    from planner.cli import app

    out = tmp_path_factory.mktemp("plan") / "out"
    result = CliRunner().invoke(app, ["plan", "--solver", "greedy", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return (out / "plan.yaml").read_text()


def test_a_plan_given_as_a_registry_file(registry: Path, plan_text: str):
    (registry / "cluster.yaml").write_text(plan_text)
    assert errors_of(registry) == [
        "cluster.yaml:1: this is a plan file (kind: PlacementPlan), not the registry's "
        "cluster.yaml; a plan is read with --plan or --base, the registry with --registry"]


def test_a_plan_folder_given_as_the_registry(cli, tmp_path: Path, plan_text: str):
    (tmp_path / "plan.yaml").write_text(plan_text)
    result = cli("validate", "--registry", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {tmp_path}: this folder holds a plan (plan.yaml), not a registry; pass "
        "--registry the registry folder (models/, cluster.yaml, policy.yaml), and the plan with "
        "--plan or --base\n")


def test_plan_base_given_a_registry_file(cli, registry: Path):
    result = cli("plan", "--registry", registry, "--base", registry / "policy.yaml")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {registry / 'policy.yaml'}:1: this is a registry file (policy.yaml: placement "
        "rules), not a plan file; pass the plan.yaml that `planner plan --out DIR` wrote\n")
    assert yaml.safe_load((registry / "policy.yaml").read_text())["admission"]
