"""`planner plan` and `planner report`: solving a registry and rendering a plan's reports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli.app import FormatOption, OutputFormat, RegistryOption, app, guarded, load_fleet
from planner.errors import InputError

DRA_KSERVE = ("dra pins each replica to its GPU through a claim named in its pod template, and "
              "KServe has one pod template per model; use --target deployment, or "
              "sharing_backend: device-plugin for KServe")

if TYPE_CHECKING:
    from planner.pipeline import SolverSettings
    from planner.planfile import Plan
    from planner.registry.fleet import Fleet
    from solvers.engine import Step


class SolverChoice(StrEnum):
    cpsat = "cpsat"
    greedy = "greedy"


class Target(StrEnum):
    deployment = "deployment"
    kserve = "kserve"


class KserveMode(StrEnum):
    raw = "raw"
    serverless = "serverless"

    @property
    def annotation(self) -> str:
        """The value of `serving.kserve.io/deploymentMode`."""
        return "Serverless" if self is KserveMode.serverless else "RawDeployment"


KserveModeOption = Annotated[KserveMode, typer.Option(
    "--kserve-mode", help="With --target kserve: raw (a Deployment per model, no Knative) or "
    "serverless (Knative; summary.md lists the feature flags it needs).")]


PeriodOption = Annotated[str | None, typer.Option(
    help="Billing period, YYYY-MM: monthly amounts charge the hours that month has (672 to "
    "744) instead of hours_per_month (default: this month's dates at hours_per_month).",
    show_default=False)]


def _check_period(period: str | None) -> None:
    from planner.period import parse_period

    try:
        parse_period(period)
    except ValueError as exc:
        raise InputError(f"--period: {exc}; write it as YYYY-MM, for example 2026-12") from None


def _curves(fleet, result) -> list:
    """Each placed model's profile on its pool's GPU type (an LLM's: the curve of its planned
    configuration), with its SLO and operating point, for plan.html's plots (models planned
    from stated resources have none)."""
    from planner.demand.derive import llm_curve
    from reports.profile_plots import ProfileCurve

    gpu_type = {pool.name: pool.device for pool in result.pools}
    curves = []
    for model in result.models:
        profile = fleet.profiles.get((model.name, gpu_type.get(model.pool)))
        if model.llm is not None:
            profile = llm_curve(fleet, fleet.models[model.name], fleet.pool(model.pool),
                                model.mig_slice, model.llm.tensor_parallel, model.llm.precision)
        if profile is not None:
            curves.append(ProfileCurve(model.name, profile, fleet.models[model.name].slo.p99_ms,
                                       model.concurrency))
    return curves


@app.command()
@guarded
def plan(
    registry: RegistryOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write plan.yaml and the "
                                             "reports to this folder (replaced atomically; "
                                             "a new, empty or earlier output folder).",
                                             file_okay=False)] = None,
    solver: Annotated[SolverChoice, typer.Option(help="cpsat: optimal with a proven bound; "
                                                 "greedy: the quick baseline.")]
    = SolverChoice.cpsat,
    time_limit: Annotated[float, typer.Option("--time-limit", min=0.1,
                                              help="Seconds for the solver.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed; same seed and input, same plan.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="CP-SAT worker threads.")] = 2,
    deterministic: Annotated[bool, typer.Option(
        "--deterministic", help="Count work instead of seconds: --time-limit is a budget of "
        "CP-SAT deterministic seconds on one worker, and the same registry and seed give the "
        "same plan file on any machine, however loaded.")] = False,
    base: Annotated[Path | None, typer.Option(help="An earlier plan.yaml: keep replicas where "
                                              "they are unless moving them saves money.",
                                              dir_okay=False)] = None,
    target: Annotated[Target, typer.Option(help="Workload kind in the manifests.")]
    = Target.deployment,
    kserve_mode: KserveModeOption = KserveMode.raw,
    period: PeriodOption = None,
    scenario: Annotated[str | None, typer.Option(
        help="What if: plan the registry as it is and changed, for example traffic=2x (every "
        "model's peak and mean rps doubled), and print what changes; --out writes the changed "
        "plan. The registry's files are not touched.", show_default=False)] = None,
    price_rules: Annotated[bool, typer.Option(
        "--price-rules", help="Also re-solve with each placement rule relaxed in turn (spread, "
        "each conflict and admission rule, replicas per GPU, memory headroom, target "
        "utilisation, each pool's node shapes: the other shapes of its GPU type the cluster "
        "lists, then each model's spread), at most 16 re-solves within --time-limit each; "
        "summary.md and plan.yaml say what each rule costs, those that place more models "
        "first, then the larger saving.")] = False,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Pack the registry's models onto the cluster's pools at the lowest cost.

    With --out, writes plan.yaml, plan.html, manifests/, dashboards/, cost.csv and summary.md
    there, all or nothing.
    """
    from planner.pipeline import SolverSettings
    from planner.planfile import load_plan

    _check_period(period)
    base_fleet, fleet = _scenario_fleets(load_fleet(registry), scenario)
    if target is Target.kserve:
        _check_kserve_fleet(fleet)
    base_plan = load_plan(base) if base else None
    settings = SolverSettings(method=solver.value, time_limit_s=time_limit, seed=seed,
                              workers=workers, deterministic=deterministic)
    outputs = _Outputs(target, kserve_mode, period)

    def solve(fleet):
        return _solved(fleet, settings, base_plan, price_rules=price_rules, outputs=outputs)

    result = solve(fleet)
    if out is not None:
        _write_plan_folder(out, fleet, result, outputs,
                           protected=[fleet.root, *([base] if base else [])])
    if base_fleet is not None:
        _print_scenario_changes(scenario, solve(base_fleet), result, format)
    else:
        _print_plan(result, base_plan, format)
    _exit_if_unplaced(result)


