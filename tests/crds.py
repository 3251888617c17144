"""Validating custom resources against their vendored CRDs, the way the API server does for
structural schemas: unknown fields are refused unless the schema preserves them."""

from __future__ import annotations

import copy
import gzip
from functools import cache
from pathlib import Path

import jsonschema
import yaml

CRDS = Path(__file__).resolve().parent / "data" / "crds"
FILES = {
    ("karpenter.sh/v1", "NodePool"): "karpenter.sh_nodepools.yaml",
    ("karpenter.sh/v1alpha1", "NodeOverlay"): "karpenter.sh_nodeoverlays.yaml",
    ("nvidia.com/v1", "ClusterPolicy"): "nvidia.com_clusterpolicies.yaml",
    ("serving.kserve.io/v1beta1", "InferenceService"):
        "serving.kserve.io_inferenceservices.yaml.gz",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrules.yaml",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com_podmonitors.yaml",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitors.yaml",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): "serving.kserve.io_servingruntimes.yaml.gz",
}
#: The ServingRuntime CRD that ModelMesh Serving installs (`errors(..., crd=MODELMESH_RUNTIMES)`).
MODELMESH_RUNTIMES = "modelmesh-serving_servingruntimes.yaml.gz"


def _closed(schema: dict) -> dict:
    """`schema` with `additionalProperties: false` on every object that lists its properties
    and does not preserve unknown fields (the API server prunes or, strictly, refuses them)."""
    if isinstance(schema, dict):
        schema = {key: _closed(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_closed(item) for item in schema]
    return schema


def _read(name: str) -> dict:
    path = CRDS / name
    text = gzip.decompress(path.read_bytes()).decode() if name.endswith(".gz") \
        else path.read_text()
    return yaml.safe_load(text)


@cache
def validator(api_version: str, kind: str, crd_file: str | None = None
              ) -> jsonschema.Draft7Validator:
    crd = _read(crd_file or FILES[(api_version, kind)])
    version = api_version.rpartition("/")[2]
    [served] = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert served["served"], f"{kind} {version} is not served by the vendored CRD"
    return jsonschema.Draft7Validator(_closed(served["schema"]["openAPIV3Schema"]))


def errors(document: dict, crd: str | None = None) -> list[str]:
    """Every schema error of `document`, as `path: message`, against its vendored CRD (or the
    file `crd`)."""
    found = validator(document["apiVersion"], document["kind"], crd).iter_errors(document)
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in found)


def merge_patch(target: dict, patch: dict) -> dict:
    """RFC 7386 JSON merge patch, as `kubectl patch --type merge` applies it."""
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _without_nulls(value):
    """The API server drops null fields of a structural schema that are not nullable."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def cluster_policy_sample() -> dict:
    """The GPU Operator's sample ClusterPolicy, as the API server stores it."""
    return _without_nulls(yaml.safe_load((CRDS / "v1_clusterpolicy.sample.yaml").read_text()))
