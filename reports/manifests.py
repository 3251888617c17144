"""Kubernetes manifests that enforce a plan, built as data and dumped as plain YAML.

Per model a Deployment (or a KServe InferenceService) pinned to its pool by the labels its
NodePool sets, requesting the GPU resource its pool's sharing mode advertises, with a
PodDisruptionBudget when it has several replicas; per reserved lazy cache its servers, which
hold its members instead: a KServe ModelMesh ServingRuntime with an InferenceService per member
(`reports.modelmesh`) or Triton with explicit model control (`reports.cache_server`); per pool
Karpenter NodePools and NodeOverlays (`reports.karpenter`); for the GPU Operator one
device-plugin and one MIG-manager ConfigMap and a ClusterPolicy patch
(`reports.gpu_operator`); for the cluster a PriorityClass per priority and a Namespace per
team.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from planner.money import decimal
from planner.planfile import LazyCachePlan, ModelPlan, Plan, PoolPlan
from planner.registry.kubernetes import pool_label, tolerations
from planner.rules import modelmesh as mm_rules
from reports import cache_server, dra, gpu_operator, karpenter, modelmesh, observability
from reports.engine_flags import HEALTH_PATH, engine_args
from reports.gpu_operator import gpu_resource
from reports.karpenter import CAPACITY_TYPE_LABEL, node_ceiling
from reports.metrics import ENGINES, model_selector, request_rate
from reports.rollout import rollout

MANAGED_BY = {"app.kubernetes.io/managed-by": "placement-planner"}
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
KSERVE_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
KSERVE_RAW = "RawDeployment"
KSERVE_SERVERLESS = "Serverless"
KEDA_RATE_WINDOW = "2m"  # the rate() window of a KEDA trigger's query: four 30 s scrapes


class _PlainDumper(yaml.SafeDumper):
    """Writes every value out in full: no `&id001` anchors where two fields share a dict."""

    def ignore_aliases(self, data: object) -> bool:
        return True


class _FastPlainDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """`_PlainDumper` on libyaml's emitter, about ten times faster, which a plan of thousands
    of models needs (a file or two per model). It writes the same text, except that it folds
    long double-quoted scalars at other points: the GPU Operator's ConfigMaps, whose values
    are YAML text in such scalars, keep `_PlainDumper`."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _domain(plan: Plan) -> str:
    return plan.metadata.label_domain


def pool_selector(plan: Plan, pool: PoolPlan) -> dict[str, str]:
    """The node labels a pod of `pool` selects: labels the pool's NodePools set, nothing that
    appears only after a node joins (Karpenter could not tell which NodePool provides it)."""
    return {**pool.labels, pool_label(_domain(plan)): pool.name}


def capacity_selector(pool: PoolPlan, model: ModelPlan) -> dict[str, str]:
    """Where the pool's NodePools offer spot and on-demand nodes, on-demand for a model the
    plan keeps on on-demand nodes (`PoolPlan.capacity_type_of`); nothing otherwise."""
    wanted = pool.capacity_type_of(model.name)
    return {} if wanted is None else {CAPACITY_TYPE_LABEL: wanted}


def cache_capacity_selector(pool: PoolPlan, cache: LazyCachePlan) -> dict[str, str]:
    """`capacity_selector` for a lazy cache's servers."""
    wanted = pool.capacity_type_of(cache.name)
    return {} if wanted is None else {CAPACITY_TYPE_LABEL: wanted}


def namespace(plan: Plan, team: str) -> str:
    return f"{plan.metadata.namespace_prefix}{team}"


def model_namespace(plan: Plan, model: ModelPlan, pool: PoolPlan) -> str:
    """The team's namespace, or under DRA the pool's where its GPUs are shared through claims
    (`reports.dra`)."""
    return dra.pool_namespace(plan, pool) if dra.pins(plan, pool) else namespace(plan, model.team)


def _dump(documents: list[dict], dumper: type = _FastPlainDumper) -> str:
    return yaml.dump_all(documents, Dumper=dumper, sort_keys=False, width=100)


