"""The `planner` command line: the top layer, and the only code that prints or exits.

Each module registers its commands on the one typer app, in the order `planner --help` lists
them; nothing below this package imports it.
"""

from __future__ import annotations

from planner.cli import (  # noqa: F401  (each registers its commands)
    plan,
    profile,
    registry,
    review,
    simulate,
    traffic,
    whatif,
)
from planner.cli.app import app


def main() -> None:
    app()
