"""The registry's file formats for people and editors: JSON Schemas and a reference page.

Both are made from the pydantic models' JSON Schemas (`model_json_schema`), walked generically,
so a field added to a schema appears in them when they are regenerated
(`planner schema --out docs/registry`); the tests compare the committed copies with fresh ones.
The reference takes each key's example from the bundled demo registry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from planner.demo import demo_registry_path
from planner.registry.messages import PATTERN_WORDS
from planner.schemas import Cluster, ModelSpec, PlannerConfig, Policy
from profiles.schema import Profile

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REFERENCE_FILE = "reference.md"
COMMAND = "planner schema --out docs/registry"


@dataclass(frozen=True)
class FileFormat:
    """One kind of registry file: where it lives, its schema, and the demo file shown."""

    key: str
    path: str
    schema: type[BaseModel]
    what: str
    summary: str
    example: str

    @property
    def schema_file(self) -> str:
        return f"{self.key}.schema.json"

    def schema_path_from(self, relative: str) -> str:
        """The schema's path from a file at `relative` in a registry whose schemas sit in
        `schemas/`, as an editor resolves the `$schema` of a YAML file."""
        depth = relative.count("/")
        return "../" * depth + f"schemas/{self.schema_file}"


FILES: tuple[FileFormat, ...] = (
    FileFormat("cluster", "cluster.yaml", Cluster, "GPU types and node pools",
               "The GPU types and the node pools models are placed on, and the Karpenter node "
               "class that provisions them.", "cluster.yaml"),
    FileFormat("policy", "policy.yaml", Policy, "placement rules",
               "The placement rules: memory headroom and utilisation, which pools admit which "
               "models, which models never share a GPU or node, how replicas spread, and the "
               "Kubernetes priority class of each priority.", "policy.yaml"),
    FileFormat("model", "models/<name>.yaml", ModelSpec, "one model per file",
               "One model per file, named like the file (`models/intent-classifier.yaml` holds "
               "`name: intent-classifier`): its owner, traffic, latency objective, placement "
               "labels and serving container.", "models/intent-classifier.yaml"),
    FileFormat("profile", "profiles/<model>/<gpu-type>.yaml", Profile,
               "measured (or reference) profile per model and GPU type",
               "How one model behaves on one GPU type, per concurrency level: throughput, "
               "latency percentiles and peak memory. `planner profile run` measures and writes "
               "it; a `reference` profile is an estimate that states its basis.",
               "profiles/intent-classifier/l4.yaml"),
    FileFormat("planner", "planner.yaml", PlannerConfig, "optional registry-wide settings",
               "Registry-wide settings. Every key has a default, so the file is optional.",
               "planner.yaml"),
)

_UNITS = (
    ("hours_per_month", "hours"),
    ("_per_node_hour", "currency per node-hour"),
    ("_per_hour", "currency per hour"),
    ("_per_month", "currency per month"),
    ("_mib", "MiB"),
    ("_gib", "GiB"),
    ("_ms", "milliseconds"),
    ("_rps", "requests per second"),
    ("_milli", "thousandths of a core"),
    ("_pct", "percent"),
    ("_s", "seconds"),
)


def json_schema(fmt: FileFormat) -> dict[str, Any]:
    """The JSON Schema of one file format, as pydantic derives it, with a title for editors."""
    schema = fmt.schema.model_json_schema(by_alias=True)
    return {"$schema": JSON_SCHEMA_DIALECT, **schema, "title": fmt.path,
            "description": fmt.summary}


def schema_files() -> dict[str, str]:
    """Every file format's JSON Schema, by file name."""
    return {fmt.schema_file: json.dumps(json_schema(fmt), indent=2, ensure_ascii=False) + "\n"
            for fmt in FILES}


def generated_files() -> dict[str, str]:
    """What `planner schema --out DIR` writes: the JSON Schemas and the reference page."""
    return {**schema_files(), REFERENCE_FILE: render_reference()}


# --- reading a JSON Schema ------------------------------------------------------------------


