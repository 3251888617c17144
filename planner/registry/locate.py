"""Finding the registry a command works on, and writing the demo registry out."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from planner.demo import demo_registry_path
from planner.errors import InputError, Problem
from planner.registry.reference import annotate


def resolve_registry(explicit: Path | None, cwd: Path | None = None) -> tuple[Path, bool]:
    """The registry folder to use and whether it is the bundled demo.

    An explicit path wins; otherwise the current folder when it holds `planner.yaml` or
    `models/`, otherwise the bundled demo.
    """
    if explicit is not None:
        return explicit, False
    here = cwd or Path.cwd()
    if (here / "planner.yaml").is_file() or (here / "models").is_dir():
        return here, False
    return demo_registry_path(), True


def write_demo(target: Path, *, force: bool = False, for_editors: bool = False) -> int:
    """Copy the demo registry to `target` atomically; return the number of files written.

    Refuses a non-empty target unless `force`, so an existing registry is never mixed with
    the demo's files. `for_editors` starts each file with the `$schema` line editors read and
    a pointer to the reference (`schemas/`, written apart by the caller, holds both).
    """
    if target.exists() and not target.is_dir():
        raise InputError(Problem(target, None, None, "exists and is not a folder"))
    if target.is_dir() and any(target.iterdir()) and not force:
        raise InputError(Problem(target, None, None,
                                 "folder is not empty; choose a new folder or pass --force"))
    source = demo_registry_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        staged = Path(tmp) / "registry"
        shutil.copytree(source, staged, ignore=shutil.ignore_patterns("__pycache__"))
        for path in staged.rglob("*.y*ml") if for_editors else ():
            relative = path.relative_to(staged).as_posix()
            path.write_text(annotate(relative, path.read_text(encoding="utf-8")),
                            encoding="utf-8")
        count = sum(1 for p in staged.rglob("*") if p.is_file())
        if target.is_dir():
            shutil.copytree(staged, target, dirs_exist_ok=True)
        else:
            staged.rename(target)
    return count
