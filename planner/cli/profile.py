"""`planner profile`: measuring models, on this machine or as cluster Jobs."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from planner.cli.app import RegistryOption, app, guarded, load_fleet
from planner.errors import InputError


class ProfileFormat(StrEnum):
    table = "table"
    json = "json"
    markers = "markers"


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        levels = ()
    if not levels or levels[0] < 1:
        raise InputError(f"--concurrency {text}: expected positive integers, like 1,2,4,8")
    return levels


@app.command()
@guarded
def profile(
    models: Annotated[list[str], typer.Argument(help="Models to measure; or `import LOGS...` "
                                                "to read profiles from profiling Jobs' logs.")],
    registry: RegistryOption = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    concurrency: Annotated[str, typer.Option(help="Concurrency levels to measure.")]
    = "1,2,4,8,16,32",
    duration: Annotated[float, typer.Option(min=0.05, help="Seconds per measurement window.")]
    = 1.0,
    max_windows: Annotated[int, typer.Option(min=3, help="Windows per level at most, until "
                                             "the last three agree within 10%.")] = 10,
    rate_search: Annotated[bool, typer.Option("--rate-search", help="Also find the highest "
                                              "Poisson arrival rate meeting the SLO.")] = False,
    gpu_type: Annotated[str | None, typer.Option(help="GPU type to file the profile under "
                                                 "(default: matched by device name).")] = None,
    allow_shared_device: Annotated[bool, typer.Option(
        "--allow-shared-device", help="Measure even if other processes use the GPU; the "
        "profile records a warning.")] = False,
    cpu_threads: Annotated[int | None, typer.Option(
        min=1, help="CPU serving workers (default: one per core).", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", file_okay=False,
                                             help="Folder for <model>/<gpu-type>.yaml "
                                             "(default: the registry's profiles/).")] = None,
    emit_jobs: Annotated[bool, typer.Option("--emit-jobs", help="Write a Kubernetes Job per "
                                            "model that profiles it on --gpu-type instead.")]
    = False,
    image: Annotated[str, typer.Option(help="Image of the profiling Jobs: the planner with "
                                       "the registry at /registry.")]
    = "placement-planner:latest",
    format: Annotated[ProfileFormat, typer.Option("--format")] = ProfileFormat.table,
) -> None:
    """Measure peak memory, throughput and latency per concurrency level of MODELS."""
    from planner.cli.console import err
    from planner.cli.console import out as stdout

    fleet = load_fleet(registry)
    folder = out or fleet.root / fleet.config.paths.profiles
    if models and models[0] == "import":
        from planner.profiling import write_profiles
        from profiles.jobs import import_logs

        found = import_logs([Path(p) for p in models[1:]])
        for item in found:
            if item.model not in fleet.models or (item.gpu_type not in fleet.cluster.gpu_types
                                                  and item.gpu_type != "cpu"):
                raise InputError(f"imported profile of {item.model} on {item.gpu_type}: not a "
                                 "model and GPU type of this registry")
        for path in write_profiles(found, folder):
            err.print(f"wrote {path}", markup=False)
        return
    levels = _levels(concurrency)
    if emit_jobs:
        import yaml

        from planner.profiling import pick_models
        from profiles.jobs import job

        if gpu_type is None or gpu_type not in fleet.cluster.gpu_types:
            raise InputError("--emit-jobs needs --gpu-type, one of "
                             + ", ".join(fleet.cluster.gpu_types))
        product = fleet.cluster.gpu_types[gpu_type].product
        arguments = ["--concurrency", ",".join(map(str, levels)), "--duration", str(duration)]
        jobs = [job(m.name, gpu_type, product, image, arguments)
                for m in pick_models(fleet, models)]
        if out is None:
            typer.echo(yaml.safe_dump_all(jobs, sort_keys=False), nl=False)
        else:
            from planner.output import write_folder

            write_folder(out, {f"{j['metadata']['name']}.yaml": yaml.safe_dump(j, sort_keys=False)
                               for j in jobs})
            err.print(f"wrote {len(jobs)} Jobs to {out}", markup=False)
        return
    from planner.profiling import ProfileSettings, profile_models, write_profiles
    from profiles.runner import with_markers

    settings = ProfileSettings(device=device, concurrency=levels, window_s=duration,
                               max_windows=max_windows, rate_search=rate_search,
                               rate_duration_s=max(2 * duration, 0.5),
                               allow_shared_device=allow_shared_device,
                               **({"cpu_threads": cpu_threads} if cpu_threads else {}))
    if err.is_terminal:
        with err.status("profiling…") as status:
            found = profile_models(fleet, models, settings, gpu_type, progress=status.update)
    else:
        found = profile_models(fleet, models, settings, gpu_type)
    if format is ProfileFormat.markers:
        for item in found:
            typer.echo(with_markers(item), nl=False)
        return
    for path in write_profiles(found, folder):
        err.print(f"wrote {path}", markup=False)
    if format is ProfileFormat.json:
        stdout.print_json(json.dumps([p.model_dump(mode="json", by_alias=True) for p in found]))
        return
    from rich.table import Table

    for item in found:
        unit = "MiB host" if item.memory.kind == "host" else "MiB"
        table = Table(title=f"{item.model} on {item.gpu_type} ({item.environment.device_name}), "
                      f"load {item.load_time_s:.2f} s", title_justify="left")
        for column in ("concurrency", "throughput rps", "p50 ms", "p95 ms", "p99 ms",
                       f"peak {unit}", "stable"):
            table.add_column(column, justify="right")
        for point in item.points:
            table.add_row(str(point.concurrency), f"{point.throughput_rps:,.1f}",
                          f"{point.p50_ms:.2f}", f"{point.p95_ms:.2f}", f"{point.p99_ms:.2f}",
                          f"{point.peak_memory_mib:,.0f}", "yes" if point.stable else "no")
        stdout.print(table)
