"""Turning pydantic validation errors into `FILE:LINE: field.path: message` problems.

Misspelt keys and enum values get a did-you-mean, found with difflib among the names the
schema allows at that place.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from planner.errors import Problem
from planner.registry.yamlsource import PathKey, YamlDocument, format_loc

M = TypeVar("M", bound=BaseModel)

# The registry's patterns in words, for messages and the reference; others are quoted.
PATTERN_WORDS: dict[str, str] = {
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$":
        "a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a "
        "letter or digit, at most 63 characters",
    r"^[A-Z]{3}$": "an ISO 4217 currency code: three capital letters, such as USD",
    r"^1\.\d+$": "a Kubernetes minor version as a quoted string, such as \"1.33\"",
    r"^([a-z0-9][-a-z0-9]*)?$":
        "empty, or lower-case letters, digits and '-', starting with a letter or digit",
    r"^[A-Z][A-Za-z0-9]*$": "a Kubernetes kind: a capital letter, then letters and digits",
    r"^[\w.]+:\w+$": "`module:function`, such as planner.demo.models:text_classifier",
}


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional so the schema walk sees the real type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _schema_at(schema: type[BaseModel], loc: PathKey) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `loc`, if the walk can tell."""
    annotation: Any = schema
    for part in loc:
        annotation = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = next((f for name, f in annotation.model_fields.items()
                          if part in (name, f.alias)), None)
            if field is None:
                return None
            annotation = field.annotation
        elif origin in (list, tuple):
            annotation = typing.get_args(annotation)[0]
        elif origin is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return None
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def allowed_keys(schema: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in schema.model_fields.items()]


def suggestion(word: str, choices: list[str]) -> str:
    """` (did you mean 'x'?)` when one choice is close to `word`, else an empty string."""
    word = str(word)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close and len(word) >= 3:
        close = [c for c in choices if c.startswith(word)][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


def _message(schema: type[BaseModel], error: Any) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _schema_at(schema, loc[:-1])
        keys = allowed_keys(parent) if parent else []
        hint = suggestion(str(loc[-1]), keys)
        known = f"; allowed keys: {', '.join(keys)}" if keys and not hint else ""
        return f"unknown key{hint}{known}"
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", error.get("ctx", {}).get("expected", ""))
        value = error.get("input")
        hint = suggestion(str(value), expected)
        return f"'{value}' is not one of {', '.join(expected)}{hint}"
    if kind == "missing":
        return "required field is missing"
    message = error["msg"]
    return message.removeprefix("Value error, ")


def validate_document(doc: YamlDocument, schema: type[M]) -> tuple[M | None, list[Problem]]:
    """Validate `doc` against `schema`: the object, or None and every problem, located."""
    try:
        return schema.model_validate(doc.data), []
    except ValidationError as exc:
        # pydantic marks an invalid mapping key with a last `[key]` step; the key names it.
        errors: list[dict[str, Any]] = [
            {**e, "loc": tuple(e["loc"])[:-1] if e["loc"][-1:] == ("[key]",) else tuple(e["loc"])}
            for e in exc.errors()]
    # A misspelt key also makes the real key "missing"; the did-you-mean already says so.
    misspelt: set[PathKey] = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            parent = _schema_at(schema, error["loc"][:-1])
            close = difflib.get_close_matches(str(error["loc"][-1]),
                                              allowed_keys(parent) if parent else [], 1, 0.6)
            misspelt.update((*error["loc"][:-1], key) for key in close)
    problems = []
    for error in errors:
        if error["type"] == "missing" and error["loc"] in misspelt:
            continue
        loc = error["loc"]
        problems.append(Problem(doc.path, doc.line_of(loc), format_loc(loc) or None,
                                _message(schema, error)))
    return None, problems