def _pod_spec(plan: Plan, model: ModelPlan, pool: PoolPlan, container_name: str,
              slot: dra.Slot | None = None) -> dict:
    limits = {"max_concurrency": model.limits.max_concurrency,
              "queue_limit": model.limits.queue_limit, "timeout_ms": model.limits.timeout_ms}
    resources: dict[str, Any] = {
        "requests": {"cpu": f"{model.serving.cpu_milli}m",
                     "memory": f"{model.serving.host_memory_mib}Mi"},
        "limits": {"memory": f"{model.serving.host_memory_mib}Mi"},
    }
    spec: dict = {}
    gpu = gpu_resource(model, pool)
    if gpu is None:
        pass  # a CPU-only pod asks for CPU and memory alone
    elif dra.uses_dra(plan):
        spec["resourceClaims"], resources["claims"] = dra.pod_claims(model, slot)
    else:
        resources["requests"][gpu[0]] = str(gpu[1])
        resources["limits"][gpu[0]] = str(gpu[1])
    container = {
        "name": container_name,
        "image": model.serving.image,
        "ports": [{"name": "http1", "containerPort": model.serving.port}],
        "env": [{"name": key.upper(), "value": str(value)} for key, value in limits.items()],
        "resources": resources,
        "readinessProbe": {"tcpSocket": {"port": model.serving.port}, "periodSeconds": 5,
                           "failureThreshold": 3},
    }
    if model.llm is not None:
        container["args"] = engine_args(model)
        container["readinessProbe"] = {
            "httpGet": {"path": HEALTH_PATH, "port": model.serving.port}, "periodSeconds": 5,
            "failureThreshold": 3}
    spec |= {
        "priorityClassName": model.priority,
        "nodeSelector": {**pool_selector(plan, pool), **capacity_selector(pool, model)},
        "tolerations": tolerations(pool.taints),
        "containers": [container],
    }
    if model.llm is not None and model.llm.tensor_parallel > 1:
        # Tensor-parallel workers exchange tensors through shared memory (NCCL); a
        # container's /dev/shm is 64 MiB unless a memory-backed volume replaces it.
        container["volumeMounts"] = [{"name": "dshm", "mountPath": "/dev/shm"}]
        spec["volumes"] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    spec.update(node_rules(plan, model, pool))
    return spec


