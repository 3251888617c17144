"""CLI contract of init and validate: exit codes, stdout versus stderr, messages."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from planner import __version__
from planner.demo import demo_registry_path


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"planner {__version__}\n"


def test_init_then_validate(cli, tmp_path: Path):
    target = tmp_path / "r"
    result = cli("init", target)
    assert result.exit_code == 0, result.stderr
    files = sorted(p.relative_to(target) for p in target.rglob("*")
                   if p.is_file() and p.parts[len(target.parts)] != "schemas")
    demo = sorted(p.relative_to(demo_registry_path())
                  for p in demo_registry_path().rglob("*.yaml"))
    assert files == demo
    assert sorted(p.name for p in (target / "schemas").iterdir()) == [
        ".planner-output", "cluster.schema.json", "model.schema.json", "planner.schema.json",
        "policy.schema.json", "profile.schema.json", "reference.md"]
    result = cli("validate", "--registry", target)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"registry {target} is valid: 32 models, 5 teams, 5 pools, ")
    assert result.stderr == ""


def test_init_refuses_non_empty_folder(cli, tmp_path: Path):
    (tmp_path / "keep.txt").write_text("mine")
    result = cli("init", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path}: folder is not empty; choose a new folder or " \
                            "pass --force\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_validate_json(cli, registry: Path):
    result = cli("validate", "--registry", registry, "--format", "json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["valid"] is True
    assert summary["models"] == 32 and summary["pools"] == 5


def test_validate_uses_demo_and_says_so(cli, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("validate")
    assert result.exit_code == 0
    assert "using the bundled demo registry" in result.stderr


def test_validate_uses_current_folder_registry(cli, registry: Path, monkeypatch):
    monkeypatch.chdir(registry)
    result = cli("validate")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"registry {registry} is valid")


def test_validate_reports_both_errors_exit_2(cli, registry: Path):
    path = registry / "models" / "intent-classifier.yaml"
    path.write_text(path.read_text().replace("max_concurrency", "max_concurency"))
    path = registry / "models" / "embedding-service.yaml"
    path.write_text(path.read_text().replace("priority: production", "priority: prod"))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {registry}/models/embedding-service.yaml:5: priority: 'prod' is not one of "
        "production, internal, batch, experimental (did you mean 'production'?)",
        f"error: {registry}/models/intent-classifier.yaml:9: limits.max_concurency: unknown key "
        "(did you mean 'max_concurrency'?)",
        "2 errors",
    ]


@pytest.mark.parametrize("setup, expected", [
    (lambda r: (r / "cluster.yaml").unlink(), "cluster.yaml: file not found"),
    (lambda r: (r / "policy.yaml").write_text("a: [\n"),
     "policy.yaml:2: YAML syntax error: did not find expected node content"),
    (lambda r: (r / "models" / "spam-filter.yaml").write_text(""),
     "models/spam-filter.yaml:1: file is empty; expected a YAML mapping"),
])
def test_bad_files_one_line_exit_2(cli, registry: Path, setup, expected):
    setup(registry)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == f"error: {registry}/{expected}\n"
    assert "Traceback" not in result.output


def test_missing_registry_exit_2(cli, tmp_path: Path):
    result = cli("validate", "--registry", tmp_path / "nope")
    assert result.exit_code == 2
    assert "registry folder not found" in result.stderr


def test_unknown_flag_exit_2(cli):
    assert cli("validate", "--bogus").exit_code == 2


def test_internal_error_exit_3_one_line(cli, registry: Path, monkeypatch):
    def broken(_root):
        raise RuntimeError("boom")

    monkeypatch.setattr("planner.registry.loader.load_registry", broken)
    monkeypatch.delenv("PLANNER_DEBUG", raising=False)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 3
    assert result.stderr == "internal error: RuntimeError: boom (set PLANNER_DEBUG=1 for the " \
                            "traceback)\n"


def test_planner_debug_shows_traceback(cli, registry: Path, monkeypatch):
    def broken(_root):
        raise RuntimeError("boom")

    monkeypatch.setattr("planner.registry.loader.load_registry", broken)
    monkeypatch.setenv("PLANNER_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        cli("validate", "--registry", registry)


def test_help_imports_no_heavy_library():
    code = ("import sys; from planner.cli import main; sys.argv = ['planner', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('ortools', 'pandas', 'torch', 'numpy') if m in sys.modules]\n"
            "print(','.join(heavy), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "100"})
    assert result.returncode == 0
    assert result.stderr.strip() == ""


def test_console_script_runs():
    result = subprocess.run(["planner", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"planner {__version__}"


def _options_not_in_readme(command, readme: str) -> list[str]:
    """Each option of each command (`profile run`) that the README's Commands table does not
    show in a row of that command (`| `planner profile run ...` |`, or after a ` / ` in a row
    of several); a flag pair (`--force/--no-force`) by either name. The app's own options
    (`--version`) anywhere in the README."""
    import re

    import typer.core

    signatures = [row.split(" | ")[0] for row in readme.splitlines()
                  if row.startswith("| `planner ")]
    missing = [f"planner {o}" for p in command.params
               if not any(f"planner {o}" in readme for o in p.opts) for o in p.opts[:1]]

    def walk(group, path: list[str]):
        for name, sub in group.commands.items():
            if hasattr(sub, "commands"):
                yield from walk(sub, [*path, name])
            else:
                yield " ".join([*path, name]), sub

    for name, sub in walk(command, []):
        text = " ".join(cell for cell in signatures
                        if re.search(rf"`planner {re.escape(name)}[ `]", cell))
        for param in sub.params:
            names = [o for o in param.opts + param.secondary_opts if o.startswith("--")]
            if not isinstance(param, typer.core.TyperOption) or names == ["--help"]:
                continue
            if not any(re.search(rf"{re.escape(o)}(?![\w-])", text) for o in names):
                missing.append(f"planner {name} {names[0]}")
    return missing


def test_every_option_is_in_the_readmes_commands_table():
    """The README's Commands table is the CLI's reference: each command's row shows every
    option the command takes."""
    import typer.main

    from planner.cli import app

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert _options_not_in_readme(typer.main.get_command(app), readme) == []


def test_the_readme_rule_sees_a_missing_option():
    import typer
    import typer.main

    sample = typer.Typer(add_completion=False)
    sub = typer.Typer()
    sample.add_typer(sub, name="group")

    @sample.command()
    def one(force: bool = False, seed: int = 0) -> None:
        """A command."""

    @sub.command()
    def two(node_loss: bool = True, out: str = "") -> None:
        """A command of a group."""

    readme = ("| `planner one [--force]` | x |\n"
              "| `planner group two [--no-node-loss] [--outer]` | x |\n")
    assert _options_not_in_readme(typer.main.get_command(sample), readme) == [
        "planner one --seed", "planner group two --out"]
