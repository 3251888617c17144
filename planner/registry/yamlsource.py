"""Reading YAML while remembering the line of every key and list item.

Error messages must say `FILE:LINE: field.path`, so the loader keeps a table from each path in
the document (a tuple of keys and indexes) to the line it starts on.

Registry files come from pull requests, so reading is bounded: only regular files (a FIFO or a
device is refused before it is opened for reading, a symlink may not leave the registry), at
most `MAX_FILE_BYTES`, at most `MAX_DEPTH` levels of nesting, aliases that expand to at most
`MAX_ALIAS_NODES` nodes (no "billion laughs", no recursive alias), and only the plain YAML
types (no `!!binary`, `!!set`, `!!omap` or `!!pairs`).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from planner.errors import InputError, Problem

PathKey = tuple[str | int, ...]

MAX_FILE_BYTES = 4 * 1024 * 1024  # a registry file is kilobytes; more is a mistake or an attack
MAX_DEPTH = 32  # registry files nest a handful of levels
MAX_ALIAS_NODES = 100_000  # nodes that aliases may add when expanded
_UNSAFE_TAGS = ("binary", "set", "omap", "pairs")


class _PyEvents(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's own scanner and parser, for a PyYAML built without libyaml."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


# libyaml's scanner and parser where PyYAML has them: about eight times faster
_Events: type = getattr(getattr(yaml, "cyaml", None), "CParser", None) or _PyEvents


class _Loader(yaml.composer.Composer, _Events, yaml.constructor.SafeConstructor,
              yaml.resolver.Resolver):
    """A safe loader with PyYAML's composer over libyaml's events, a nesting limit, and
    without the tags no planner file uses."""

    yaml_constructors = {tag: constructor
                         for tag, constructor in yaml.SafeLoader.yaml_constructors.items()
                         if tag is None or tag.rpartition(":")[2] not in _UNSAFE_TAGS}

    def __init__(self, stream: str) -> None:
        _Events.__init__(self, stream)  # type: ignore[misc]
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._depth = 0
        self.aliases = 0  # aliases met: without any, nothing can expand

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels; flatten the file",
                    event.start_mark if event is not None else None)
            if self.check_event(yaml.events.AliasEvent):
                self.aliases += 1
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(root: yaml.Node) -> tuple[int, int, int]:
    """(distinct nodes, nodes with every alias expanded, depth with aliases expanded) of a
    composed document.

    Raises ComposerError for an alias that contains itself. Sizes are memoised per node, so
    the count costs one pass however large the expansion is.
    """
    sizes: dict[int, tuple[int, int]] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            below = [sizes[id(c)] for c in _children(node)]
            size = min(1 + sum(s for s, _ in below), 10 * MAX_ALIAS_NODES)  # enough to refuse
            sizes[key] = (size, 1 + max((d for _, d in below), default=0))
            continue
        if key in sizes:
            continue
        if key in open_:
            raise yaml.composer.ComposerError(None, None, "an alias refers to the collection "
                                              "that contains it; remove the recursion",
                                              node.start_mark)
        open_.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return len(sizes), *sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _read_bytes(path: Path, root: Path | None, max_bytes: int) -> bytes:
    """A regular file's bytes, refusing what is not one, is too large or leaves `root`."""
    if root is not None:
        try:
            target = path.resolve()
        except (RuntimeError, OSError):  # a loop of symlinks (RuntimeError before 3.13)
            raise InputError(Problem(path, None, None, "symbolic link that leads back to "
                                     "itself; put the file itself there")) from None
        if not target.is_relative_to(root.resolve()):
            raise InputError(Problem(path, None, None, f"symbolic link to {target} leaves the "
                                     "registry; put the file itself there"))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise InputError(Problem(path, None, None, "file not found")) from None
    except OSError as exc:
        raise InputError(Problem(path, None, None, f"cannot read file: {exc.strerror}")) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(Problem(path, None, None, "is a folder, not a YAML file"))
        if not stat.S_ISREG(info.st_mode):
            raise InputError(Problem(path, None, None, "not a regular file (a device, FIFO or "
                                     "socket); the planner reads only plain files"))
        chunks, size = [], 0
        while size <= max_bytes and (chunk := os.read(fd, max_bytes + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise InputError(Problem(path, None, None, f"larger than {max_bytes:,} bytes; a "
                                 "planner file is far smaller"))
    return data


def read_text(path: Path, *, root: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """A plain UTF-8 file inside the registry at `root` (a model's config.json), under the
    same bounds as its YAML files."""
    return _decode(path, _read_bytes(path, root, max_bytes))


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(Problem(path, line, None, f"not UTF-8 text (byte 0x{data[exc.start]:02x}"
                                 "); save the file as UTF-8")) from None


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file with the line (1-based) of every path in it."""

    path: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    scalars: dict[PathKey, str] = field(default_factory=dict)
    """Each scalar as written, before YAML typed it (`1.30`, `yes`), for messages."""

    def line_of(self, loc: PathKey) -> int:
        """The line of `loc`, or of its nearest ancestor that exists in the file."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return 1


def _index_lines(node: yaml.Node, path: PathKey, lines: dict[PathKey, int],
                 duplicates: list[tuple[PathKey, int]], scalars: dict[PathKey, str]) -> None:
    if isinstance(node, yaml.ScalarNode):
        scalars[path] = node.value
    elif isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = (*path, key)
            if key in seen:
                duplicates.append((child, key_node.start_mark.line + 1))
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _index_lines(value_node, child, lines, duplicates, scalars)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _index_lines(item, child, lines, duplicates, scalars)


def format_loc(loc: PathKey) -> str:
    """`('limits', 'max_concurrency')` -> `limits.max_concurrency`, list indexes as `[0]`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _unprintable(path: Path, text: str, exc: yaml.reader.ReaderError) -> InputError:
    if isinstance(exc.character, str):  # PyYAML's reader: a character index
        code, line = ord(exc.character), text[:exc.position].count("\n") + 1
    else:  # libyaml's: a byte offset into the UTF-8 text
        code = exc.character
        line = text.encode("utf-8", "surrogatepass")[:exc.position].count(b"\n") + 1
    return InputError(Problem(path, line, None, f"control character 0x{code:02x} is not "
                              "allowed in YAML; remove it"))


def read_yaml(path: Path, *, text: str | None = None, root: Path | None = None,
              max_bytes: int = MAX_FILE_BYTES) -> YamlDocument:
    """Parse one YAML file. A missing, unreadable, oversized, empty or malformed file is an
    InputError; with `root`, so is a symlink that leads outside `root`."""
    if text is None:
        text = _decode(path, _read_bytes(path, root, max_bytes))
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        raise _unprintable(path, text, exc) from None
    try:
        node = loader.get_single_node()
        if node is not None and loader.aliases:
            distinct, expanded, depth = _expanded_size(node)
            if expanded - distinct > MAX_ALIAS_NODES:
                raise yaml.composer.ComposerError(
                    None, None, f"aliases expand to more than {MAX_ALIAS_NODES:,} extra nodes; "
                    "write the values out", node.start_mark)
            if depth > MAX_DEPTH * 2:
                raise yaml.composer.ComposerError(
                    None, None, f"aliases nest deeper than {MAX_DEPTH * 2} levels; write the "
                    "values out", node.start_mark)
        data = loader.construct_document(node) if node is not None else None
    except yaml.reader.ReaderError as exc:
        raise _unprintable(path, text, exc) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise InputError(Problem(path, line, None, f"YAML syntax error: {reason}")) from None
    except yaml.YAMLError as exc:
        raise InputError(Problem(path, None, None, f"YAML syntax error: {exc}")) from None
    finally:
        loader.dispose()
    if data is None or node is None:
        raise InputError(Problem(path, 1, None, "file is empty; expected a YAML mapping"))
    if not isinstance(data, dict):
        found = type(data).__name__
        raise InputError(Problem(path, 1, None, f"expected a mapping at the top, found {found}"))
    lines: dict[PathKey, int] = {(): node.start_mark.line + 1}
    duplicates: list[tuple[PathKey, int]] = []
    scalars: dict[PathKey, str] = {}
    _index_lines(node, (), lines, duplicates, scalars)
    if duplicates:
        raise InputError([Problem(path, line, format_loc(loc), "duplicate key; keep one")
                          for loc, line in duplicates])
    return YamlDocument(path=path, data=data, lines=lines, scalars=scalars)