def node_rules(plan: Plan, model: ModelPlan, pool: PoolPlan) -> dict:
    """The pod fields that make the scheduler (and Karpenter, which simulates it) hold the
    plan's node rules: the spread cap and the node-scope conflicts.

    A cap of one replica per node is a required pod anti-affinity against the model's own pods
    on `kubernetes.io/hostname`. A larger cap k is a topology spread constraint with
    `maxSkew: k` and `minDomains` above the number of nodes the pool can ever have. The
    scheduler admits a pod on a node when `count on the node + 1 - global minimum <= maxSkew`,
    and the global minimum is the least count over the eligible nodes (those matching the
    pod's node selector), "or zero if the number of eligible domains is less than minDomains"
    (Kubernetes, Pod Topology Spread Constraints). No more nodes than the NodePools' node
    limits ever match the pool's selector, so the global minimum is always 0 and the test
    reads `count + 1 <= k`: a hard cap per node, whatever the other nodes hold. A `maxSkew`
    alone bounds only the difference between nodes (one eligible node takes every replica).

    The optional zone spread (`spread.zone_max_skew`) is a plain topology spread constraint on
    `topology.kubernetes.io/zone`, a label Karpenter knows before a node exists.

    Node-scope conflicts are a required pod anti-affinity against the other models' pods in
    every namespace (teams have namespaces of their own); the scheduler checks anti-affinity
    both ways, so the pod that arrives second is kept off the node whichever side it is.
    """
    name_label = "app.kubernetes.io/name"
    anti: list[dict] = []
    fields: dict = {}
    cap = model.max_replicas_per_node
    if cap == 1:
        anti.append({"labelSelector": {"matchLabels": {name_label: model.name}},
                     "topologyKey": HOSTNAME})
    elif cap is not None:
        fields["topologySpreadConstraints"] = [{
            "maxSkew": cap, "minDomains": node_ceiling(pool) + 1, "topologyKey": HOSTNAME,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {name_label: model.name}},
        }]
    if model.zone_max_skew is not None:
        fields.setdefault("topologySpreadConstraints", []).append({
            "maxSkew": model.zone_max_skew, "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {name_label: model.name}},
        })
    if model.apart_on_node:
        anti.append({"labelSelector": {
            "matchLabels": dict(MANAGED_BY),
            "matchExpressions": [{"key": name_label, "operator": "In",
                                  "values": list(model.apart_on_node)}]},
            "namespaceSelector": {}, "topologyKey": HOSTNAME})
    if anti:
        fields["affinity"] = {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": anti}}
    return fields


def _metadata(plan: Plan, model: ModelPlan) -> tuple[dict, dict]:
    labels = {"app.kubernetes.io/name": model.name, **MANAGED_BY,
              f"{_domain(plan)}/team": model.team, f"{_domain(plan)}/pool": model.pool,
              **model.labels}
    annotations = {f"{_domain(plan)}/max-concurrency": str(model.limits.max_concurrency),
                   f"{_domain(plan)}/queue-limit": str(model.limits.queue_limit),
                   f"{_domain(plan)}/timeout-ms": str(model.limits.timeout_ms),
                   f"{_domain(plan)}/loading": model.loading,
                   # one pod's share of the model's cost
                   f"{_domain(plan)}/cost-per-hour":
                       f"{decimal(model.cost_per_hour) / model.replicas:.4f}"}
    return labels, annotations


def knative_features(plan: Plan) -> list[str]:
    """The Knative feature flags (ConfigMap `config-features` in `knative-serving`) that
    Serverless predictors of this plan need: Knative refuses these pod fields by default."""
    pools = {p.name: p for p in plan.pools}
    features = ["kubernetes.podspec-nodeselector", "kubernetes.podspec-priorityclassname"]
    if any(pools[m.pool].taints for m in plan.models):
        features.append("kubernetes.podspec-tolerations")
    rules = [node_rules(plan, m, pools[m.pool]) for m in plan.models]
    if any("affinity" in r for r in rules):
        features.append("kubernetes.podspec-affinity")
    if any("topologySpreadConstraints" in r for r in rules):
        features.append("kubernetes.podspec-topologyspreadconstraints")
    return features


def _strategy(plan: Plan, model: ModelPlan) -> dict:
    """A rolling update the pool has room for (`reports.rollout`)."""
    plan_of = rollout(plan, model)
    return {"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": plan_of.max_surge,
                              "maxUnavailable": plan_of.max_unavailable}}


def deployment(plan: Plan, model: ModelPlan, pool: PoolPlan,
               slot: dra.Slot | None = None) -> dict:
    """The model's Deployment; under DRA with a `slot`, the one of its replicas planned on
    that GPU or slice (a pod template names one claim request)."""
    labels, annotations = _metadata(plan, model)
    name, replicas = model.name, model.replicas
    selector = {"app.kubernetes.io/name": model.name}
    if slot is not None:
        name, replicas = f"{model.name}-{dra.slot_value(slot)}", slot.replicas
        selector[dra.slot_label(plan)] = dra.slot_value(slot)
        labels[dra.slot_label(plan)] = dra.slot_value(slot)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": model_namespace(plan, model, pool),
                     "labels": labels, "annotations": annotations},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": _strategy(plan, model),
            "template": {"metadata": {"labels": dict(labels), "annotations": dict(annotations)},
                         "spec": _pod_spec(plan, model, pool, "server", slot)},
        },
    }


