"""The `planner` command line. The only module that prints or exits.

Exit codes: 0 success; 1 the answer is no; 2 bad input or usage; 3 internal error.
Heavy libraries (ortools, pandas, torch) are imported inside the commands that need them.
"""

from __future__ import annotations

import functools
import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from planner import __version__
from planner.errors import InputError, PlannerError

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
    """Turn planner errors into messages and exit codes, and anything else into exit 3."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from planner.console import err

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
                err.print(f"error: {exc}", markup=False)
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("PLANNER_DEBUG"):
                raise
            err.print(f"internal error: {type(exc).__name__}: {exc} "
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
    from planner.console import err
    from planner.loader import load_registry
    from planner.registry import resolve_registry

    root, is_demo = resolve_registry(registry)
    if is_demo:
        err.print("no registry here; using the bundled demo registry "
                  "(`planner init DIR` writes a copy to edit)", markup=False)
    return load_registry(root)


@app.command()
@guarded
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to write the demo registry to.")],
    force: Annotated[bool, typer.Option(help="Write into a non-empty folder.")] = False,
) -> None:
    """Write the bundled demo registry to DIRECTORY, to start a registry of your own."""
    from planner.console import out
    from planner.registry import write_demo

    count = write_demo(directory, force=force)
    out.print(f"wrote the demo registry to {directory} ({count} files); "
              f"try: planner validate --registry {directory}", markup=False)


@app.command()
@guarded
def validate(registry: RegistryOption = None, format: FormatOption = OutputFormat.table) -> None:
    """Check every file of the registry and the rules between them."""
    from planner.console import out

    fleet = load_fleet(registry)
    measured = sum(1 for p in fleet.profiles.values() if p.method == "measured")
    summary = {
        "valid": True,
        "registry": str(fleet.root),
        "models": len(fleet.models),
        "teams": len(fleet.teams),
        "pools": len(fleet.cluster.pools),
        "gpu_types": len(fleet.cluster.gpu_types),
        "profiles": len(fleet.profiles),
        "profiles_measured": measured,
        "profiles_reference": len(fleet.profiles) - measured,
    }
    if format is OutputFormat.json:
        out.print_json(json.dumps(summary))
        return
    out.print(f"registry {fleet.root} is valid: {summary['models']} models, "
              f"{summary['teams']} teams, {summary['pools']} pools, "
              f"{summary['profiles']} profiles ({measured} measured, "
              f"{summary['profiles_reference']} reference)", markup=False)


class SolverChoice(StrEnum):
    cpsat = "cpsat"
    greedy = "greedy"


@app.command()
@guarded
def plan(
    registry: RegistryOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write plan.yaml and the "
                                             "reports to this folder (replaced atomically).",
                                             file_okay=False)] = None,
    solver: Annotated[SolverChoice, typer.Option(help="cpsat: optimal with a proven bound; "
                                                 "greedy: the quick baseline.")]
    = SolverChoice.cpsat,
    time_limit: Annotated[float, typer.Option("--time-limit", min=0.1,
                                              help="Seconds for the solver.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed; same seed and input, same plan.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="CP-SAT worker threads.")] = 2,
    base: Annotated[Path | None, typer.Option(help="An earlier plan.yaml: keep replicas where "
                                              "they are unless moving them saves money.",
                                              dir_okay=False)] = None,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Pack the registry's models onto the cluster's pools at the lowest cost."""
    from planner.console import err
    from planner.console import out as stdout
    from planner.plan import dump_plan, load_plan
    from planner.planning import SolverSettings, make_plan
    from reports.tables import plan_tables

    fleet = load_fleet(registry)
    base_plan = load_plan(base) if base else None
    settings = SolverSettings(method=solver.value, time_limit_s=time_limit, seed=seed,
                              workers=workers)
    if err.is_terminal:
        with err.status("solving…") as status:
            result = make_plan(fleet, settings, base=base_plan,
                               progress=lambda message: status.update(f"solving: {message}"))
    else:
        result = make_plan(fleet, settings, base=base_plan)
    if out is not None:
        from planner.output import write_folder
        from reports import render_all

        write_folder(out, {"plan.yaml": dump_plan(result), **render_all(result)})
        err.print(f"wrote {out}/plan.yaml", markup=False)
    if format is OutputFormat.json:
        stdout.print_json(result.model_dump_json(by_alias=True))
    else:
        for table in plan_tables(result):
            stdout.print(table)
    if result.unplaced:
        for model in result.unplaced:
            err.print(f"unplaced: {model.name} ({model.priority}): "
                      f"{'; '.join(model.reasons)}", markup=False)
        for line in result.explanation:
            err.print(f"why: {line}", markup=False)
        raise typer.Exit(1)


def main() -> None:
    app()
