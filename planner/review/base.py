"""Reading the base of a check from git: the registry as it is at a ref, in a temporary folder.

The working tree is never touched; problems in the base's files are named as `REF:path`.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from planner.errors import InputError, Problem


def _git(root: Path, *args: str, binary: bool = False):
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                            text=not binary)
    if result.returncode != 0:
        return None
    return result.stdout if binary else result.stdout.strip()


def base_registry(registry: Path, ref: str, workdir: Path) -> Path:
    """Write the registry as it is at `ref` into `workdir`; return its folder there."""
    top = _git(registry, "rev-parse", "--show-toplevel")
    if top is None:
        raise InputError(f"--base {ref}: not a plan file, and {registry} is not in a git "
                         "repository; pass a plan.yaml or run inside the registry's repository")
    if _git(registry, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") is None:
        raise InputError(f"--base {ref}: no such file or git ref; fetch it (for example "
                         "`git fetch origin main`) or pass a plan.yaml")
    prefix = registry.resolve().relative_to(Path(top).resolve()).as_posix()
    archive = _git(Path(top), "archive", "--format=tar", ref, "--", prefix, binary=True)
    if archive is None:
        raise InputError(f"--base {ref}: the registry folder {prefix} does not exist there")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(workdir, filter="data")
    return workdir / prefix


def relabel(error: InputError, root: Path, ref: str) -> InputError:
    """Name the base side's files as `REF:path` rather than by their temporary location."""
    problems = []
    for p in error.problems:
        name = p.file
        if name is not None and name.is_relative_to(root):
            name = Path(f"{ref}:{name.relative_to(root).as_posix()}")
        problems.append(Problem(name, p.line, p.field, p.message, p.policy))
    return InputError(problems)
