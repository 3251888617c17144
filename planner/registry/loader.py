"""Loading a registry folder into a Fleet, reporting every problem in every file at once."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from planner.errors import InputError, Problem
from planner.registry import kubernetes
from planner.registry.fleet import Fleet
from planner.registry.messages import validate_document
from planner.registry.references import Parsed, cross_check
from planner.registry.yamlsource import YamlDocument, read_text, read_yaml
from planner.schemas import Cluster, ModelSpec, PlannerConfig, Policy
from profiles.llm import from_hf_config
from profiles.schema import Profile

CONFIG_FILE = "planner.yaml"
PLAN_KIND = "PlacementPlan"  # the plan file's kind: given where a registry file belongs


def _load(path: Path, schema: type[BaseModel], problems: list[Problem], root: Path):
    """Read and validate one file of the registry at `root`; on failure record its problems
    and return (None, doc)."""
    try:
        doc = read_yaml(path, root=root)
    except InputError as exc:
        problems.extend(exc.problems)
        return None, None
    if doc.data.get("kind") == PLAN_KIND:
        problems.append(Problem(path, 1, None, f"this is a plan file (kind: {PLAN_KIND}), not "
                                f"the registry's {path.name}; a plan is read with --plan or "
                                "--base, the registry with --registry"))
        return None, None
    obj, found = validate_document(doc, schema)
    problems.extend(found)
    return obj, doc


def _with_architecture(model: ModelSpec, doc: YamlDocument, root: Path,
                       problems: list[Problem]) -> ModelSpec:
    """An LLM model with its architecture read from the `config.json` it names."""
    if model.llm is None or model.llm.config_json is None:
        return model
    loc = ("llm", "config_json")
    path = root / model.llm.config_json
    try:
        arch = from_hf_config(read_text(path, root=root))
    except InputError as exc:
        problems.extend(Problem(doc.path, doc.line_of(loc), "llm.config_json",
                                f"{model.llm.config_json}: {p.message}") for p in exc.problems)
        return model
    except ValueError as exc:  # pydantic's ValidationError is one
        reason = str(exc).replace("\n", "; ")
        problems.append(Problem(doc.path, doc.line_of(loc), "llm.config_json",
                                f"{model.llm.config_json} is not a usable Hugging Face "
                                f"config.json: {reason}"))
        return model
    return model.model_copy(update={"llm": model.llm.model_copy(update={"architecture": arch})})


def _yaml_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def _check_root(root: Path) -> None:
    """A registry folder, not a missing one nor a plan's output folder."""
    if not root.is_dir():
        raise InputError(Problem(root, None, None,
                                 "registry folder not found; pass --registry DIR or run "
                                 "`planner init DIR` to start one"))
    if (root / "plan.yaml").is_file() and not (root / "models").is_dir() \
            and not (root / CONFIG_FILE).is_file():
        raise InputError(Problem(root, None, None,
                                 "this folder holds a plan (plan.yaml), not a registry; pass "
                                 "--registry the registry folder (models/, cluster.yaml, "
                                 "policy.yaml), and the plan with --plan or --base"))


def _load_models(root: Path, models_dir: Path, problems: list[Problem]
                 ) -> tuple[dict[str, ModelSpec], dict[str, YamlDocument], set[str]]:
    """The model files by model name, their documents, and every file's stem (a profile's
    folder must name one)."""
    models: dict[str, ModelSpec] = {}
    documents: dict[str, YamlDocument] = {}
    model_stems: dict[str, Path] = {}
    loaded: list[tuple[ModelSpec, YamlDocument]] = []
    if not models_dir.is_dir():
        problems.append(Problem(models_dir, None, None,
                                "models folder not found; add one YAML file per model there"))
    for path in _yaml_files(models_dir) if models_dir.is_dir() else []:
        if path.stem in model_stems:
            problems.append(Problem(path, 1, None, f"duplicate model '{path.stem}': "
                                    f"{model_stems[path.stem].name} defines it too; keep one"))
            continue
        model_stems[path.stem] = path
        model, doc = _load(path, ModelSpec, problems, root)
        if model is not None:
            loaded.append((model, doc))
    # A name defined twice is kept from the file named after it; the other file is the error.
    loaded.sort(key=lambda pair: pair[1].path.stem != pair[0].name)
    for model, doc in loaded:
        if model.name in models:
            pair = sorted(str(d.path.relative_to(root)) for d in (documents[model.name], doc))
            problems.append(Problem(doc.path, doc.line_of(("name",)), "name",
                                    f"model '{model.name}' is defined in both {pair[0]} and "
                                    f"{pair[1]}; model names must be unique, so rename one "
                                    "(its file name too) or delete it"))
            continue
        models[model.name] = _with_architecture(model, doc, root, problems)
        documents[model.name] = doc
    return models, documents, set(model_stems)


def _load_profiles(root: Path, profiles_dir: Path, problems: list[Problem]
                   ) -> tuple[dict[tuple[str, str], Profile],
                              dict[tuple[str, str], YamlDocument]]:
    """The profile files by (model, GPU type), from `<model>/<gpu-type>.yaml`, and their
    documents."""
    profiles: dict[tuple[str, str], Profile] = {}
    profile_docs: dict[tuple[str, str], YamlDocument] = {}
    profile_paths: dict[tuple[str, str], Path] = {}
    for path in sorted(profiles_dir.glob("*/*.y*ml")) if profiles_dir.is_dir() else []:
        key = (path.parent.name, path.stem)
        if key in profile_paths:
            problems.append(Problem(path, None, None, f"a second profile of '{key[0]}' on "
                                    f"'{key[1]}': {profile_paths[key].relative_to(root)} is "
                                    "one too; keep one"))
            continue
        profile_paths[key] = path
        profile, doc = _load(path, Profile, problems, root)
        if profile is not None:
            profiles[key] = profile
            profile_docs[key] = doc
    return profiles, profile_docs


def load_registry(root: Path, *, policy_gates: bool = False) -> Fleet:
    """Load and validate the registry at `root`; raise InputError listing every problem.

    With `policy_gates`, models that break a platform rule (no pool admits them) are left out
    and their problems kept in `Fleet.policy_violations`, for `planner check` to gate on.
    """
    _check_root(root)
    problems: list[Problem] = []
    config = PlannerConfig()
    if (root / CONFIG_FILE).exists():
        config = _load(root / CONFIG_FILE, PlannerConfig, problems, root)[0] or config
    cluster, cluster_doc = _load(root / config.paths.cluster, Cluster, problems, root)
    policy, policy_doc = _load(root / config.paths.policy, Policy, problems, root)
    models, documents, model_stems = _load_models(root, root / config.paths.models, problems)
    profiles, profile_docs = _load_profiles(root, root / config.paths.profiles, problems)
    if cluster is not None and policy is not None:
        problems.extend(cross_check(
            Parsed(root, models, documents, model_stems, profiles, profile_docs,
                   cluster, cluster_doc, policy, policy_doc)))
        problems.extend(kubernetes.cluster_problems(config, cluster, cluster_doc, policy))
    problems.extend(kubernetes.namespace_problems(config, models, documents))
    violations = [p for p in problems if p.policy] if policy_gates else []
    if len(violations) < len(problems):
        raise InputError(problems)
    for problem in violations:
        assert problem.file is not None  # a policy problem names its model file
        models.pop(problem.file.stem, None)
    return Fleet(root=root, config=config, models=dict(sorted(models.items())),
                 documents=documents, profiles=profiles, cluster=cluster, policy=policy,
                 policy_violations=tuple(violations))
