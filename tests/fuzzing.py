"""A mutation fuzzer over the demo registry, and the invariant every CLI run must keep.

Each case mutates the demo registry one to three times, drawn from a random generator seeded
by the seed and the case number (so a case is always the same registry): a number scaled or
shifted, a value replaced by an awkward one (huge, tiny, negative, infinite, not a number,
empty, a path, control characters, markup), a key removed, renamed or added, a list item
repeated, bytes inserted into or cut from a file (YAML anchors, aliases, tags, brackets,
control characters), a file removed, copied, emptied or replaced by a folder, a FIFO or a
symlink. The command then runs in-process. The invariant: exit 0, 1 or 2 (never 3), no
traceback, an answer within a minute, the registry untouched, and nothing written beside the
registry but --out.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import signal
from collections.abc import Callable
from contextlib import redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.registry.locate import write_demo

INTERESTING: list[Any] = [
    0, -1, 1, 2, 7, 63, 64, 65535, 65536, 2**31, 2**53 + 1, 2**63, -(2**63), 10**30,
    0.0, -0.0, 1e-300, 5e-324, 1e308, -1e308, float("inf"), float("-inf"), float("nan"), 0.5,
    0.999999, 1.000001, "", " ", "x" * 300, "../../../escaped", "/etc/passwd", "a\nb",
    "::error::forged", "</details><img src=x onerror=alert(1)>@octocat", "\x1b[31mred",
    "UPPER_case", "a" * 64, "-leading", "trailing-", "1.5", "true", "null", None, True, False,
    [], {}, [1, 2], {"a": 1}, [[[[1]]]],
]
TEXT_SNIPPETS = ["&a ", "*a", "!!binary aGk=", "!!python/object:os.system ", "[", "]", "{",
                 "}", ": ", "\t", "- ", "---\n", "...\n", "<<: *a\n", "\x00", "\x07", "\x1b",
                 "\ufeff", "\u202e", "%YAML 1.2\n", "? ", "|\n", ">\n", "#", "'", '"', "\\"]


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key or index path in a YAML document."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


def _parent(data: Any, path: tuple) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def _structured(file: Path, rng: random.Random, touched: set[Path]) -> str:
    """Change the parsed document of `file` and write it back."""
    try:
        data = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return _textual(file, rng, touched)
    paths = _paths(data)
    if not paths:
        return _textual(file, rng, touched)
    touched.add(file)
    path = rng.choice(paths)
    parent, last = _parent(data, path), path[-1]
    kind = rng.choice(["nudge", "nudge", "nudge", "value", "value", "delete", "rename", "add",
                       "repeat", "swap"])
    current = parent[last]
    if kind == "nudge" and isinstance(current, int | float) and not isinstance(current, bool):
        factor = rng.choice([0, 0.01, 0.5, 0.9, 1.1, 2, 10, 1000])
        parent[last] = type(current)(current * factor) + rng.choice([-1, 0, 0, 1])
    elif kind in ("nudge", "value"):
        parent[last] = rng.choice(INTERESTING)
    elif kind == "delete":
        del parent[last]
    elif kind == "rename" and isinstance(parent, dict):
        parent[f"{last}x" if rng.random() < 0.5 else str(last)[:-1]] = parent.pop(last)
    elif kind == "add" and isinstance(parent, dict):
        parent[rng.choice(["extra", "na me", "näme", "a\nb", str(last).upper()])] = 1
    elif kind == "repeat" and isinstance(parent, list):
        parent.insert(last, parent[last])
    else:
        other = rng.choice(paths)
        try:
            parent[last] = _parent(data, other)[other[-1]]
        except (KeyError, IndexError, TypeError):
            parent[last] = rng.choice(INTERESTING)
    file.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return f"{kind} {'.'.join(map(str, path))} in {file.name}"


def _textual(file: Path, rng: random.Random, touched: set[Path]) -> str:
    """Insert, cut or repeat raw text in `file`."""
    touched.add(file)
    try:
        text = file.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return "unreadable"
    at = rng.randrange(len(text) + 1)
    kind = rng.choice(["insert", "insert", "cut", "truncate", "repeat-line"])
    if kind == "insert":
        text = text[:at] + rng.choice(TEXT_SNIPPETS) + text[at:]
    elif kind == "cut":
        text = text[:at] + text[at + rng.randint(1, 40):]
    elif kind == "truncate":
        text = text[:at]
    else:
        lines = text.splitlines(keepends=True)
        if lines:
            line = rng.randrange(len(lines))
            lines.insert(line, lines[line] * rng.randint(1, 3))
        text = "".join(lines)
    file.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    return f"{kind} at {at} in {file.name}"


def _on_disk(root: Path, rng: random.Random, touched: set[Path]) -> str:
    """Remove, copy, empty or replace a file of the registry."""
    files = sorted(p for p in root.rglob("*.yaml") if p.is_file())
    file = rng.choice(files)
    touched.update((file, file.with_name(f"aaa-{file.name}")))
    kind = rng.choice(["remove", "copy", "empty", "folder", "fifo", "link-out", "link-in"])
    if kind == "remove":
        file.unlink()
    elif kind == "copy":
        shutil.copy(file, file.with_name(f"aaa-{file.name}"))
    elif kind == "empty":
        file.write_text("")
    elif kind == "folder":
        file.unlink()
        file.mkdir()
    elif kind == "fifo":
        file.unlink()
        os.mkfifo(file)
    elif kind == "link-out":
        file.unlink()
        file.symlink_to("/dev/zero")
    else:
        other = rng.choice(files)
        file.unlink()
        file.symlink_to(os.path.relpath(other, file.parent))
    return f"{kind} {file.relative_to(root)}"


def mutate(root: Path, rng: random.Random, touched: set[Path]) -> list[str]:
    """Apply one to three mutations to the registry at `root`; describe each, and add every
    path they change to `touched`."""
    done = []
    for _ in range(rng.randint(1, 3)):
        files = sorted(p for p in root.rglob("*.yaml") if p.is_file() and not p.is_symlink())
        if not files:
            break
        roll = rng.random()
        if roll < 0.6:
            done.append(_structured(rng.choice(files), rng, touched))
        elif roll < 0.9:
            done.append(_textual(rng.choice(files), rng, touched))
        else:
            done.append(_on_disk(root, rng, touched))
    return done


def _snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under `folder` with its kind, size and modification time (nothing opened)."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            info = path.lstat()
            seen[path.relative_to(folder).as_posix()] = (info.st_mode, info.st_size,
                                                         info.st_mtime_ns)
    return seen


class Workspace:
    """One copy of the demo registry, mutated for a case and put back afterwards by rewriting
    only what the mutations touched (copying the whole registry per case costs more than the
    command under test)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.registry = tmp / "registry"
        write_demo(self.registry)
        self.pristine = {p: p.read_bytes() for p in self.registry.rglob("*") if p.is_file()}

    def restore(self, touched: set[Path]) -> None:
        for path in touched:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
            if path in self.pristine:
                path.write_bytes(self.pristine[path])
        for extra in self.tmp.iterdir():
            if extra != self.registry:
                shutil.rmtree(extra) if extra.is_dir() and not extra.is_symlink() \
                    else extra.unlink()


