"""Reading the base of a check from git: the registry as it is at a ref, in a temporary folder.

The base is what the ref says, never what the pull request says: the ref is only ever a git
ref (a plan file is a separate, explicit option), and the tree is read object by object with
`git ls-tree` and `git cat-file`, which run no filters, hooks or attributes from the
repository, so nothing the change adds can alter how its base is read. The working tree is
never touched; problems in the base's files are named as `REF:path`.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from pathlib import Path

from planner.errors import InputError, Problem, printable
from planner.registry.yamlsource import MAX_FILE_BYTES

MAX_REF_CHARS = 255  # git refuses longer ref names; a longer one is a mistake or an attack
MAX_TREE_BYTES = 256 * 1024 * 1024  # everything read from one base tree
_REGULAR = {"100644", "100755"}
_SYMLINK = "120000"
_SUBMODULE = "160000"


def check_ref(ref: str) -> None:
    """Refuse what cannot be a git ref before git sees it: empty, too long, whitespace or
    control characters, or a leading dash that git would read as an option."""
    shown = printable(ref if len(ref) <= 60 else ref[:60] + "…")
    if not ref:
        raise InputError("--base: empty; give a git ref such as origin/main")
    if len(ref) > MAX_REF_CHARS:
        raise InputError(f"--base {shown}: longer than {MAX_REF_CHARS} characters; give a git "
                         "ref such as origin/main")
    if ref.startswith("-") or any(ch.isspace() or not ch.isprintable() for ch in ref):
        raise InputError(f"--base {shown}: not a git ref (spaces, control characters or a "
                         "leading '-'); give a git ref such as origin/main")


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes | None:
    """Run git with the repository's hooks and helpers that could run code turned off."""
    result = subprocess.run(["git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null",
                             "-C", str(root), *args], capture_output=True, input=stdin)
    return result.stdout if result.returncode == 0 else None


def _entries(listing: bytes) -> list[tuple[str, str, int, str]]:
    """`git ls-tree -r -z -l` output as (mode, object, size, path) tuples."""
    entries = []
    for record in listing.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, _kind, obj, size = meta.decode().split()
        entries.append((mode, obj, int(size) if size.isdigit() else 0, os.fsdecode(raw_path)))
    return entries


def _blobs(top: Path, objects: list[str]) -> list[bytes]:
    """The contents of `objects`, read in one `git cat-file --batch`."""
    if not objects:
        return []
    output = _git(top, "cat-file", "--batch", stdin="".join(f"{o}\n" for o in objects).encode())
    if output is None:
        raise InputError("cannot read the base tree from git (git cat-file failed)")
    contents, offset = [], 0
    for _ in objects:
        header_end = output.index(b"\n", offset)
        size = int(output[offset:header_end].split()[2])
        contents.append(output[header_end + 1:header_end + 1 + size])
        offset = header_end + 1 + size + 1
    return contents


def _leaves(path: str, target: str) -> bool:
    """Whether a symlink at `path` (relative to the registry) points outside the registry."""
    if posixpath.isabs(target):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    return resolved == ".." or resolved.startswith("../")


def base_registry(registry: Path, ref: str, workdir: Path) -> Path:
    """Write the registry as it is at `ref` into `workdir`; return its folder there."""
    check_ref(ref)
    shown = printable(ref)
    top_out = _git(registry, "rev-parse", "--show-toplevel")
    if top_out is None:
        raise InputError(f"--base {shown}: {registry} is not in a git repository; run inside "
                         "the registry's repository or pass --base-plan PLAN")
    top = Path(os.fsdecode(top_out.strip()))
    commit_out = _git(registry, "rev-parse", "--verify", "--quiet", "--end-of-options",
                      f"{ref}^{{commit}}")
    if commit_out is None:
        raise InputError(f"--base {shown}: no such git ref; fetch it (for example "
                         "`git fetch origin main`) or pass --base-plan PLAN")
    commit = commit_out.decode().strip()
    prefix = registry.resolve().relative_to(top.resolve()).as_posix()
    tree = f"{commit}^{{tree}}" if prefix == "." else f"{commit}:{prefix}"
    listing = _git(top, "ls-tree", "-r", "-z", "-l", "--end-of-options", tree)
    if listing is None:
        raise InputError(f"--base {shown}: the registry folder {prefix} does not exist there")
    entries = _entries(listing)
    problems, files, links = [], [], []
    total = 0
    for mode, obj, size, path in entries:
        name = Path(f"{ref}:{path}")
        parts = path.split("/")
        if any(part in ("", ".", "..") for part in parts):
            problems.append(Problem(name, None, None, "unsafe path in the git tree"))
        elif mode in _REGULAR:
            if size > MAX_FILE_BYTES:
                problems.append(Problem(name, None, None, f"file of {size:,} bytes is larger "
                                        f"than the limit of {MAX_FILE_BYTES:,}; shrink it"))
            total += size
            files.append((obj, path))
        elif mode == _SYMLINK:
            links.append((obj, path))
        elif mode != _SUBMODULE:
            problems.append(Problem(name, None, None, f"unsupported git object mode {mode}"))
    if total > MAX_TREE_BYTES:
        problems.append(Problem(Path(f"{ref}:{prefix}"), None, None,
                                f"the registry holds {total:,} bytes, more than the limit "
                                f"of {MAX_TREE_BYTES:,}"))
    if problems:
        raise InputError(problems)
    root = workdir / "registry"
    root.mkdir()
    for (_, path), content in zip(files, _blobs(top, [o for o, _ in files]), strict=True):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as handle:
            handle.write(content)
    for (_, path), content in zip(links, _blobs(top, [o for o, _ in links]), strict=True):
        pointee = os.fsdecode(content)
        if _leaves(path, pointee):
            problems.append(Problem(Path(f"{ref}:{path}"), None, None,
                                    f"symbolic link to {printable(pointee)} leaves the "
                                    "registry; commit the file itself"))
            continue
        parent = root / posixpath.dirname(path)
        parent.mkdir(parents=True, exist_ok=True)
        if not parent.resolve().is_relative_to(root.resolve()):
            problems.append(Problem(Path(f"{ref}:{path}"), None, None,
                                    "lies behind a symbolic link that leaves the registry"))
            continue
        os.symlink(pointee, root / path)
    if problems:
        raise InputError(problems)
    return root


def relabel(error: InputError, root: Path, ref: str) -> InputError:
    """Name the base side's files as `REF:path` rather than by their temporary location."""
    problems = []
    for p in error.problems:
        name = p.file
        if name is not None and name.is_relative_to(root):
            name = Path(f"{ref}:{name.relative_to(root).as_posix()}")
        problems.append(Problem(name, p.line, p.field, p.message, p.policy))
    return InputError(problems)
