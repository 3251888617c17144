"""Per model, the objects that watch it run as planned: a PodMonitor that scrapes its pods and
a PrometheusRule whose alerts compare what they measure with the registry's numbers. A model
loaded into a lazy cache's Triton servers has no pods of its own: those servers have a
ServiceMonitor (a PodMonitor under KServe ModelMesh), and the model's alerts read its series
there (Triton labels them `model`).

Every threshold is the model's own: the p99 latency against `slo.p99_ms`, the queue against
`limits.queue_limit`, the GPU memory against the plan's memory per GPU of a replica. The p99
objective leaves an error budget of 1 % of requests; failed requests burn it, and the error
alerts are the multi-window burn-rate alerts of the Google SRE workbook (page at 14.4 times the
budget over 1 h and 5 m, ticket at 6 times over 6 h and 30 m). The latency alerts use the same
window pairs on the p99 itself: the engines' histogram buckets do not fall on each model's
objective, so the share of requests slower than it cannot be counted.
"""

from __future__ import annotations

from typing import Final

from planner.planfile import LazyCachePlan, ModelPlan, PoolPlan
from reports import metrics
from reports.metrics import ENGINES, Engine

MONITORING_API: Final = "monitoring.coreos.com/v1"
LATENCY_OBJECTIVE: Final = 0.99  # a p99 objective: 99 % of requests within it
ERROR_BUDGET: Final = round(1 - LATENCY_OBJECTIVE, 6)
# (severity, long window, short window, burn rate): the SRE workbook's page and ticket pairs
BURN_WINDOWS: Final = (("critical", "1h", "5m", 14.4), ("warning", "6h", "30m", 6.0))
COLD_STARTS_PER_HOUR_MAX: Final = 6  # a lazy model loaded more often than every 10 min thrashes
METRICS_PATH: Final = "/metrics"
SCRAPE_INTERVAL: Final = "30s"
SERVING_PORT_NAME: Final = "http1"  # the container port every workload declares
KSERVE_ISVC_LABEL: Final = "serving.kserve.io/inferenceservice"


def join_labels(model: ModelPlan) -> dict[str, str]:
    """The labels that join a model's metrics, alerts and cost lines."""
    return {"model": model.name, "team": model.team, "pool": model.pool,
            "priority": model.priority}


def metrics_port(model: ModelPlan) -> int:
    """The port the model's metrics are served on: its engine's own, else the serving port."""
    engine = ENGINES.get(model.serving.engine or "")
    if engine is not None and engine.metrics_port is not None:
        return engine.metrics_port
    return model.serving.port


def owns_its_gpus(model: ModelPlan, pool: PoolPlan) -> bool:
    """Whether the DCGM exporter's memory of the model's GPUs is the model's alone: whole GPUs,
    a MIG slice or an exclusive pool. On a time-sliced or MPS GPU every pod sees the GPU's
    total, so only the pool dashboard compares it with the plan."""
    return model.whole_gpus or model.mig_slice is not None or pool.sharing == "exclusive"