def _run_spec(plan: Plan, model: ModelPlan, pool: PoolPlan, labels: dict, annotations: dict,
              slot: dra.Slot | None) -> dict:
    """A Job's spec for one run: its pods are the planned replicas, each started once and
    given its index (`JOB_COMPLETION_INDEX`, its shard of the run's work), placed as a
    Deployment's pods would be, restarted in place on failure."""
    replicas = model.replicas if slot is None else slot.replicas
    pod = _pod_spec(plan, model, pool, "worker", slot)
    for container in pod["containers"]:
        container.pop("readinessProbe", None)  # nothing routes requests to a run's pods
    pod["restartPolicy"] = "OnFailure"
    return {"completions": replicas, "parallelism": replicas, "completionMode": "Indexed",
            "template": {"metadata": {"labels": dict(labels),
                                      "annotations": dict(annotations)},
                         "spec": pod}}


def batch_run(plan: Plan, model: ModelPlan, pool: PoolPlan,
              slot: dra.Slot | None = None) -> dict:
    """A batch model's runs: a CronJob on its schedule (a run is skipped, never overlapped,
    while the last one runs), or a Job that runs once; under DRA with a `slot`, the one of its
    replicas planned on that GPU or slice."""
    assert model.batch is not None
    labels, annotations = _metadata(plan, model)
    name = model.name
    if slot is not None:
        name = f"{model.name}-{dra.slot_value(slot)}"
        labels[dra.slot_label(plan)] = dra.slot_value(slot)
    metadata = {"name": name, "namespace": model_namespace(plan, model, pool),
                "labels": labels, "annotations": annotations}
    job = _run_spec(plan, model, pool, labels, annotations, slot)
    if model.batch.schedule is None:
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job}
    spec: dict = {"schedule": model.batch.schedule}
    if model.batch.time_zone is not None:
        spec["timeZone"] = model.batch.time_zone
    spec |= {"concurrencyPolicy": "Forbid",
             "jobTemplate": {"metadata": {"labels": dict(labels)}, "spec": job}}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata, "spec": spec}


def inference_service(plan: Plan, model: ModelPlan, pool: PoolPlan,
                      mode: str = KSERVE_RAW) -> dict:
    """A KServe InferenceService in `mode`: RawDeployment (a Deployment KServe manages, with the
    same rollout strategy) or Serverless (a Knative Service, which scales lazy models to zero
    and needs the Knative feature flags `knative_features` lists)."""
    labels, annotations = _metadata(plan, model)
    annotations[KSERVE_MODE_ANNOTATION] = mode
    lazy = model.loading == "lazy"
    predictor: dict = {
        # A raw Deployment does not scale to zero: KServe raises minReplicas below 1 to 1.
        "minReplicas": (0 if mode == KSERVE_SERVERLESS else 1) if lazy else model.replicas,
        "maxReplicas": model.replicas,
        "containerConcurrency": model.limits.max_concurrency,
        "timeout": math.ceil(model.limits.timeout_ms / 1000),
    }
    if mode == KSERVE_RAW:
        predictor["deploymentStrategy"] = _strategy(plan, model)
    predictor.update(_pod_spec(plan, model, pool, "kserve-container"))
    return {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": model.name, "namespace": model_namespace(plan, model, pool),
                     "labels": labels, "annotations": annotations},
        "spec": {"predictor": predictor},
    }


def disruption_budget(plan: Plan, model: ModelPlan, pool: PoolPlan) -> dict:
    """At most one of the model's pods evicted at a time, across all its Deployments."""
    return {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": model.name, "namespace": model_namespace(plan, model, pool),
                     "labels": {"app.kubernetes.io/name": model.name, **MANAGED_BY}},
        "spec": {"maxUnavailable": 1,
                 "selector": {"matchLabels": {"app.kubernetes.io/name": model.name}}},
    }


