"""Writing an output folder atomically, and only over what the planner wrote itself.

An output folder carries a marker file listing every file the planner put there. A folder is
replaced only when it is empty or holds exactly the files its marker lists, so `--out .` in a
registry, `--out models` or `--out ~` are refused instead of deleting what is there; the
registry (and anything else the caller protects), its parents and its subfolders are refused
too. The new content is staged in a hidden sibling folder and swapped in with one atomic
exchange of names (`renameat2(RENAME_EXCHANGE)` where the kernel has it), so at any moment,
even after SIGKILL, the folder is either the old output or the new one. Writers of one parent
folder are serialised by a lock on that folder, and each writer first removes the staging
folders that killed writers left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from planner.errors import InputError, Problem

MARKER = ".planner-output"
_MARKER_HEAD = "# written by the placement planner; these files are replaced on the next write"
_STAGING = ".staging-"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _refuse(target: Path, reason: str) -> InputError:
    return InputError(Problem(target, None, None, f"cannot write the output folder: {reason}; "
                              "choose another --out"))


def _listed(folder: Path) -> set[str] | None:
    """The files a planner-written folder's marker lists, or None when it has no marker."""
    marker = folder / MARKER
    if not marker.is_file() or marker.is_symlink():
        return None
    try:
        lines = marker.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or lines[0] != _MARKER_HEAD:
        return None
    return set(lines[1:])


def _held(folder: Path) -> set[str]:
    """Every file and link under `folder` (relative POSIX paths), folders left out."""
    held = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        links = [d for d in dirnames if (base / d).is_symlink()]
        for name in [*filenames, *links]:
            held.add((base / name).relative_to(folder).as_posix())
    return held


def _check_replaceable(target: Path) -> None:
    """Refuse a target that holds anything the planner did not write."""
    if not target.exists():
        return
    if not target.is_dir():
        raise _refuse(target, "it exists and is not a folder")
    held = _held(target)
    if not held:
        return
    listed = _listed(target)
    if listed is None:
        raise _refuse(target, "it holds files the planner did not write (no "
                      f"{MARKER} marker); give a new or empty folder")
    foreign = sorted(held - listed - {MARKER})
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise _refuse(target, f"it holds files the planner did not write ("
                      f"{', '.join(foreign[:3])}{more}); move them away or give another folder")


def _check_protected(target: Path, protected: list[Path]) -> None:
    """Refuse writing over, above or inside a protected path (the registry, an input)."""
    for path in protected:
        kept = path.resolve()
        inside = kept.is_dir() and target != kept and target.is_relative_to(kept)
        if inside or kept.is_relative_to(target):
            raise _refuse(target, f"it would replace {'a folder inside ' if inside else ''}"
                          f"{kept}, which the planner reads")


def _safe_relative(relative: str) -> PurePosixPath:
    """A relative output path that stays inside the folder: no absolute path, `..` or `.`."""
    path = PurePosixPath(relative)
    if path.is_absolute() or not path.parts or any(p in ("..", ".", "") for p in path.parts) \
            or path.as_posix() != relative or relative == MARKER or "\\" in relative:
        raise InputError(Problem(None, None, None, f"output file name {relative!r} would leave "
                                 "the output folder; a name in the plan is not a valid file "
                                 "name"))
    return path


def _remove(folder: Path) -> None:
    """Delete a staging folder with its marker last, so that a writer killed halfway leaves a
    folder the next writer still recognises as its own (marked, or empty)."""
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.name == MARKER:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
    (folder / MARKER).unlink(missing_ok=True)
    folder.rmdir()


def _clean_stale(target: Path) -> None:
    """Remove staging folders of this target that a killed writer left behind: marked ones,
    empty ones, and ones holding only a marker cut short (a writer killed while writing it)."""
    for sibling in target.parent.glob(f".{target.name}{_STAGING}*"):
        if not sibling.is_dir() or sibling.is_symlink():
            continue
        held = [child.name for child in sibling.iterdir()]
        if _listed(sibling) is not None or held in ([], [MARKER]):
            _remove(sibling)


def _exchange(staging: Path, target: Path) -> None:
    """Put `staging` in `target`'s place, atomically; `staging` then holds the old folder."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None and renameat2(_AT_FDCWD, os.fsencode(staging), _AT_FDCWD,
                                           os.fsencode(target), _RENAME_EXCHANGE) == 0:
        return
    code = ctypes.get_errno() if renameat2 is not None else errno.ENOSYS
    if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        raise OSError(code, os.strerror(code))
    # no atomic exchange here: two renames, the old folder parked under a staging name
    parked = target.with_name(f"{staging.name}-old")
    target.rename(parked)
    staging.rename(target)
    parked.rename(staging)


def write_folder(target: Path, files: dict[str, str], *,
                 protected: list[Path] | tuple[Path, ...] = ()) -> None:
    """Write `files` (relative path -> text) as the new content of `target`.

    Refuses (InputError) a target holding files the planner did not write, a symlinked target,
    and a target equal to, above or inside any `protected` path. A failure before the swap
    leaves `target` untouched.
    """
    relatives = {relative: _safe_relative(relative) for relative in files}
    target = target.absolute()
    blocker = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise InputError(Problem(target, None, None, f"cannot write the output folder: "
                                 f"{blocker} is a file; choose another --out"))
    if target.is_symlink():
        raise _refuse(target, "it is a symbolic link; give the folder itself")
    try:
        target = target.resolve()
    except (RuntimeError, OSError):  # a loop of symlinks (RuntimeError before 3.13)
        raise _refuse(target, "it lies behind a loop of symbolic links") from None
    _check_protected(target, list(protected))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise _refuse(target, str(exc.strerror)) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # an open descriptor's lock: nothing left on disk
        _check_replaceable(target)
        _clean_stale(target)
        _write(target, files, relatives)
    finally:
        os.close(lock)


def _write(target: Path, files: dict[str, str], relatives: dict[str, PurePosixPath]) -> None:
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{_STAGING}", dir=target.parent))
    except OSError as exc:
        raise _refuse(target, str(exc.strerror)) from None
    try:
        listing = "\n".join([_MARKER_HEAD, *sorted(files)]) + "\n"
        (staging / MARKER).write_text(listing, encoding="utf-8")
        for relative, text in files.items():
            path = staging.joinpath(*relatives[relative].parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if target.exists():
            _exchange(staging, target)
        else:
            staging.rename(target)
    except OSError as exc:
        raise _refuse(target, str(exc.strerror)) from None
    finally:
        with contextlib.suppress(OSError):
            _remove(staging)
