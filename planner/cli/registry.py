"""`planner init` and `planner validate`: starting a registry and checking it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from planner.cli.app import FormatOption, OutputFormat, RegistryOption, app, guarded, load_fleet


@app.command()
@guarded
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to write the demo registry to.")],
    force: Annotated[bool, typer.Option(help="Write into a non-empty folder.")] = False,
) -> None:
    """Write the bundled demo registry to DIRECTORY, to start a registry of your own."""
    from planner.cli.console import out
    from planner.registry.locate import write_demo

    count = write_demo(directory, force=force)
    out.print(f"wrote the demo registry to {directory} ({count} files); "
              f"try: planner validate --registry {directory}", markup=False)


@app.command()
@guarded
def validate(registry: RegistryOption = None, format: FormatOption = OutputFormat.table) -> None:
    """Check every file of the registry and the rules between them."""
    from planner.cli.console import out

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
