"""The documents of an output folder's `manifests/`, by kind, as the API server receives them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from planner.errors import InputError, Problem

MAX_MANIFEST_BYTES = 16 * 1024 * 1024


@dataclass
class Manifests:
    """Every document by kind; `texts` keeps each file's text by its path."""

    by_kind: dict[str, list[dict]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, files: dict[str, str]) -> Manifests:
        """The documents of `files` (text by path); a file that is not YAML, or a document
        without a kind, is an InputError naming the file and line."""
        result = cls()
        problems = []
        for path, text in sorted(files.items()):
            result.texts[path] = text
            try:
                documents = list(yaml.safe_load_all(text))
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                problems.append(Problem(Path(path), mark.line + 1 if mark else None, None,
                                        f"not valid YAML: {getattr(exc, 'problem', exc)}"))
                continue
            for index, document in enumerate(d for d in documents if d is not None):
                if not isinstance(document, dict) or not isinstance(document.get("kind"), str):
                    problems.append(Problem(Path(path), None, f"document {index + 1}",
                                            "not a Kubernetes object (no `kind`)"))
                    continue
                result.by_kind.setdefault(document["kind"], []).append(document)
        if problems:
            raise InputError(problems)
        return result

    @classmethod
    def read(cls, folder: Path) -> Manifests:
        """Every `*.yaml` and `*.yml` file under `folder`."""
        if not folder.is_dir():
            raise InputError(Problem(folder, None, None, "no such folder; pass the manifests/ "
                                     "folder that `planner plan --out DIR` wrote"))
        files = {}
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".yaml", ".yml") and path.is_file():
                if path.stat().st_size > MAX_MANIFEST_BYTES:
                    raise InputError(Problem(path, None, None, "larger than "
                                             f"{MAX_MANIFEST_BYTES // 2**20} MiB"))
                files[str(path)] = path.read_text(encoding="utf-8")
        return cls.of(files)

    def kind(self, kind: str) -> list[dict]:
        return self.by_kind.get(kind, [])

    def named(self, kind: str, name: str) -> dict | None:
        return next((d for d in self.kind(kind) if d.get("metadata", {}).get("name") == name),
                    None)
