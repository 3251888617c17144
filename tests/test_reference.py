"""The registry's JSON Schemas and reference page: generated from the pydantic models, committed
in docs/registry, agreeing with pydantic on the demo's files, and wired by `planner init`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from planner.demo import demo_registry_path
from planner.registry.reference import COMMAND, FILES, format_of, generated_files, json_schema

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "registry"
DEMO = demo_registry_path()


def test_committed_reference_and_schemas_are_current():
    committed = {p.name: p.read_text(encoding="utf-8") for p in DOCS.iterdir()
                 if p.is_file() and p.name != ".planner-output"}
    stale = sorted(name for name, text in generated_files().items()
                   if committed.get(name) != text)
    extra = sorted(set(committed) - set(generated_files()))
    assert not stale and not extra, (
        f"docs/registry is out of date ({', '.join(stale + extra)}): a schema, a field's "
        f"docstring or the demo changed; regenerate with `{COMMAND}` and commit the result")


def _demo_files(fmt) -> list[Path]:
    return [p for p in sorted(DEMO.rglob("*.yaml"))
            if format_of(p.relative_to(DEMO).as_posix()) is fmt]


@pytest.mark.parametrize("fmt", FILES, ids=[f.key for f in FILES])
def test_json_schema_accepts_what_pydantic_accepts(fmt):
    """Every demo file of this kind passes both pydantic and the JSON Schema an editor uses."""
    files = _demo_files(fmt)
    assert files, f"the demo has no {fmt.path}"
    validator = jsonschema.Draft202012Validator(json_schema(fmt))
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        fmt.schema.model_validate(data)
        errors = [e.message for e in validator.iter_errors(data)]
        assert errors == [], f"{path}: {errors}"


@pytest.mark.parametrize("fmt_key, edit, word", [
    ("planner", lambda d: d.update(kubernetes_version=1.31), "1.31"),
    ("model", lambda d: d.update(priorty="production"), "priorty"),
    ("model", lambda d: d["labels"].update({"model-tier": "huge"}), "huge"),
    ("cluster", lambda d: d["pools"][0].update(name="Shared_L4"), "Shared_L4"),
    ("cluster", lambda d: d["pools"][0]["taints"][0].update(key="a/b/c"), "a/b/c"),
    ("policy", lambda d: d.update(memory_headroom=1.5), "1.5"),
    ("profile", lambda d: d["points"][0].update(concurrency=0), "0"),
], ids=["unquoted version", "unknown key", "enum value", "pool name", "taint key",
        "bound", "profile bound"])
def test_json_schema_refuses_what_pydantic_refuses(fmt_key, edit, word):
    fmt = next(f for f in FILES if f.key == fmt_key)
    data = yaml.safe_load(_demo_files(fmt)[0].read_text(encoding="utf-8"))
    edit(data)
    with pytest.raises(ValueError):
        fmt.schema.model_validate(data)
    errors = [e.message for e in
              jsonschema.Draft202012Validator(json_schema(fmt)).iter_errors(data)]
    assert len(errors) == 1 and word in errors[0], errors


def _properties(schema: dict) -> list[tuple[str, str, dict]]:
    found = [("(top)", key, prop) for key, prop in schema["properties"].items()]
    for name, body in schema.get("$defs", {}).items():
        found += [(name, key, prop) for key, prop in body.get("properties", {}).items()]
    return found


@pytest.mark.parametrize("fmt", FILES, ids=[f.key for f in FILES])
def test_every_key_is_described(fmt):
    """A field without a docstring would reach the reference as a bare name."""
    missing = [f"{owner}.{key}" for owner, key, prop in _properties(json_schema(fmt))
               if not prop.get("description")]
    assert missing == [], (f"describe these fields of {fmt.path} with a docstring under each "
                           f"in the schema, then run `{COMMAND}`: {missing}")


def test_reference_lists_every_key_with_its_example():
    page = generated_files()["reference.md"]
    for fmt in FILES:
        for _, key, _ in _properties(json_schema(fmt)):
            assert f"- `{key}`: " in page, key
    assert ("- `kubernetes_version`: string, a Kubernetes minor version as a quoted string, "
            "such as \"1.33\"; default `'1.33'`.") in page
    assert ("- `peak_rps`: number, > 0, <= 1000000000.0; in requests per second; **required**. "
            "The highest "
            "request rate the model must serve; replicas are sized for it. Example: `400`.") \
        in page
    assert ("- `sharing`: one of `exclusive`, `time-slicing`, `mps`, `mig`; optional. How "
            "replicas share a GPU") in page  # required in a GPU pool, absent in a CPU pool


def test_schema_prints_one_file(cli):
    result = cli("schema", "policy")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == json_schema(next(f for f in FILES if f.key == "policy"))


def test_schema_refuses_an_unknown_file(cli):
    result = cli("schema", "pools")
    assert result.exit_code == 2
    assert result.stderr == ("error: no registry file called 'pools'; one of cluster, policy, "
                             "model, profile, planner\n")


def test_schema_out_writes_every_file(cli, tmp_path: Path):
    result = cli("schema", "--out", tmp_path / "s")
    assert result.exit_code == 0, result.stderr
    written = {p.name: p.read_text() for p in (tmp_path / "s").iterdir()
               if p.name != ".planner-output"}
    assert written == generated_files()


def test_init_points_every_file_at_its_schema(cli, tmp_path: Path):
    target = tmp_path / "r"
    assert cli("init", target).exit_code == 0
    for path in sorted(target.rglob("*.yaml")):
        relative = path.relative_to(target).as_posix()
        first, second = path.read_text().splitlines()[:2]
        fmt = format_of(relative)
        assert fmt is not None, relative
        assert first.startswith("# yaml-language-server: $schema="), relative
        schema_file = (path.parent / first.split("=", 1)[1]).resolve()
        assert schema_file == (target / "schemas" / fmt.schema_file).resolve()
        assert json.loads(schema_file.read_text()) == json_schema(fmt)
        assert second.endswith("schemas/reference.md")
    model = (target / "models" / "intent-classifier.yaml").read_text()
    assert "serving_profile: online  # online | bursty | batch | large\n" in model
    assert cli("validate", "--registry", target).exit_code == 0


FROM_REFERENCE = ROOT / "tests" / "registries" / "from-reference"


def test_registry_written_from_the_reference_validates_and_plans(cli, tmp_path: Path):
    result = cli("validate", "--registry", FROM_REFERENCE)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"registry {FROM_REFERENCE} is valid: 6 models, 2 teams, "
                                    "3 pools, 0 profiles")
    result = cli("plan", "--registry", FROM_REFERENCE, "--solver", "greedy",
                 "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out" / "plan.html").is_file()


FIRST_USER = ROOT / "tests" / "registries" / "first-user"


def test_registry_of_a_first_users_trial_stays_valid(cli, tmp_path: Path):
    """Written by someone who had only the reference and the README; it validated in one
    round. Its H100 model needs more nodes than the pool allows: exit 1, and the reason."""
    result = cli("validate", "--registry", FIRST_USER)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"registry {FIRST_USER} is valid: 6 models, 2 teams, "
                                    "2 pools, 1 profile (0 measured, 1 reference)")
    result = cli("plan", "--registry", FIRST_USER, "--solver", "greedy", "--out",
                 tmp_path / "out")
    assert result.exit_code == 1
    assert ("unplaced: search-llm (production): exclusive-h100: spread allows 2 per node on at "
            "most 2 nodes, 5 replicas needed") in result.stderr
