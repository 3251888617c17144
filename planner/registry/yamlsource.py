"""Reading YAML while remembering the line of every key and list item.

Error messages must say `FILE:LINE: field.path`, so the loader keeps a table from each path in
the document (a tuple of keys and indexes) to the line it starts on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from planner.errors import InputError, Problem

PathKey = tuple[str | int, ...]

MAX_FILE_BYTES = 4 * 1024 * 1024  # a registry file is kilobytes; more is a mistake or an attack


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


def read_yaml(path: Path, *, text: str | None = None) -> YamlDocument:
    """Parse one YAML file. A missing, unreadable, empty or malformed file is an InputError."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(Problem(path, None, None, "file not found")) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(Problem(path, None, None, f"cannot read file: {exc}")) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise InputError(Problem(path, line, None, f"YAML syntax error: {reason}")) from None
    except yaml.YAMLError as exc:
        raise InputError(Problem(path, None, None, f"YAML syntax error: {exc}")) from None
    finally:
        loader.dispose()
    if data is None:
        raise InputError(Problem(path, 1, None, "file is empty; expected a YAML mapping"))
    if not isinstance(data, dict):
        found = type(data).__name__
        raise InputError(Problem(path, 1, None, f"expected a mapping at the top, found {found}"))
    assert node is not None  # a mapping was read, so there is a node
    lines: dict[PathKey, int] = {(): node.start_mark.line + 1}
    duplicates: list[tuple[PathKey, int]] = []
    scalars: dict[PathKey, str] = {}
    _index_lines(node, (), lines, duplicates, scalars)
    if duplicates:
        raise InputError([Problem(path, line, format_loc(loc), "duplicate key; keep one")
                          for loc, line in duplicates])
    return YamlDocument(path=path, data=data, lines=lines, scalars=scalars)