@dataclass(frozen=True)
class _Outputs:
    """How the plan's manifests and amounts are written: workload kind, KServe mode, period."""

    target: Target
    kserve_mode: KserveMode
    period: str | None


def _scenario_fleets(fleet: Fleet, scenario: str | None) -> tuple[Fleet | None, Fleet]:
    """(the registry as it is, the fleet to plan): with --scenario, the first is the registry
    and the second its changed copy; without, there is nothing to compare against."""
    if scenario is None:
        return None, fleet
    from planner.scenario import apply_scenario, parse_scenario

    try:
        return fleet, apply_scenario(fleet, parse_scenario(scenario))
    except ValueError as exc:
        raise InputError(f"--scenario: {exc}") from None


def _check_kserve_fleet(fleet: Fleet) -> None:
    """--target kserve needs KServe's names and one pod template per model, so not DRA."""
    from planner.registry.kubernetes import kserve_problems

    problems = kserve_problems(fleet.models, fleet.documents)
    if fleet.cluster.sharing_backend == "dra":
        from planner.errors import Problem

        problems.append(Problem(fleet.root / fleet.config.paths.cluster, None,
                                "sharing_backend", DRA_KSERVE))
    if problems:
        raise InputError(problems)


def _solved(fleet: Fleet, settings: SolverSettings, base_plan: Plan | None, *,
            price_rules: bool, outputs: _Outputs) -> Plan:
    """The fleet planned (with a progress bar on a terminal), its rules priced if asked,
    priced for the period, with what losing each node does."""
    from planner.cli.console import err
    from planner.pipeline import make_plan

    if err.is_terminal:
        with _solve_progress(fleet.config.currency) as progress:
            result = make_plan(fleet, settings, base=base_plan, progress=progress)
    else:
        result = make_plan(fleet, settings, base=base_plan)
    if price_rules:
        from planner.rule_prices import with_rule_prices

        result = with_rule_prices(result, fleet, settings)
    if outputs.period is not None:
        from planner.period import priced_for

        result = priced_for(result, outputs.period)
    from planner.simulation.node_loss import with_node_loss

    return with_node_loss(result, target=outputs.target.value,
                          kserve_mode=outputs.kserve_mode.annotation)


def _write_plan_folder(out: Path, fleet: Fleet, result: Plan, outputs: _Outputs,
                       protected: list[Path]) -> None:
    from planner.cli.console import err
    from planner.output import write_folder
    from planner.planfile import dump_plan
    from reports import render_all

    files = render_all(result, target=outputs.target.value,
                       kserve_mode=outputs.kserve_mode.annotation, period=outputs.period,
                       curves=_curves(fleet, result))
    write_folder(out, {"plan.yaml": dump_plan(result), **files}, protected=protected)
    err.print(f"wrote {out}: plan.yaml, plan.html, summary.md, cost.csv and "
              f"{sum(1 for f in files if f.startswith('manifests/'))} manifest files",
              markup=False)


def _print_scenario_changes(scenario: str | None, as_is: Plan, changed: Plan,
                            format: OutputFormat) -> None:
    """What the scenario changes against the registry as it is, on stdout."""
    from planner.cli.console import out as stdout
    from planner.review.diff import diff_plans
    from reports.pr_comment import render_diff_markdown

    changes = diff_plans(as_is, changed)
    if format is OutputFormat.json:
        stdout.print_json(changes.model_dump_json())
    else:
        from rich.markdown import Markdown

        stdout.print(Markdown(f"# What if {scenario}\n\n" + render_diff_markdown(changes)))


def _print_plan(result: Plan, base_plan: Plan | None, format: OutputFormat) -> None:
    from planner.cli.console import out as stdout
    from reports.tables import plan_tables

    if format is OutputFormat.json:
        stdout.print_json(result.model_dump_json(by_alias=True))
    else:
        for table in plan_tables(result, base_plan):
            stdout.print(table)


