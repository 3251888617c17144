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
        "a Namespace prefix: empty, or lower-case letters, digits and '-', starting with a "
        "letter or digit",
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


def _placeholder(annotation: Any) -> str:
    """A value of this type as a person would write it in a registry file."""
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(str(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "{...}"
    if origin in (list, tuple):
        return "[...]"
    if origin is dict:
        return "{NAME: ...}"
    return {str: "TEXT", int: "WHOLE-NUMBER", float: "NUMBER", bool: "true | false"}.get(
        annotation, "...")


def expected_shape(model: type[BaseModel]) -> str:
    """The mapping a model reads, in YAML: its required keys with a placeholder each, then the
    optional keys by name."""
    fields = [(f.alias or name, f) for name, f in model.model_fields.items()]
    required = ", ".join(f"{key}: {_placeholder(f.annotation)}" for key, f in fields
                         if f.is_required())
    optional = [key for key, f in fields if not f.is_required()]
    text = "{" + required + "}" if required else "a mapping"
    return text + (f" (optional keys: {', '.join(optional)})" if optional else "")


_EXPECTED = {
    "model_type": "a mapping", "dict_type": "a mapping", "model_attributes_type": "a mapping",
    "list_type": "a list (`[a, b]`, or one `- item` per line)",
    "tuple_type": "a list (`[a, b]`, or one `- item` per line)",
    "string_type": "text", "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
}


def _found(value: Any, raw: str | None) -> str:
    """What YAML made of a value, in the words of the file."""
    if isinstance(value, bool):
        return f"{raw or value}, which YAML reads as {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {raw or value}"
    if isinstance(value, str):
        return f"the text '{value}'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "nothing" if value is None else f"'{value}'"


def _message(schema: type[BaseModel], error: Any, raw: str | None = None) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        parent = _schema_at(schema, loc[:-1])
        keys = allowed_keys(parent) if parent else []
        hint = suggestion(str(loc[-1]), keys)
        known = f"; allowed keys: {', '.join(keys)}" if keys and not hint else ""
        return f"unknown key{hint}{known}"
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", error.get("ctx", {}).get("expected", ""))
        hint = suggestion(str(value), expected)
        return f"'{raw or value}' is not one of {', '.join(expected)}{hint}"
    if kind == "missing":
        model = _schema_at(schema, loc)
        shape = f"; expected {expected_shape(model)}" if model else ""
        return f"required key is missing{shape}"
    if kind == "string_type" and isinstance(value, bool | int | float):
        return (f"expected text, found {_found(value, raw)}; write it as a string: "
                f"\"{raw if raw is not None else value}\"")
    if kind in _EXPECTED:
        wanted = _EXPECTED[kind]
        model = _schema_at(schema, loc) if wanted == "a mapping" else None
        if model is not None:
            wanted = f"a mapping such as {expected_shape(model)}"
        return f"expected {wanted}, found {_found(value, raw)}"
    if kind == "string_pattern_mismatch":
        pattern = str(error.get("ctx", {}).get("pattern", ""))
        words = PATTERN_WORDS.get(pattern, f"matching the pattern {pattern}")
        return f"'{value}' is not {words}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith("Input should be "):
        message = re.sub(r" or instance of \w+", "", message)
        return f"{message.replace('Input should be', 'must be', 1)}, found {_found(value, raw)}"
    return message


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
    branches: dict[PathKey, list[str]] = {}
    for error in errors:
        if error["type"] == "missing" and error["loc"] in misspelt:
            continue
        loc = error["loc"]
        if _union_branch(doc.data, loc):
            branches.setdefault(loc[:-1], []).append(
                _message(schema, error, doc.scalars.get(loc[:-1])))
            continue
        problems.append(Problem(doc.path, doc.line_of(loc), format_loc(loc) or None,
                                _message(schema, error, doc.scalars.get(loc))))
    for loc, messages in branches.items():
        problems.append(Problem(doc.path, doc.line_of(loc), format_loc(loc) or None,
                                _one_of(messages)))
    return None, problems


def _union_branch(data: Any, loc: PathKey) -> bool:
    """Whether the last step of `loc` names a member of a union (pydantic's `int`, `str`, ...)
    rather than a key or index of the document."""
    if not loc or not isinstance(loc[-1], str):
        return False
    for part in loc[:-1]:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return False
    return not isinstance(data, dict)


def _one_of(messages: list[str]) -> str:
    """One message for a value that matches no member of a union."""
    unique = list(dict.fromkeys(messages))
    parts = [re.fullmatch(r"expected (.*), found (.*)", m) for m in unique]
    if all(parts) and len({p.group(2) for p in parts if p}) == 1:
        kinds = " / ".join(p.group(1) for p in parts if p)
        return f"expected one of {kinds}, found {parts[0].group(2) if parts[0] else ''}"
    return "; ".join(unique)