def scaled_object(plan: Plan, model: ModelPlan) -> dict:
    """The model's KEDA ScaledObject (`autoscaler: keda`): the HorizontalPodAutoscaler's
    range and target, on a Prometheus trigger. The query is the model's request rate as its
    serving engine counts it (`reports.metrics`, the series its PodMonitor scrapes); KEDA
    divides it by `threshold` per replica, as the HPA it manages does with an AverageValue."""
    scaling = model.autoscaling
    assert scaling is not None and scaling.prometheus_url is not None
    engine = ENGINES[model.serving.engine or ""]
    query = request_rate(engine, model_selector(model.name), KEDA_RATE_WINDOW)
    assert query is not None  # the registry refuses `keda` for an engine without one
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": model.name, "namespace": namespace(plan, model.team),
                     "labels": {"app.kubernetes.io/name": model.name, **MANAGED_BY}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "name": model.name},
            "minReplicaCount": scaling.min_replicas, "maxReplicaCount": scaling.max_replicas,
            "triggers": [{"type": "prometheus", "metricType": "AverageValue", "metadata": {
                "serverAddress": scaling.prometheus_url, "query": query,
                # a plain decimal (KEDA parses a float64): the rate is rounded to 0.001
                "threshold": f"{scaling.target_per_replica:.3f}".rstrip("0").rstrip(".")}}],
        },
    }


def autoscaler(plan: Plan, model: ModelPlan) -> dict | None:
    """The model's HorizontalPodAutoscaler (autoscaling/v2): between the mean's and the peak's
    replicas, each pod kept at the peak's request rate per planned replica; or its KEDA
    ScaledObject where the registry asks for one."""
    scaling = model.autoscaling
    if scaling is None:
        return None
    if scaling.by == "keda":
        return scaled_object(plan, model)
    target = f"{round(scaling.target_per_replica * 1000)}m"  # a quantity, in thousandths
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": model.name, "namespace": namespace(plan, model.team),
                     "labels": {"app.kubernetes.io/name": model.name, **MANAGED_BY}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "name": model.name},
            "minReplicas": scaling.min_replicas, "maxReplicas": scaling.max_replicas,
            "metrics": [{"type": "Pods", "pods": {
                "metric": {"name": scaling.metric},
                "target": {"type": "AverageValue", "averageValue": target}}}],
        },
    }


def cluster_objects(plan: Plan) -> list[dict]:
    classes = [{
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": name, "labels": dict(MANAGED_BY)},
        "value": pc.value, "preemptionPolicy": pc.preemption, "globalDefault": False,
        "description": pc.description or f"{name} models",
    } for name, pc in plan.priority_classes.items()]
    teams = sorted({m.team for m in plan.models} | {u.team for u in plan.unplaced})
    namespaces: list[dict]
    namespaces = [{"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": namespace(plan, team),
                                "labels": {**MANAGED_BY, f"{_domain(plan)}/team": team}}}
                  for team in teams]
    known = {namespace(plan, team) for team in teams}
    namespaces += [{"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name, "labels": {**MANAGED_BY,
                                                          f"{_domain(plan)}/pool": pool.name}}}
                   for pool in plan.pools
                   if (dra.pins(plan, pool) and pool.nodes or pool.held_caches())
                   and (name := dra.pool_namespace(plan, pool)) not in known]
    # the ModelMesh controller serves only the namespaces labelled for it
    meshed = {dra.pool_namespace(plan, p) for p in plan.pools
              if p.held_caches("modelmesh")}
    for document in namespaces:
        if document["metadata"]["name"] in meshed:
            document["metadata"]["labels"][mm_rules.NAMESPACE_LABEL] = "true"
    return classes + namespaces


def _workloads(plan: Plan, model: ModelPlan, pool: PoolPlan, target: str,
               kserve_mode: str) -> list[dict]:
    """The model's workload: one Deployment or InferenceService (a batch model's CronJob or
    Job); under DRA one per planned GPU or slice, or beside whole GPUs the template of their
    claims."""
    workload = deployment if model.batch is None else batch_run
    if target == "kserve" and model.batch is None:
        return [inference_service(plan, model, pool, kserve_mode)]
    if not dra.uses_dra(plan) or model.gpus_per_replica == 0:  # a CPU pod claims nothing
        return [workload(plan, model, pool)]
    if not dra.pins(plan, pool):
        return [dra.whole_gpu_template(model, model_namespace(plan, model, pool), MANAGED_BY),
                workload(plan, model, pool)]
    return [workload(plan, model, pool, slot) for slot in dra.slots(pool, model)]


