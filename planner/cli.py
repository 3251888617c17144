"""The `planner` command line. With cli_check.py and cli_profile.py, the only code that prints
or exits.

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


class Target(StrEnum):
    deployment = "deployment"
    kserve = "kserve"


PeriodOption = Annotated[str | None, typer.Option(
    help="Billing period of the cost report, YYYY-MM (default: this month).",
    show_default=False)]


def _check_period(period: str | None) -> None:
    from reports.cost import parse_period

    try:
        parse_period(period)
    except ValueError as exc:
        raise InputError(f"--period: {exc}; write it as YYYY-MM, for example 2026-12") from None


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
    target: Annotated[Target, typer.Option(help="Workload kind in the manifests.")]
    = Target.deployment,
    period: PeriodOption = None,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Pack the registry's models onto the cluster's pools at the lowest cost.

    With --out, writes plan.yaml, manifests/, cost.csv and summary.md there, all or nothing.
    """
    from planner.console import err
    from planner.console import out as stdout
    from planner.plan import dump_plan, load_plan
    from planner.planning import SolverSettings, make_plan
    from reports.tables import plan_tables

    _check_period(period)
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

        files = render_all(result, target=target.value, period=period)
        write_folder(out, {"plan.yaml": dump_plan(result), **files})
        err.print(f"wrote {out}: plan.yaml, summary.md, cost.csv and "
                  f"{sum(1 for f in files if f.startswith('manifests/'))} manifest files",
                  markup=False)
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


class GroupBy(StrEnum):
    model = "model"
    team = "team"
    pool = "pool"


class ReportFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
@guarded
def report(
    plan_file: Annotated[Path, typer.Option("--plan", help="The plan.yaml to report on.",
                                            dir_okay=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", file_okay=False,
                                             help="Write manifests/, cost.csv and summary.md "
                                             "here (replaced atomically).")] = None,
    group_by: Annotated[GroupBy, typer.Option("--group-by", help="Roll the cost up by this.")]
    = GroupBy.team,
    target: Annotated[Target, typer.Option(help="Workload kind in the manifests.")]
    = Target.deployment,
    period: PeriodOption = None,
    format: Annotated[ReportFormat, typer.Option("--format", help="Rollup format on stdout.")]
    = ReportFormat.table,
) -> None:
    """Render the reports of an existing plan without solving again."""
    from planner.console import err
    from planner.console import out as stdout
    from planner.plan import load_plan
    from reports import render_all
    from reports.cost import rollup

    _check_period(period)
    plan = load_plan(plan_file)
    if out is not None:
        from planner.output import write_folder

        write_folder(out, render_all(plan, target=target.value, period=period))
        err.print(f"wrote {out}: summary.md, cost.csv and manifests/", markup=False)
    frame = rollup(plan, group_by.value, period)
    if format is ReportFormat.csv:
        typer.echo(frame.to_csv(index=False, lineterminator="\n"), nl=False)
    elif format is ReportFormat.json:
        typer.echo(frame.to_json(orient="records"))
    else:
        from rich.table import Table

        table = Table(title=f"Monthly cost by {group_by.value} ({plan.summary.currency})",
                      title_justify="left")
        for column in frame.columns:
            table.add_column(str(column), justify="left" if column == group_by.value
                             else "right")
        for row in frame.itertuples(index=False):
            table.add_row(*(f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row))
        table.add_row("total", f"{frame['EffectiveCost'].sum():,.2f}", "", "")
        stdout.print(table)


def main() -> None:
    app()


# The commands of the other modules register themselves on `app`.
from planner import cli_check, cli_profile  # noqa: E402, F401