def _exit_if_unplaced(result: Plan) -> None:
    """Exit 1, naming each unplaced model with its reasons and why, when any is left out."""
    from planner.cli.console import err

    if not result.unplaced:
        return
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
                                             help="Write manifests/, dashboards/, cost.csv "
                                             "and summary.md "
                                             "here (replaced atomically).")] = None,
    group_by: Annotated[GroupBy, typer.Option("--group-by", help="Roll the cost up by this.")]
    = GroupBy.team,
    target: Annotated[Target, typer.Option(help="Workload kind in the manifests.")]
    = Target.deployment,
    kserve_mode: KserveModeOption = KserveMode.raw,
    period: PeriodOption = None,
    format: Annotated[ReportFormat, typer.Option("--format", help="Rollup format on stdout.")]
    = ReportFormat.table,
) -> None:
    """Render the reports of an existing plan without solving again."""
    from planner.cli.console import err
    from planner.cli.console import out as stdout
    from planner.planfile import load_plan
    from reports import render_all
    from reports.focus import rollup

    _check_period(period)
    plan = load_plan(plan_file)
    if period is not None:
        from planner.period import priced_for

        plan = priced_for(plan, period)
    if target is Target.kserve:
        _check_kserve_plan(plan, plan_file)
    if out is not None:
        from planner.output import write_folder

        write_folder(out, render_all(plan, target=target.value,
                                     kserve_mode=kserve_mode.annotation, period=period),
                     protected=[plan_file])
        err.print(f"wrote {out}: plan.html, summary.md, cost.csv and manifests/", markup=False)
    rows = rollup(plan, group_by.value)
    currency = plan.summary.currency
    if format is ReportFormat.csv:
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[group_by.value, "cost_per_month",
                                                    "replicas"], lineterminator="\n")
        writer.writeheader()
        writer.writerows({**row, "cost_per_month": f"{row['cost_per_month']:f}"}
                         for row in rows)
        typer.echo(buffer.getvalue(), nl=False)
    elif format is ReportFormat.json:
        import json

        typer.echo(json.dumps({"currency": currency, "rows": [
            {**row, "cost_per_month": float(row["cost_per_month"])} for row in rows]}))
    else:
        from rich.table import Table

        from reports.format import money
        from reports.summary import cache_share

        # a lazy cache's member: no pods of its own, and what serves it instead
        served = {m.name: cache_share(plan, m) for m in plan.models
                  if m.cache is not None and group_by is GroupBy.model}
        table = Table(title=f"Monthly cost by {group_by.value}", title_justify="left")
        table.add_column(group_by.value)
        table.add_column("cost per month", justify="right")
        table.add_column("replicas", justify="right")
        for row in rows:
            name = row[group_by.value]
            table.add_row(name, money(row["cost_per_month"], currency), str(row["replicas"])
                          + (f", {served[name]}" if name in served else ""))
        table.add_row("total", money(sum(r["cost_per_month"] for r in rows), currency),
                      str(sum(r["replicas"] for r in rows)))
        stdout.print(table)


def _check_kserve_plan(plan: Plan, plan_file: Path) -> None:
    """--target kserve on a plan file: KServe's names, and no DRA (one pod template per
    model)."""
    from planner.errors import Problem
    from planner.registry.kubernetes import kserve_name_problem

    problems = [Problem(plan_file, None, "models", f"'{m.name}' {reason}; rename the "
                        "model for --target kserve")
                for m in plan.models if (reason := kserve_name_problem(m.name))]
    if plan.metadata.sharing_backend == "dra":
        problems.append(Problem(plan_file, None, "metadata.sharing_backend", DRA_KSERVE))
    if problems:
        raise InputError(problems)


@contextmanager
def _solve_progress(currency: str) -> Iterator[Callable[[Step], None]]:
    """A bar of the time limit spent, with the phase, the cheapest plan so far and the proven
    lower bound, on stderr while the engine works."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from planner.cli.console import err

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("solving", total=1.0)

        def show(step: Step) -> None:
            bar.update(task, description=step_text(step, currency), completed=step.time_spent)

        yield show


def step_text(step: Step, currency: str) -> str:
    """`solving: solving part 2 of 3; best 219.8512 USD/h, bound 211.3378 USD/h`."""
    from planner.assembly.cost import from_engine_units
    from reports.format import rate

    text = f"solving: {step.phase}"
    if step.best_cost is not None:
        text += f"; best {rate(from_engine_units(step.best_cost), currency)}/h"
    if step.lower_bound is not None:
        text += f", bound {rate(from_engine_units(step.lower_bound), currency)}/h"
    return text
