"""`planner whatif`: the registry planned as it is and under each scenario, side by side."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli.app import FormatOption, OutputFormat, RegistryOption, app, guarded, load_fleet
from planner.cli.plan import PeriodOption, SolverChoice, _check_period
from planner.errors import InputError

if TYPE_CHECKING:
    from planner.planfile import Plan
    from planner.registry.fleet import Fleet
    from planner.scenario import Scenario


def _slug(label: str, taken: set[str]) -> str:
    """A folder name for a scenario's plan, unique among `taken`."""
    base = re.sub(r"[^a-z0-9.]+", "-", label.lower()).strip("-") or "scenario"
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    taken.add(slug)
    return slug


@app.command()
@guarded
def whatif(
    registry: RegistryOption = None,
    scenario: Annotated[list[str] | None, typer.Option(
        "--scenario", "-s", help="A scenario as knob=value items separated by commas, for "
        "example traffic=2x, traffic[search]=1.5x,remove-pool=batch-t4, price[shared-l4]=0.9x, "
        "headroom=0.2, spread=1; repeat for more scenarios.", show_default=False)] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", "-f", dir_okay=False, help="A YAML file of scenarios: `scenarios:`, a list "
        "of entries with name, traffic, remove_pools, remove_gpu_types, prices, policy figures "
        "and add_pools.", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", file_okay=False, help="Write each "
                   "plan's output folder under this one: as-is/ and one per scenario.",
                   show_default=False)] = None,
    solver: Annotated[SolverChoice, typer.Option(help="cpsat or greedy, for every plan.")]
        = SolverChoice.cpsat,
    time_limit: Annotated[float, typer.Option("--time-limit", min=0.1,
                                              help="Seconds per plan.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed of every plan.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="CP-SAT worker threads.")] = 2,
    deterministic: Annotated[bool, typer.Option(
        "--deterministic", help="Count work instead of seconds, as `planner plan "
        "--deterministic`: the same table on any machine.")] = False,
    period: PeriodOption = None,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Plan the registry as it is and under each scenario; print them side by side.

    The registry's files are not touched: each scenario is a changed copy of it in memory.
    """
    from planner.cli.console import out as stdout
    from planner.pipeline import SolverSettings, make_plan
    from reports.whatif import scenario_json, scenario_rows, scenario_table

    _check_period(period)
    scenarios = _scenarios(scenario, file)
    fleet = load_fleet(registry)
    changed = _changed_fleets(fleet, scenarios)
    settings = SolverSettings(method=solver.value, time_limit_s=time_limit, seed=seed,
                              workers=workers, deterministic=deterministic)

    def plan_of(fleet):
        result = make_plan(fleet, settings)
        if period is not None:
            from planner.period import priced_for

            result = priced_for(result, period)
        return result

    as_is = plan_of(fleet)
    plans = [(label, plan_of(f)) for label, f in changed]
    rows = scenario_rows(as_is, plans)
    if out is not None:
        _write_plans(out, [("as is", as_is), *plans], period,
                     protected=[fleet.root, *([file] if file else [])])
    if format is OutputFormat.json:
        import json

        stdout.print_json(json.dumps(scenario_json(rows)))
    else:
        stdout.print(scenario_table(rows, as_is.summary.currency))


def _scenarios(texts: list[str] | None, file: Path | None) -> list[Scenario]:
    """The scenarios of --scenario, then those of --file: at least one, at most
    MAX_SCENARIOS."""
    from planner.scenario import MAX_SCENARIOS, load_scenarios, parse_scenario

    scenarios = []
    for text in texts or []:
        try:
            scenarios.append(parse_scenario(text))
        except ValueError as exc:
            raise InputError(f"--scenario: {exc}") from None
    if file is not None:
        scenarios += load_scenarios(file)
    if not scenarios:
        raise InputError("no scenario: give --scenario KNOB=VALUE (for example traffic=2x) or "
                         "--file SCENARIOS.yaml")
    if len(scenarios) > MAX_SCENARIOS:
        raise InputError(f"{len(scenarios)} scenarios; at most {MAX_SCENARIOS} at once")
    return scenarios


def _changed_fleets(fleet: Fleet, scenarios: list[Scenario]) -> list[tuple[str, Fleet]]:
    """(label, the fleet changed by the scenario) for each scenario, every problem an input
    error naming its scenario."""
    from planner.scenario import apply_scenario

    changed = []
    for item in scenarios:
        try:
            changed.append((item.label, apply_scenario(fleet, item)))
        except ValueError as exc:
            raise InputError(f"scenario '{item.label}': {exc}") from None
    return changed


def _write_plans(out: Path, plans: list[tuple[str, Plan]], period: str | None,
                 protected: list[Path]) -> None:
    """Each plan's output folder under `out`, named after its label, written all at once."""
    from planner.cli.console import err
    from planner.output import write_folder
    from planner.planfile import dump_plan
    from reports import render_all

    files: dict[str, str] = {}
    taken: set[str] = set()
    for label, plan in plans:
        slug = _slug(label, taken)
        files[f"{slug}/plan.yaml"] = dump_plan(plan)
        files.update({f"{slug}/{name}": text
                      for name, text in render_all(plan, period=period).items()})
    write_folder(out, files, protected=protected)
    err.print(f"wrote {out}: {', '.join(sorted(taken))}", markup=False)