@dataclass(frozen=True)
class Outcome:
    case: int
    command: str
    exit_code: int
    mutations: tuple[str, ...]
    broken: str  # empty when the invariant held


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def run_case(space: Workspace, seed: int, case: int, command: str,
             extra: tuple[str, ...] = (), hang_s: int = 60) -> Outcome:
    """Mutate the workspace's registry, run `command` on it, check the invariant, restore."""
    rng = random.Random(f"{seed}:{case}")
    registry, out = space.registry, space.tmp / "out"
    touched: set[Path] = set()
    mutations = tuple(mutate(registry, rng, touched))
    before = _snapshot(registry)
    args = [command, "--registry", str(registry), *extra]
    if command == "plan":
        args += ["--out", str(out)]
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(hang_s)
    broken = ""
    try:
        with redirect_stderr(io.StringIO()):
            result = CliRunner().invoke(app, args, catch_exceptions=True)
        exit_code = result.exit_code
        output = result.stdout + result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            broken = f"exception {type(result.exception).__name__}: {result.exception}"
        elif exit_code not in (0, 1, 2):
            broken = f"exit {exit_code}: {output.strip().splitlines()[-1:]}"
        elif "Traceback" in output or "internal error" in output:
            broken = "traceback or internal error in the output"
    except _Hang:
        exit_code, broken = -1, f"no answer within {hang_s} s"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if not broken and _snapshot(registry) != before:
        broken = "the registry changed"
    outside = sorted(p.name for p in space.tmp.iterdir() if p not in (registry, out))
    if not broken and outside:
        broken = f"files outside --out: {outside[:3]}"
    space.restore(touched)
    return Outcome(case, command, exit_code, mutations, broken)


def run_many(tmp: Path, seed: int, cases: range, command: str, extra: tuple[str, ...] = (),
             progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run `cases` (case numbers of `seed`) in one workspace under `tmp`."""
    space = Workspace(tmp)
    outcomes = []
    for case in cases:
        outcome = run_case(space, seed, case, command, extra)
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes
