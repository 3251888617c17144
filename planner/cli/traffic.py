"""`planner simulate-traffic`: a day (or a trace) of requests against a plan's lazy caches."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from planner.cli.app import FormatOption, OutputFormat, RegistryOption, app, guarded, load_fleet


class Eviction(StrEnum):
    lru = "lru"
    lfu = "lfu"


@app.command("simulate-traffic")
@guarded
def simulate_traffic(
    plan_file: Annotated[Path, typer.Option("--plan", help="The plan.yaml whose lazy caches "
                                            "to replay against.", dir_okay=False)],
    registry: RegistryOption = None,
    trace: Annotated[Path | None, typer.Option(
        help="A CSV trace (columns model,timestamp_s, seconds from its start) instead of "
        "synthetic traffic.", dir_okay=False, show_default=False)] = None,
    hours: Annotated[float | None, typer.Option(
        min=0.01, max=24 * 366, help="Hours to replay (default: a day, or the trace's span).",
        show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic traffic; same seed, same "
                                      "numbers.")] = 0,
    eviction: Annotated[list[Eviction] | None, typer.Option(
        help="Eviction policy, repeatable: lru (oldest request first) or lfu (fewest "
        "requests first). Default: both.", show_default=False)] = None,
    thrash_window: Annotated[float, typer.Option(
        "--thrash-window", min=0, help="Seconds: a model loaded again this soon after its "
        "eviction counts as thrash.")] = 300.0,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Replay Poisson traffic on each model's diurnal curve (or a trace) against the plan's
    lazy caches: cold starts, waits, evictions and thrash per model, memory-time per cache."""
    from planner.cli.console import err
    from planner.planfile import load_plan
    from planner.replay.run import replay_plan

    plan = load_plan(plan_file)
    fleet = load_fleet(registry)
    policies = tuple(e.value for e in (eviction or [Eviction.lru, Eviction.lfu]))
    result = replay_plan(plan, fleet, policies=tuple(dict.fromkeys(policies)), hours=hours,
                         seed=seed, trace=trace, thrash_window_s=thrash_window)
    if not result.outcomes:
        err.print(f"{plan_file} has no placed lazy cache: nothing to replay", markup=False)
    if result.ignored_requests:
        err.print(f"{result.ignored_requests:,} requests in the trace go to models outside "
                  "every lazy cache; not replayed", markup=False)
    if format is OutputFormat.json:
        _print_json(result)
    else:
        _print_tables(result)


def _print_json(result) -> None:
    import json

    typer.echo(json.dumps({
        "seed": result.seed, "hours": result.hours, "caches": [{
            "cache": o.cache, "policy": o.policy, "capacity_mib": o.capacity_mib,
            "memory_mib_hours": round(o.memory_mib_hours, 3),
            "occupancy": round(o.occupancy, 6),
            "models": [{"model": m.name, "requests": m.requests, "cold_starts": m.loads,
                        "cold_starts_per_hour": round(m.loads / result.hours, 4),
                        "waited_on_load": m.waited, "p99_added_ms": round(m.p99_added_ms, 3),
                        "evictions": m.evictions, "thrash": m.thrash} for m in o.models]}
            for o in result.outcomes]}, indent=2))


def _print_tables(result) -> None:
    from rich.table import Table

    from planner.cli.console import out

    source = f"seed {result.seed}" if result.seed is not None else "trace"
    for o in result.outcomes:
        table = Table(title=f"{o.cache}, {o.policy} eviction: {result.hours:g} h ({source}); "
                      f"memory-time {o.memory_mib_hours:,.1f} MiB-h of "
                      f"{o.capacity_mib * o.horizon_s / 3600:,.1f} ({o.occupancy:.1%})",
                      title_justify="left")
        for column in ("model", "requests", "cold starts", "per hour", "waited on a load",
                       "p99 added", "evictions", "thrash"):
            table.add_column(column, justify="left" if column == "model" else "right")
        for m in o.models:
            table.add_row(m.name, f"{m.requests:,}", f"{m.loads:,}",
                          f"{m.loads / result.hours:.2f}", f"{m.waited:,}",
                          f"{m.p99_added_ms:,.0f} ms", f"{m.evictions:,}", f"{m.thrash:,}")
        out.print(table)
