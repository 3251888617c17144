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