def render_manifests(plan: Plan, target: str = "deployment",
                     kserve_mode: str = KSERVE_RAW) -> dict[str, str]:
    """Manifest files by relative path under the output folder."""
    pools = {p.name: p for p in plan.pools}
    if target == "kserve" and dra.uses_dra(plan):
        raise ValueError("KServe has one pod template per model; DRA claims need one per GPU")
    gpu = [] if dra.uses_dra(plan) else [gpu_operator.device_plugin_config(plan, MANAGED_BY)]
    mig = gpu_operator.mig_parted_config(plan, MANAGED_BY)
    if mig is not None:
        gpu.append(mig)
    files = {
        "manifests/gpu-operator/clusterpolicy-patch.yaml":
            _dump([gpu_operator.cluster_policy_patch(plan)]),
        "manifests/cluster.yaml": _dump(cluster_objects(plan)),
    }
    if gpu:
        files["manifests/gpu-operator/configmaps.yaml"] = _dump(gpu, _PlainDumper)
    for pool_name, claims in dra.claim_objects(plan, MANAGED_BY).items():
        files[f"manifests/claims/{pool_name}.yaml"] = _dump(claims)
    for pool in plan.pools:
        if pool.nodes:
            files[f"manifests/pools/{pool.name}.yaml"] = _dump(
                karpenter.pool_objects(pool, pool_selector(plan, pool), MANAGED_BY,
                                       overlays=not dra.uses_dra(plan)))
    for pool in plan.pools:
        servers_namespace = dra.pool_namespace(plan, pool)
        for cache in pool.held_caches("triton"):
            selector = {**pool_selector(plan, pool), **cache_capacity_selector(pool, cache)}
            files[f"manifests/caches/{cache.workload}.yaml"] = _dump(cache_server.server_objects(
                plan, cache, pool, selector, MANAGED_BY))
            files[f"manifests/monitoring/{cache.workload}.yaml"] = _dump(
                [observability.service_monitor(cache, pool, servers_namespace, MANAGED_BY)])
        for cache in pool.held_caches("modelmesh"):
            selector = {**pool_selector(plan, pool), **cache_capacity_selector(pool, cache)}
            files[f"manifests/caches/{cache.workload}.yaml"] = _dump(modelmesh.runtime_objects(
                plan, cache, pool, selector, MANAGED_BY))
            files[f"manifests/monitoring/{cache.workload}.yaml"] = _dump(
                [observability.runtime_pod_monitor(cache, pool, servers_namespace, MANAGED_BY,
                                                   modelmesh.ISVC_MODEL_ID)])
    for model in plan.models:
        pool = pools[model.pool]
        if model.cache is not None:  # loaded into its cache's servers: no pods of its own
            files[f"manifests/monitoring/{model.name}.yaml"] = _dump(
                observability.monitoring_objects(model, pool, namespace(plan, model.team),
                                                 MANAGED_BY, target))
            continue
        documents = _workloads(plan, model, pool, target, kserve_mode)
        if model.replicas > 1 and model.batch is None:  # a run's failed pods are retried
            documents.append(disruption_budget(plan, model, pool))
        if target != "kserve" and (scaler := autoscaler(plan, model)) is not None \
                and any(d["kind"] == "Deployment" and d["metadata"]["name"] == model.name
                        for d in documents):
            # KServe scales its InferenceServices itself; a model of per-GPU Deployments
            # (DRA) has no one Deployment to scale.
            documents.append(scaler)
        files[f"manifests/models/{model.name}.yaml"] = _dump(documents)
        files[f"manifests/monitoring/{model.name}.yaml"] = _dump(observability.monitoring_objects(
            model, pool, model_namespace(plan, model, pool), MANAGED_BY, target,
            per_gpu=dra.pins(plan, pool)))
    return files
