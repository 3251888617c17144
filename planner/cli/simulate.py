"""`planner simulate`: a plan's manifests replayed with the scheduler's filters, and every
node lost in turn."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli.app import FormatOption, OutputFormat, app, guarded

if TYPE_CHECKING:
    from planner.simulation.node_loss import NodeLossReport
    from planner.simulation.replay import Simulation


@app.command()
@guarded
def simulate(
    plan_file: Annotated[Path, typer.Option("--plan", help="The plan.yaml that `planner plan "
                                            "--out DIR` wrote.", dir_okay=False)],
    manifests: Annotated[Path | None, typer.Option(
        help="The manifests to replay (default: manifests/ beside the plan file).",
        file_okay=False, show_default=False)] = None,
    zones: Annotated[int, typer.Option(min=1, max=26, help="Zones the nodes of pools without "
                                       "zones are spread over, round-robin.")] = 1,
    node_loss: Annotated[bool, typer.Option("--node-loss/--no-node-loss",
                                            help="Lose each node in turn and report it.")]
    = True,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Replay a plan's manifests on the nodes its NodePools would create, with the Kubernetes
    scheduler's filters and the device plugin's allocation: where each pod lands, whether
    every rule of the plan holds, and what losing each node in turn does.

    Exit 0 when every pod runs where the plan says and every enforced rule holds, 1 when not,
    2 on bad input. The node-loss report informs and does not change the exit code.
    """
    from planner.cli.console import err
    from planner.cli.console import out as stdout
    from planner.planfile import load_plan
    from planner.simulation.manifests import Manifests
    from planner.simulation.node_loss import node_loss_report
    from planner.simulation.replay import replay

    plan = load_plan(plan_file)
    folder = manifests if manifests is not None else plan_file.parent / "manifests"
    simulation = replay(plan, Manifests.read(folder), zones=zones)
    report = node_loss_report(plan, simulation) if node_loss else None
    if format is OutputFormat.json:
        import json

        from planner.simulation.export import as_json

        typer.echo(json.dumps(as_json(simulation, report), indent=2))
    else:
        for table in _tables(simulation, report):
            stdout.print(table)
    if not simulation.runs:
        failed = [r.rule for r in simulation.rules if r.holds is False]
        err.print(f"the plan does not hold in the cluster: {', '.join(failed)}", markup=False)
        raise typer.Exit(1)


def _tables(simulation: Simulation, report: NodeLossReport | None) -> list:
    from rich.table import Table
    from rich.text import Text

    from planner.simulation.node_loss import spares_text
    from reports.format import money

    landings = Table(title="Where each pod lands", title_justify="left")
    for column in ("pod", "planned", "node", "GPU", "result"):
        landings.add_column(column)
    for landing in simulation.landings:
        if landing.node is None:
            result = f"pending: {landing.reason}"
        elif landing.node == landing.planned_node:
            result = "as planned"
        else:
            result = f"elsewhere: {landing.reason}"
        landings.add_row(landing.pod, landing.planned_node or "-", landing.node or "-",
                         ",".join(map(str, landing.gpus)) or "-", Text(result))
    rules = Table(title="Rules of the plan", title_justify="left")
    for column in ("rule", "holds", "detail"):
        rules.add_column(column)
    for rule in simulation.rules:
        holds = {True: "yes", False: "NO", None: "not enforced"}[rule.holds]
        detail = "; ".join([*rule.problems, *([rule.note] if rule.note else [])])
        rules.add_row(Text(rule.rule), holds, Text(detail))
    tables = [landings, rules]
    if report is None:
        return tables
    losses = Table(title="Each node lost in turn", title_justify="left")
    for column in ("node lost", "pods", "rescheduled", "pending", "below replicas.min"):
        losses.add_column(column)
    for loss in report.losses:
        below = ", ".join(f"{b.model} ({b.running} of min {b.replicas_min}"
                          + (f", served by {b.served_by})" if b.served_by else ")")
                          for b in loss.below_min)
        losses.add_row(loss.node, str(len(loss.lost)), str(len(loss.rescheduled)),
                       Text(", ".join(loss.pending) or "-"), Text(below or "-"))
    tables.append(losses)
    headroom = Table(title="N+1 headroom: the cheapest spare nodes per pool",
                     title_justify="left")
    for column in ("pool", "spare nodes", "per month", "within max_nodes",
                   "covers every loss"):
        headroom.add_column(column)
    for spare in report.headroom:
        headroom.add_row(spare.pool, Text(spares_text(spare)),
                         money(spare.cost_per_month, report.currency),
                         "yes" if spare.within_ceiling else "no",
                         "yes" if spare.covers else "no")
    if report.headroom:
        headroom.add_row("total", "", money(report.cost_per_month, report.currency), "", "")
        tables.append(headroom)
    return tables