class _Walker:
    """Resolves `$ref`s and optional values in one file format's JSON Schema."""

    def __init__(self, schema: dict[str, Any]):
        self.root = schema
        self.defs: dict[str, Any] = schema.get("$defs", {})

    def resolve(self, node: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """The definition a node names (None for the root or an inline type) and its body."""
        ref = node.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            return name, self.defs[name]
        return None, node

    def present(self, node: dict[str, Any]) -> dict[str, Any]:
        """An optional value's type without its `null` alternative."""
        options = node.get("anyOf")
        if options:
            real = [o for o in options if o.get("type") != "null"]
            if len(real) == 1:
                return {**{k: v for k, v in node.items() if k != "anyOf"}, **real[0]}
        return node

    def object_of(self, node: dict[str, Any]) -> tuple[str | None, dict[str, Any]] | None:
        """The object (with properties) a node holds, if it is one."""
        name, body = self.resolve(self.present(node))
        return (name, body) if "properties" in body else None


def _sections(walker: _Walker) -> list[tuple[str | None, str, dict[str, Any]]]:
    """Each object of a file once, a parent before its children: (definition, path, body)."""
    found: list[tuple[str | None, str, dict[str, Any]]] = []
    seen: set[str | None] = set()

    def visit(name: str | None, path: str, body: dict[str, Any]) -> None:
        seen.add(name)
        found.append((name, path, body))
        for key, prop in body["properties"].items():
            for child, suffix in _children(walker, prop):
                inner = walker.object_of(child)
                if inner and inner[0] not in seen:
                    visit(inner[0], f"{path}.{key}{suffix}".lstrip("."), inner[1])

    visit(None, "", walker.root)
    return found


def _children(walker: _Walker, prop: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """The nodes under a property with the path suffix that reaches each."""
    node = walker.present(prop)
    nested: list[tuple[dict[str, Any], str]] = [(node, "")]
    if node.get("type") == "array":
        items = node.get("prefixItems") or [node.get("items", {})]
        nested += [(item, "[]") for item in items]
    value = _mapping_value(node)
    if value is not None:
        nested.append((value, ".<name>"))
    return nested


def _mapping_value(node: dict[str, Any]) -> dict[str, Any] | None:
    """The type of a mapping's values, whether its keys are free or follow a pattern."""
    value = node.get("additionalProperties")
    if isinstance(value, dict):
        return value
    patterns = list(node.get("patternProperties", {}).values())
    return patterns[0] if len(patterns) == 1 else None


def _pattern_words(node: dict[str, Any]) -> str:
    if "x-rule" in node:
        return str(node["x-rule"])
    pattern = node.get("pattern")
    if pattern is None:
        return ""
    return PATTERN_WORDS.get(pattern, f"matching the regular expression `{pattern}`")


def _bounds(node: dict[str, Any]) -> list[str]:
    signs = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
             ("exclusiveMaximum", "<"))
    return [f"{sign} {_number(node[key])}" for key, sign in signs if key in node]


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else str(value)


def _type(walker: _Walker, node: dict[str, Any], anchors: dict[str | None, tuple[str, str]]) -> str:
    """A node's type in registry words: `integer >= 1`, `one of a, b`, `list of [pool]`."""
    node = walker.present(node)
    name, body = walker.resolve(node)
    if "properties" in body:
        anchor, path = anchors[name]
        return f"mapping (see [`{path}`](#{anchor}))"
    if "enum" in body:
        return "one of " + ", ".join(f"`{v}`" for v in body["enum"])
    if "const" in body:
        return f"`{body['const']}`"
    if "anyOf" in body:
        return " or ".join(_type(walker, o, anchors) for o in body["anyOf"])
    kind = body.get("type")
    if kind == "array":
        if "prefixItems" in body:
            parts = [_type(walker, item, anchors) for item in body["prefixItems"]]
            return f"list of exactly {len(parts)}: " + ", ".join(parts)
        text = f"list of {_type(walker, body.get('items', {}), anchors)}"
        if body.get("minItems"):
            text += f", at least {body['minItems']}"
        return text
    if kind == "object":
        value = _mapping_value(body)
        inner = _type(walker, value, anchors) if value is not None else "any value"
        keys = body.get("propertyNames")
        key_words = ""
        if isinstance(keys, dict) and "enum" in keys:
            key_words = " (" + ", ".join(f"`{v}`" for v in keys["enum"]) + ")"
        elif isinstance(keys, dict) and _pattern_words(keys):
            key_words = f" ({_pattern_words(keys)})"
        return f"mapping of name{key_words} to {inner}"
    words = {"string": "string", "integer": "integer", "number": "number",
             "boolean": "`true` or `false`", "null": "null"}.get(str(kind), "any value")
    details = _bounds(body)
    if kind == "string":
        rule = _pattern_words(body)
        details += [rule] if rule else []
        if "maxLength" in body and "at most" not in rule:
            details.append(f"at most {body['maxLength']} characters")
        if body.get("minLength"):
            details.append("not empty" if body["minLength"] == 1
                           else f"at least {body['minLength']} characters")
    return words + (", " + ", ".join(details) if details else "")


def _unit(key: str) -> str:
    return next((unit for suffix, unit in _UNITS if key.endswith(suffix)), "")


# --- examples from the demo -----------------------------------------------------------------


def _examples(walker: _Walker, data: Any) -> dict[tuple[str | None, str], Any]:
    """The first value the demo gives each key, by (definition, key)."""
    found: dict[tuple[str | None, str], Any] = {}

    def visit(node: dict[str, Any], value: Any) -> None:
        node = walker.present(node)
        name, body = walker.resolve(node)
        if "properties" in body and isinstance(value, dict):
            for key, item in value.items():
                prop = body["properties"].get(key)
                if prop is not None:
                    found.setdefault((name, key), item)
                    visit(prop, item)
        elif isinstance(value, list) and body.get("type") == "array":
            items = body.get("prefixItems")
            for index, item in enumerate(value):
                visit(items[index] if items and index < len(items) else body.get("items", {}),
                      item)
        elif isinstance(value, dict) and _mapping_value(body) is not None:
            for item in value.values():
                visit(_mapping_value(body) or {}, item)
        elif "anyOf" in body:
            for option in body["anyOf"]:
                visit(option, value)

    visit(walker.root, data)
    return found


def _inline(value: Any, limit: int = 90) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()
    text = text.removesuffix("\n...").removesuffix(" ...").strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- the page -------------------------------------------------------------------------------


def _anchor(fmt: FileFormat, path: str) -> str:
    text = f"{fmt.key}-{path}" if path else fmt.key
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


def _render_file(fmt: FileFormat, demo: Path) -> list[str]:
    schema = json_schema(fmt)
    walker = _Walker(schema)
    sections = list(_sections(walker))
    anchors = {name: (_anchor(fmt, path), path) for name, path, _ in sections}
    example_text = (demo / fmt.example).read_text(encoding="utf-8")
    examples = _examples(walker, yaml.safe_load(example_text))
    lines = [f'<a id="{anchors[None][0]}"></a>', "", f"## `{fmt.path}`", "", fmt.summary, "",
             f"JSON Schema: [`{fmt.schema_file}`]({fmt.schema_file}).", ""]
    for name, path, body in sections:
        if name is not None:
            lines += [f'<a id="{anchors[name][0]}"></a>', "",
                      f"### `{path}`", ""]
        description = body.get("description")
        if name is not None and description:
            lines += [" ".join(str(description).split()), ""]
        required = set(body.get("required", ()))
        for key, prop in body["properties"].items():
            lines.append(_key_line(walker, key, prop, key in required, anchors,
                                   examples.get((name, key), _MISSING)))
        lines.append("")
    fence = "````" if "```" in example_text else "```"
    lines += [f"Example: the demo's `{fmt.example}`.", "", f"{fence}yaml",
              example_text.rstrip("\n"), fence, ""]
    return lines


_MISSING = object()


def _given(default: Any) -> Any:
    """A default as a person would write it: absent keys of a mapping left out."""
    if isinstance(default, dict):
        return {k: v for k, v in default.items() if v is not None}
    return default if default not in (None, [], "") else None


def _key_line(walker: _Walker, key: str, prop: dict[str, Any], required: bool,
              anchors: dict[str | None, tuple[str, str]], example: Any) -> str:
    parts = [_type(walker, prop, anchors)]
    unit = _unit(key)
    if unit:
        parts.append(f"in {unit}")
    if required:
        parts.append("**required**")
    elif _given(prop.get("default")):
        parts.append(f"default `{_inline(_given(prop['default']))}`")
    else:
        parts.append("optional")
    text = f"- `{key}`: {'; '.join(parts)}."
    description = " ".join(str(prop.get("description", "")).split())
    if description:
        text += f" {description[0].upper()}{description[1:].rstrip('.')}."
    if example is not _MISSING:
        text += f" Example: `{_inline(example)}`."
    return text


def render_reference(demo: Path | None = None) -> str:
    """The reference page of every registry file (markdown)."""
    demo = demo or demo_registry_path()
    lines = [
        "# Registry reference",
        "",
        f"Generated from the planner's schemas by `{COMMAND}`; edit the schemas, not this page.",
        "",
        "A registry is a folder, usually a git repository of its own:",
        "",
        "```",
        *(f"{fmt.path:<36}# {fmt.what}" for fmt in FILES),
        "```",
        "",
        "Unknown keys are errors. Each key below gives its type, unit, whether it is required "
        "or its default, what it means, and the value the demo registry (`planner init DIR` "
        "writes it) gives it. Quote values YAML would read as numbers or booleans where a "
        "string is expected: `kubernetes_version: \"1.33\"`. The JSON Schemas next to this "
        "page let an editor complete and check these files; `planner init` points each file "
        "at them with a `# yaml-language-server: $schema=...` line.",
        "",
        *(f"- [`{fmt.path}`](#{_anchor(fmt, '')})" for fmt in FILES),
        "",
    ]
    for fmt in FILES:
        lines += _render_file(fmt, demo)
    return "\n".join(lines).rstrip("\n") + "\n"


# --- files written by `planner init` --------------------------------------------------------


def format_of(relative: str) -> FileFormat | None:
    """The file format of a registry file at its default place, by its relative path."""
    parts = relative.split("/")
    if not parts[-1].endswith((".yaml", ".yml")):
        return None
    if len(parts) == 1:
        return next((f for f in FILES if f.path == parts[0]), None)
    if len(parts) == 2 and parts[0] == "models":
        return next(f for f in FILES if f.key == "model")
    if len(parts) == 3 and parts[0] == "profiles":
        return next(f for f in FILES if f.key == "profile")
    return None


def annotate(relative: str, text: str) -> str:
    """A registry file with the editor's `$schema` line and a comment naming its reference on
    top, and the allowed values after each top-level key that has a few."""
    fmt = format_of(relative)
    if fmt is None:
        return text
    properties = json_schema(fmt).get("properties", {})
    lines = []
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        prop = properties.get(key) if colon and not line.startswith((" ", "#")) else None
        choices = prop.get("enum") if isinstance(prop, dict) else None
        if choices and value.strip() and "#" not in value:
            line = f"{line}  # {' | '.join(map(str, choices))}"
        lines.append(line)
    head = [f"# yaml-language-server: $schema={fmt.schema_path_from(relative)}",
            f"# {fmt.path}: {fmt.what}. Every key: "
            f"{fmt.schema_path_from(relative).rsplit('/', 1)[0]}/{REFERENCE_FILE}"]
    return "\n".join([*head, *lines]) + "\n"


def guess_format(data: dict[str, Any]) -> FileFormat | None:
    """The registry file a mapping looks like, by its `kind` or its top-level keys: the format
    whose keys it uses most, when it uses at least two of them and none that format lacks."""
    if data.get("kind") == "ModelProfile":
        return next(f for f in FILES if f.key == "profile")
    best: tuple[int, FileFormat] | None = None
    for fmt in FILES:
        keys = set(json_schema(fmt)["properties"])
        shared = len(keys & set(data))
        if shared >= 2 and set(data) <= keys and (best is None or shared > best[0]):
            best = (shared, fmt)
    return best[1] if best else None