def pod_monitor(model: ModelPlan, namespace: str, common: dict[str, str],
                target: str) -> dict:
    # a batch model's Jobs are its own whatever the target
    selector = {KSERVE_ISVC_LABEL: model.name} if target == "kserve" and model.batch is None \
        else {"app.kubernetes.io/name": model.name}
    relabelings: list[dict] = [{"action": "replace", "targetLabel": key, "replacement": value}
                   for key, value in join_labels(model).items()]
    port = metrics_port(model)
    if port != model.serving.port:
        # The pod declares only its serving port (Knative accepts one port per container):
        # its target is found by that port and scraped at the engine's metrics port.
        relabelings.append({"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_ip"],
                            "regex": "(.+)", "targetLabel": "__address__",
                            "replacement": f"${{1}}:{port}"})
    return {
        "apiVersion": MONITORING_API, "kind": "PodMonitor",
        "metadata": {"name": model.name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": model.name, **common}},
        "spec": {
            "selector": {"matchLabels": selector},
            "podMetricsEndpoints": [{"port": SERVING_PORT_NAME, "path": METRICS_PATH,
                                     "interval": SCRAPE_INTERVAL,
                                     "relabelings": relabelings}],
        },
    }


def _alert(name: str, expr: str, severity: str, model: ModelPlan, summary: str,
           duration: str | None = None) -> dict:
    rule: dict = {"alert": name, "expr": expr}
    if duration:
        rule["for"] = duration
    rule["labels"] = {"severity": severity, **join_labels(model)}
    rule["annotations"] = {"summary": summary}
    return rule


def _latency_alerts(engine: Engine, model: ModelPlan) -> list[dict]:
    if model.slo_p99_ms is None:
        return []
    slo_s = model.slo_p99_ms / 1000
    selector = metrics.model_selector(model.name)
    alerts = []
    for severity, long, short, _ in BURN_WINDOWS:
        over_long = metrics.p99_seconds(engine, selector, long)
        over_short = metrics.p99_seconds(engine, selector, short)
        if over_long is None or over_short is None:
            return []
        alerts.append(_alert(
            "ModelLatencyAboveSLO", f"({over_long} > {slo_s:g}) and ({over_short} > {slo_s:g})",
            severity, model, f"{model.name}: p99 latency above its objective of "
            f"{model.slo_p99_ms:g} ms over {long} and {short}"))
    return alerts


def _error_alerts(engine: Engine, model: ModelPlan) -> list[dict]:
    selector = metrics.model_selector(model.name)
    alerts = []
    for severity, long, short, burn in BURN_WINDOWS:
        over_long = metrics.error_ratio(engine, selector, long)
        over_short = metrics.error_ratio(engine, selector, short)
        if over_long is None or over_short is None:
            return []
        threshold = f"({burn:g} * {ERROR_BUDGET:g})"
        alerts.append(_alert(
            "ModelErrorBudgetBurn", f"({over_long} > {threshold}) and ({over_short} > "
            f"{threshold})", severity, model, f"{model.name}: failed requests burn the "
            f"{ERROR_BUDGET:.0%} error budget {burn:g} times too fast over {long} and {short}"))
    return alerts


def _queue_alerts(engine: Engine, model: ModelPlan) -> list[dict]:
    depth = metrics.queue_depth(engine, metrics.model_selector(model.name))
    if depth is None or model.limits.queue_limit == 0:
        return []
    return [_alert("ModelQueueSaturated", f"{depth} >= {model.limits.queue_limit}", "warning",
                   model, f"{model.name}: a replica's queue is at its limit of "
                   f"{model.limits.queue_limit} requests; more are refused", "5m")]


def _gpu_memory_alerts(model: ModelPlan, pool: PoolPlan, namespace: str,
                       pods: str) -> list[dict]:
    if not owns_its_gpus(model, pool):
        return []
    gpus = metrics.gpu_selector(namespace, pods)
    return [_alert("ModelGpuMemoryAbovePlan",
                   f"max by (pod, gpu) ({metrics.DCGM_MEMORY_USED_MIB}{{{gpus}}}) > "
                   f"{model.memory_mib}", "warning", model,
                   f"{model.name}: a GPU holds more than the {model.memory_mib} MiB planned "
                   "per GPU of a replica; its neighbours' headroom shrinks", "10m")]


def _cold_start_alerts(model: ModelPlan, namespace: str, pod_regex: str) -> list[dict]:
    """A model in a cache's Triton servers: Triton's `nv_model_load_duration_secs`, a gauge
    set to each load's duration while the model is loaded, so its changes over an hour count
    the reloads (`metrics.loads`). A model with pods of its own: kube-state-metrics'
    `kube_pod_created` (a pod's creation time), pods created in the last hour, each one a
    cold start."""
    if model.loading != "lazy":
        return []
    if model.cache is not None:
        loads = metrics.loads(metrics.model_selector(model.name), "1h")
    else:
        pods = metrics.gpu_selector(namespace, pod_regex)
        loads = f"count(max_over_time(kube_pod_created{{{pods}}}[1h]) > time() - 3600)"
    return [_alert("ModelColdStartsTooFrequent",
                   f"{loads} > {COLD_STARTS_PER_HOUR_MAX}", "warning", model,
                   f"{model.name}: loaded more than {COLD_STARTS_PER_HOUR_MAX} times in an "
                   "hour; keep it warm or give its cache more room")]


def scheduled(model: ModelPlan) -> bool:
    """Whether the model's pods are those of the Jobs a CronJob starts."""
    return model.batch is not None and model.batch.schedule is not None


def prometheus_rule(model: ModelPlan, pool: PoolPlan, namespace: str,
                    common: dict[str, str], per_gpu: bool = False) -> dict:
    """`per_gpu`: the model runs as a Deployment per planned GPU (`metrics.pod_pattern`)."""
    engine = ENGINES.get(model.serving.engine or "")
    pods = metrics.pod_pattern(model.name, per_gpu, scheduled(model))
    rules = (_gpu_memory_alerts(model, pool, namespace, pods)
             + _cold_start_alerts(model, namespace, pods))
    if engine is not None:
        rules = (_latency_alerts(engine, model) + _error_alerts(engine, model)
                 + _queue_alerts(engine, model) + rules)
    return {
        "apiVersion": MONITORING_API, "kind": "PrometheusRule",
        "metadata": {"name": model.name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": model.name, **common}},
        "spec": {"groups": [{"name": f"{model.name}.slo", "rules": rules}]},
    }


def monitoring_objects(model: ModelPlan, pool: PoolPlan, namespace: str,
                       common: dict[str, str], target: str,
                       per_gpu: bool = False) -> list[dict]:
    """The model's PodMonitor and PrometheusRule (the rule only when it has an alert); a
    model in a cache's servers has no pods to monitor (`service_monitor` scrapes them)."""
    documents = [] if model.cache is not None else [pod_monitor(model, namespace, common,
                                                                target)]
    rule = prometheus_rule(model, pool, namespace, common, per_gpu)
    if rule["spec"]["groups"][0]["rules"]:
        documents.append(rule)
    return documents


def service_monitor(cache: LazyCachePlan, pool: PoolPlan, namespace: str,
                    common: dict[str, str]) -> dict:
    """A ServiceMonitor of a cache's servers (`reports.cache_server`): their Service's metrics
    port, each series labelled with the pool and cache. Triton's own `model` label names the
    member a series is of, so no `model` is set here (a target label would rename it)."""
    return _cache_monitor("ServiceMonitor", "endpoints", cache, pool, namespace, common, {})


def runtime_pod_monitor(cache: LazyCachePlan, pool: PoolPlan, namespace: str,
                        common: dict[str, str], model_id: str) -> dict:
    """A PodMonitor of a cache's KServe ModelMesh pods (`reports.modelmesh`): Triton's metrics
    port, each series labelled with the pool and cache. ModelMesh loads a member into Triton
    under an id of its own (`model_id`, a regex whose group is the member's name); the
    member's name replaces it in `model`, so the members' alerts select their series as they
    do under Triton's own servers."""
    renamed = {"metricRelabelings": [{"action": "replace", "sourceLabels": ["model"],
                                      "regex": model_id, "targetLabel": "model",
                                      "replacement": "${1}"}]}
    return _cache_monitor("PodMonitor", "podMetricsEndpoints", cache, pool, namespace, common,
                          renamed)


def _cache_monitor(kind: str, endpoints: str, cache: LazyCachePlan, pool: PoolPlan,
                   namespace: str, common: dict[str, str], extra: dict) -> dict:
    """A ServiceMonitor or PodMonitor of a cache's server pods, selected by the cache's
    workload name, their metrics port's series labelled with the pool and cache."""
    relabelings = [{"action": "replace", "targetLabel": "pool", "replacement": pool.name},
                   {"action": "replace", "targetLabel": "cache", "replacement": cache.workload}]
    return {
        "apiVersion": MONITORING_API, "kind": kind,
        "metadata": {"name": cache.workload, "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": cache.workload, **common}},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": cache.workload}},
            endpoints: [{"port": "metrics", "path": METRICS_PATH, "interval": SCRAPE_INTERVAL,
                         "relabelings": relabelings, **extra}],
        },
    }
