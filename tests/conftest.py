"""Shared fixtures: a writable copy of the demo registry and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.registry.locate import write_demo

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """A fresh copy of the demo registry that a test may edit."""
    target = tmp_path / "registry"
    write_demo(target)
    return target


def edit_yaml(path: Path, change) -> None:
    """Load a YAML file, let `change` edit the data in place, write it back."""
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def cli():
    """Run the CLI in-process; returns the click Result with stdout and stderr apart."""
    runner = CliRunner()

    def run(*args: str, **kwargs):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return run


#: Yen per US dollar for the demo's prices in a JPY registry (any rate will do: JPY has no
#: minor unit, which is what such a registry tests).
YEN_PER_DOLLAR = 150


def write_jpy_demo(target: Path) -> Path:
    """The demo registry priced in Japanese yen, written to `target`."""
    write_demo(target)
    edit_yaml(target / "planner.yaml", lambda d: d.update(currency="JPY"))

    def to_yen(cluster: dict) -> None:
        for pool in cluster["pools"]:
            pool["price_per_node_hour"] = round(pool["price_per_node_hour"] * YEN_PER_DOLLAR, 2)

    edit_yaml(target / "cluster.yaml", to_yen)
    return target


@pytest.fixture(scope="session")
def greedy_demo_out(tmp_path_factory) -> Path:
    """The demo planned by the greedy solver into an output folder, once per test run; tests
    only read it."""
    out = tmp_path_factory.mktemp("greedy-demo") / "out"
    result = CliRunner().invoke(app, ["plan", "--solver", "greedy", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return out
