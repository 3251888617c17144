"""Hostile or broken registry files end in exit 2 with FILE:LINE, never in exit 3, a hang or
unbounded memory: devices, FIFOs, symlinks out of the registry, oversized files, alias bombs,
deep nesting, control characters, odd tags, and numbers out of any physical range."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from planner.registry.yamlsource import MAX_FILE_BYTES

SPAM = "models/spam-filter.yaml"
PROFILE = "profiles/spam-filter/l4.yaml"


def first_error(result) -> str:
    return result.stderr.splitlines()[0]


@pytest.mark.parametrize(("file", "old", "new", "where", "message"), [
    (SPAM, "peak_rps: 700", "peak_rps: .inf", 7, "traffic.peak_rps: must be a finite number, "
     "found the number .inf"),
    ("cluster.yaml", "price_per_node_hour: 4.6016", "price_per_node_hour: .inf", 65,
     "pools[0].price_per_node_hour: must be a finite number, found the number .inf"),
    ("cluster.yaml", "price_per_node_hour: 4.6016", "price_per_node_hour: 1.0e+308", 65,
     "pools[0].price_per_node_hour: must be less than or equal to 1000000, found the number "
     "1.0e+308"),
    (PROFILE, "throughput_rps: 629.02", "throughput_rps: 5.0e-324", 30,
     "points[0].throughput_rps: must be greater than or equal to 0.001, found the number "
     "5.0e-324"),
    (PROFILE, "throughput_rps: 629.02", "throughput_rps: .inf", 30,
     "points[0].throughput_rps: must be a finite number, found the number .inf"),
    ("policy.yaml", "target_utilization: 0.8", "target_utilization: 1.0e-300", 3,
     "target_utilization: must be greater than or equal to 0.01, found the number 1.0e-300"),
    (PROFILE, "peak_memory_mib: 439.0", "peak_memory_mib: 1.0e+300", 34,
     "points[0].peak_memory_mib: must be less than or equal to 1099511627776, found the number "
     "1.0e+300"),
    (PROFILE, "peak_memory_mib: 439.0", "peak_memory_mib: .inf", 34,
     "points[0].peak_memory_mib: must be a finite number, found the number .inf"),
    ("policy.yaml", "max_node_share: 0.5", "max_node_share: 1.0e-9", 6,
     "spread.max_node_share: must be greater than or equal to 0.01, found the number 1.0e-9"),
    ("cluster.yaml", "max_nodes: 8", "max_nodes: 9223372036854775808", None,
     "max_nodes: must be less than or equal to 10000, found the number 9223372036854775808"),
    (SPAM, "team: trust-safety", "team: !!binary dHJ1c3Qtc2FmZXR5", 2,
     "YAML syntax error: could not determine a constructor for the tag "
     "'tag:yaml.org,2002:binary'"),
])
def test_numbers_and_tags_out_of_range_exit_2(cli, registry: Path, file, old, new, where,
                                              message):
    path = registry / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    line = first_error(result)
    if where is None:
        assert line.startswith(f"error: {path}:") and line.endswith(message)
    else:
        assert line == f"error: {path}:{where}: {message}"


def test_stated_memory_beyond_two_to_the_63(cli, registry: Path):
    path = registry / SPAM
    data = yaml.safe_load(path.read_text())
    data["resources"] = {"memory_mib": 2**63, "throughput_rps": 100}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert any(line.endswith("resources.memory_mib: must be less than or equal to "
                             "1099511627776, found the number 9223372036854775808")
               for line in result.stderr.splitlines())


def test_hours_per_month_tiny(cli, registry: Path):
    (registry / "planner.yaml").write_text("hours_per_month: 1.0e-300\n")
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert first_error(result) == (f"error: {registry / 'planner.yaml'}:1: hours_per_month: "
                                   "must be greater than or equal to 1, found the number "
                                   "1.0e-300")


@pytest.mark.parametrize(("content", "where", "message"), [
    ("name: " + "[" * 1000 + "]" * 1000 + "\n", 1,
     "YAML syntax error: exceeded maximum nesting depth"),
    ("name: " + "[" * 40 + "]" * 40 + "\n", 1,
     "YAML syntax error: nested deeper than 32 levels; flatten the file"),
    ("name: &a [*a]\n", 1, "YAML syntax error: an alias refers to the collection that contains "
     "it; remove the recursion"),
    ("name: a\x07b\n", 1, "control character 0x07 is not allowed in YAML; remove it"),
    ("team: x\nname: a\x00b\n", 2, "control character 0x00 is not allowed in YAML; remove it"),
    ("name: a\x1b[31mb\n", 1, "control character 0x1b is not allowed in YAML; remove it"),
    ("a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 8)), 1,
     "YAML syntax error: aliases expand to more than 100,000 extra nodes; write the values out"),
])
def test_hostile_yaml_exit_2(cli, registry: Path, content: str, where: int, message: str):
    path = registry / "models" / "hostile.yaml"
    path.write_text(content)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert first_error(result) == f"error: {path}:{where}: {message}"


def test_undecodable_file_names_its_line(cli, registry: Path):
    path = registry / "models" / "latin1.yaml"
    path.write_bytes(b"name: x\nteam: caf\xe9\n")
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert first_error(result) == (f"error: {path}:2: not UTF-8 text (byte 0xe9); save the "
                                   "file as UTF-8")


def test_symlink_to_a_device_is_refused(cli, registry: Path):
    path = registry / "models" / "zeros.yaml"
    os.symlink("/dev/zero", path)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {path}: symbolic link to /dev/zero leaves the registry; "
                             "put the file itself there\n")


def test_symlink_inside_the_registry_is_read(cli, registry: Path):
    (registry / "shared").mkdir()
    (registry / "policy.yaml").rename(registry / "shared" / "policy.yaml")
    os.symlink("shared/policy.yaml", registry / "policy.yaml")
    assert cli("validate", "--registry", registry).exit_code == 0


def test_fifo_is_refused_without_blocking(cli, registry: Path):
    path = registry / "models" / "pipe.yaml"
    os.mkfifo(path)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {path}: not a regular file (a device, FIFO or socket); "
                             "the planner reads only plain files\n")


def test_folder_named_like_a_file_is_refused(cli, registry: Path):
    path = registry / "models" / "folder.yaml"
    path.mkdir()
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}: is a folder, not a YAML file\n"


def test_oversized_file_is_refused(cli, registry: Path):
    path = registry / "models" / "huge.yaml"
    path.write_text("# " + "x" * MAX_FILE_BYTES + "\n")
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {path}: larger than {MAX_FILE_BYTES:,} bytes; a planner "
                             "file is far smaller\n")


@pytest.mark.parametrize("value", ["/etc", "../outside", "models/../../x", "~/models"])
def test_config_paths_stay_inside_the_registry(cli, registry: Path, value: str):
    (registry / "planner.yaml").write_text(f"paths: {{models: '{value}'}}\n")
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert first_error(result) == (f"error: {registry / 'planner.yaml'}:1: paths.models: "
                                   f"'{value}' leaves the registry; give a path relative to the "
                                   "registry folder, without '..'")


def test_base_plan_with_gpus_beyond_the_pool_is_ignored_there(cli, registry: Path,
                                                              tmp_path: Path):
    out = tmp_path / "out"
    assert cli("plan", "--registry", registry, "--out", out, "--solver", "greedy").exit_code == 0
    data = yaml.safe_load((out / "plan.yaml").read_text())
    data["pools"][0]["nodes"][0]["gpus"][0]["index"] = 99
    data["pools"][0]["nodes"][0]["index"] = 5000
    forged = tmp_path / "base.yaml"
    forged.write_text(yaml.safe_dump(data, sort_keys=False))
    result = cli("plan", "--registry", registry, "--base", forged, "--time-limit", "2",
                 "--format", "json")
    assert result.exit_code == 0, result.stderr


def test_traffic_beyond_any_replica_count_is_a_reason_not_a_crash(cli, registry: Path):
    path = registry / PROFILE
    path.write_text(path.read_text().replace("throughput_rps: 629.02", "throughput_rps: 0.001"))
    path = registry / SPAM
    path.write_text(path.read_text().replace("peak_rps: 700", "peak_rps: 1e9"))
    result = cli("plan", "--registry", registry, "--solver", "greedy", "--format", "json")
    assert result.exit_code == 1
    assert "spam-filter (production): shared-l4: needs more than 10,000 replicas on l4" \
        in result.stderr


def test_union_field_reported_once(cli, registry: Path):
    path = registry / "models" / "intent-classifier.yaml"
    text = path.read_text()
    path.write_text(text.replace("kwargs: {", "kwargs: {bad: [1], ", 1))
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "kwargs: {" in row)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {path}:{line}: source.kwargs.bad: expected one of a whole "
                             "number / a number / text / true or false, found a list\n")


def test_symlink_loop_is_refused(cli, registry: Path):
    path = registry / "models" / "loop.yaml"
    os.symlink("loop.yaml", path)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {path}: symbolic link that leads back to itself; put the "
                             "file itself there\n")
