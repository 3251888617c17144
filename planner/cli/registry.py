"""`planner init`, `planner validate` and `planner schema`: starting a registry, checking it,
and describing its files to people and editors."""

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
    """Write the bundled demo registry to DIRECTORY, to start a registry of your own.

    Its files point editors at the JSON Schemas in DIRECTORY/schemas, next to the reference
    of every key (schemas/reference.md)."""
    from planner.cli.console import out
    from planner.output import write_folder
    from planner.registry.locate import write_demo
    from planner.registry.reference import generated_files

    count = write_demo(directory, force=force, for_editors=True)
    files = generated_files()
    write_folder(directory / "schemas", files)
    out.print(f"wrote the demo registry to {directory} ({count} files, and {len(files)} in "
              f"schemas/); try: planner validate --registry {directory}", markup=False)


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
    counts = ", ".join(_count(len(things), noun) for things, noun in (
        (fleet.models, "model"), (fleet.teams, "team"), (fleet.cluster.pools, "pool"),
        (fleet.profiles, "profile")))
    out.print(f"registry {fleet.root} is valid: {counts} ({measured} measured, "
              f"{summary['profiles_reference']} reference)", markup=False)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


@app.command()
@guarded
def schema(
    file: Annotated[str | None, typer.Argument(
        metavar="[FILE]", help="Print this file's JSON Schema: cluster, policy, model, profile "
        "or planner.", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", file_okay=False, show_default=False,
        help="Write every JSON Schema and the reference page (reference.md) to this folder.")]
    = None,
) -> None:
    """Describe the registry's files: JSON Schemas for editors and a reference for people."""
    from planner.cli.console import err
    from planner.errors import InputError
    from planner.registry.reference import FILES, generated_files, json_schema

    if out is not None:
        from planner.output import write_folder

        files = generated_files()
        write_folder(out, files)
        err.print(f"wrote {out}: {', '.join(sorted(files))}", markup=False)
        return
    fmt = next((f for f in FILES if f.key == file), None)
    if fmt is None:
        names = ", ".join(f.key for f in FILES)
        raise InputError(f"give the file to describe ({names}), or --out DIR to write them all"
                         if file is None else f"no registry file called '{file}'; one of {names}")
    typer.echo(json.dumps(json_schema(fmt), indent=2, ensure_ascii=False))
