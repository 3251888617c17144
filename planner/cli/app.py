"""The typer app, its shared options and the error guard that every command runs under.

Exit codes: 0 success; 1 the answer is no; 2 bad input or usage; 3 internal error.
Heavy libraries (ortools, pandas, torch) are imported inside the commands that need them.
"""

from __future__ import annotations

import functools
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from planner import __version__
from planner.errors import InputError, PlannerError, printable
from profiles.errors import ProfileError

app = typer.Typer(
    name="planner",
    help="Plan where ML models run on shared GPU pools, and what that costs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


RegistryOption = Annotated[
    Path | None,
    typer.Option("--registry", "-r", help="Registry folder (default: the current folder if it "
                 "holds planner.yaml or models/, else the bundled demo).",
                 file_okay=False, show_default=False),
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Result format on stdout.")]


def guarded(command):
    """Turn planner errors into messages and exit codes, and anything else into exit 3.

    A ProfileError is the profiler's bad input (a source that does not load, a log without
    profiles): exit 2 like any other input error."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from planner.cli.console import err

        try:
            return command(*args, **kwargs)
        except PlannerError as exc:
            if isinstance(exc, InputError):
                count = len(exc.problems)
                for problem in exc.problems:
                    err.print(f"error: {problem}", markup=False)
                if count > 1:
                    err.print(f"{count} errors", markup=False)
            else:
                err.print(f"error: {printable(str(exc))}", markup=False)
            raise typer.Exit(exc.exit_code) from None
        except ProfileError as exc:
            err.print(f"error: {printable(str(exc))}", markup=False)
            raise typer.Exit(InputError.exit_code) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("PLANNER_DEBUG"):
                raise
            err.print(f"internal error: {type(exc).__name__}: {printable(str(exc))} "
                      "(set PLANNER_DEBUG=1 for the traceback)", markup=False)
            raise typer.Exit(3) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"planner {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Plan where ML models run on shared GPU pools, and what that costs."""


def load_fleet(registry: Path | None):
    """Resolve and load the registry, saying on stderr when the bundled demo is used."""
    from planner.cli.console import err
    from planner.registry.loader import load_registry
    from planner.registry.locate import resolve_registry

    root, is_demo = resolve_registry(registry)
    if is_demo:
        err.print("no registry here; using the bundled demo registry "
                  "(`planner init DIR` writes a copy to edit)", markup=False)
    return load_registry(root)
