"""Whether KServe ModelMesh would load each member of a cache into the cache's pods.

The ModelMesh controller takes an InferenceService only with the annotation
`serving.kserve.io/deploymentMode: ModelMesh` (otherwise KServe runs it as pods of its own);
it loads the model only into the pods of the ServingRuntime its predictor names, in the
InferenceService's namespace, when that runtime is multi-model and lists the predictor's model
format among its `supportedModelFormats`; it pulls from `storageUri` or `storage.path`.
"""

from __future__ import annotations

from planner.planfile import Plan
from planner.simulation.manifests import Manifests
from planner.simulation.pods import modelmesh_mode


def _runtime_problem(service: dict, runtimes: dict[tuple[str, str], dict],
                     runtime_name: str) -> str | None:
    """Why ModelMesh would not load `service` into the runtime `runtime_name`, if it would
    not."""
    namespace = service["metadata"].get("namespace", "default")
    model = (service.get("spec", {}).get("predictor") or {}).get("model") or {}
    named = model.get("runtime")
    if named != runtime_name:
        return f"its predictor names runtime '{named}', not the cache's '{runtime_name}'"
    runtime = runtimes.get((namespace, runtime_name))
    if runtime is None:
        return f"no ServingRuntime '{runtime_name}' in its namespace '{namespace}'"
    if not runtime["spec"].get("multiModel"):
        return f"ServingRuntime '{runtime_name}' is not multiModel"
    wanted = (model.get("modelFormat") or {}).get("name")
    formats = {f.get("name") for f in runtime["spec"].get("supportedModelFormats") or []}
    if wanted not in formats:
        return (f"its model format '{wanted}' is not among the runtime's "
                f"({', '.join(sorted(str(f) for f in formats))})")
    storage = model.get("storage") or {}
    if not model.get("storageUri") and not storage.get("path"):
        return "it names no storageUri or storage.path to pull the model from"
    return None


def member_problems(plan: Plan, manifests: Manifests) -> list[str]:
    """For each member of a reserved, placed cache that ModelMesh serves, why it would not be
    loaded into the cache's runtime; empty where every one would."""
    runtimes = {(r["metadata"].get("namespace", "default"), r["metadata"]["name"]): r
                for r in manifests.kind("ServingRuntime")}
    services = {s["metadata"]["name"]: s for s in manifests.kind("InferenceService")}
    problems = []
    for cache in plan.held_caches("modelmesh"):
        for member in cache.members:
            service = services.get(member)
            if service is None:
                problems.append(f"{member}: no InferenceService for {cache.name}'s "
                                "ModelMesh runtime to load")
            elif not modelmesh_mode(service):
                problems.append(f"{member}: its InferenceService is not in ModelMesh mode "
                                "(serving.kserve.io/deploymentMode: ModelMesh), so "
                                f"{cache.name} never loads it")
            elif (why := _runtime_problem(service, runtimes, cache.workload)) is not None:
                problems.append(f"{member}: ModelMesh would not load it into "
                                f"{cache.name}: {why}")
    return problems
