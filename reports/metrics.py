"""What each serving engine exposes to Prometheus, as PromQL built for one model.

The alerts (`reports.observability`) and dashboards (`reports.dashboards`) ask this module for
a model's request rate, p99 latency, error ratio and queue depth; the metric names are the ones
the engines publish (documented in docs/observability.md):

- Triton: `nv_inference_request_success` / `_failure` (counters),
  `nv_inference_pending_request_count` (gauge), and the p99 of
  `nv_inference_request_summary_us` (a summary, published with
  `--metrics-config summary_latencies=true`), scraped from its metrics port 8002, and
  `nv_model_load_duration_secs` (a gauge per loaded model: its load's duration) for the loads
  of a lazy cache's members;
- vLLM: `vllm:e2e_request_latency_seconds` (histogram), `vllm:request_success_total` by
  `finished_reason` (`abort` counts as an error), `vllm:num_requests_waiting` (gauge), on the
  serving port;
- KServe's Python model server: `request_predict_seconds` (histogram) on the serving port; it
  counts no errors and has no queue gauge, so those signals are absent;
- every GPU: the DCGM exporter's `DCGM_FI_DEV_FB_USED` (MiB) and `DCGM_FI_DEV_GPU_UTIL` (%),
  labelled with the pod and namespace that hold the device.

Series scraped from a model's pods carry the labels `model`, `team`, `pool` and `priority`
(set by its PodMonitor), which join them with the plan's cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

TRITON_METRICS_PORT: Final = 8002
TRITON_LOAD_SECONDS: Final = "nv_model_load_duration_secs"  # a gauge per loaded model
DCGM_MEMORY_USED_MIB: Final = "DCGM_FI_DEV_FB_USED"
DCGM_GPU_UTIL_PERCENT: Final = "DCGM_FI_DEV_GPU_UTIL"


@dataclass(frozen=True)
class Engine:
    """One engine's metrics; `None` where the engine publishes no such metric."""

    name: str
    metrics_port: int | None  # None: the serving port
    latency_histogram_s: str | None = None  # a histogram in seconds
    latency_summary_us: str | None = None  # a summary in microseconds, with quantile="0.99"
    success_counter: str | None = None
    failure_counter: str | None = None
    finished_counter: str | None = None  # counts finished requests by `finished_reason`
    queue_gauge: str | None = None


ENGINES: Final = {
    "triton": Engine("triton", TRITON_METRICS_PORT,
                     latency_summary_us="nv_inference_request_summary_us",
                     success_counter="nv_inference_request_success",
                     failure_counter="nv_inference_request_failure",
                     queue_gauge="nv_inference_pending_request_count"),
    "vllm": Engine("vllm", None, latency_histogram_s="vllm:e2e_request_latency_seconds",
                   finished_counter="vllm:request_success_total",
                   queue_gauge="vllm:num_requests_waiting"),
    "kserve": Engine("kserve", None, latency_histogram_s="request_predict_seconds"),
}


def _metric(name: str, selector: str, extra: str = "") -> str:
    """`name{selector, extra}`."""
    labels = ", ".join(part for part in (selector, extra) if part)
    return f"{name}{{{labels}}}"


def model_selector(model: str) -> str:
    """The labels every series scraped from `model`'s pods carries (its PodMonitor sets them)."""
    return f'model="{model}"'


def p99_seconds(engine: Engine, selector: str, window: str, by: str = "") -> str | None:
    """The p99 request latency over `window`, in seconds; None if the engine has none."""
    group = f" by ({by})" if by else ""
    if engine.latency_histogram_s:
        bucket = _metric(f"{engine.latency_histogram_s}_bucket", selector)
        return (f"histogram_quantile(0.99, sum by (le{', ' + by if by else ''}) "
                f"(rate({bucket}[{window}])))")
    if engine.latency_summary_us:
        summary = _metric(engine.latency_summary_us, selector, 'quantile="0.99"')
        return f"max{group} (avg_over_time({summary}[{window}])) / 1e6"
    return None


def request_rate(engine: Engine, selector: str, window: str, by: str = "") -> str | None:
    """Requests per second over `window`."""
    group = f" by ({by})" if by else ""
    if engine.success_counter and engine.failure_counter:
        return (f"sum{group} (rate({_metric(engine.success_counter, selector)}[{window}]) "
                f"+ rate({_metric(engine.failure_counter, selector)}[{window}]))")
    if engine.finished_counter:
        return f"sum{group} (rate({_metric(engine.finished_counter, selector)}[{window}]))"
    if engine.latency_histogram_s:
        return f"sum{group} (rate({_metric(engine.latency_histogram_s + '_count', selector)}" \
               f"[{window}]))"
    return None


def error_ratio(engine: Engine, selector: str, window: str) -> str | None:
    """Failed (or aborted) requests as a fraction of all requests over `window`."""
    if engine.success_counter and engine.failure_counter:
        failed = f"rate({_metric(engine.failure_counter, selector)}[{window}])"
        ok = f"rate({_metric(engine.success_counter, selector)}[{window}])"
        return f"sum({failed}) / (sum({ok}) + sum({failed}))"
    if engine.finished_counter:
        aborted = _metric(engine.finished_counter, selector, 'finished_reason="abort"')
        every = _metric(engine.finished_counter, selector)
        return f"sum(rate({aborted}[{window}])) / sum(rate({every}[{window}]))"
    return None


def loads(selector: str, window: str) -> str:
    """How often Triton loaded a model over `window`: `nv_model_load_duration_secs` is set to
    each load's measured duration and dropped on unload, so every reload changes it (summed
    over the servers that load it)."""
    return f"sum(changes({_metric(TRITON_LOAD_SECONDS, selector)}[{window}]))"


def queue_depth(engine: Engine, selector: str, by: str = "pod") -> str | None:
    """Requests waiting in one replica's queue (the largest over `by`)."""
    if engine.queue_gauge:
        return f"max by ({by}) ({_metric(engine.queue_gauge, selector)})"
    return None


def pod_pattern(model: str, per_gpu: bool = False, scheduled: bool = False) -> str:
    """A regular expression for the names of `model`'s pods: a Deployment's
    (`<model>-<hash>-<id>`) or a KServe predictor's, raw or serverless; `per_gpu`: those of
    the Deployments of each planned GPU or slice under DRA (`<model>-<node>-gpu-<i>[-slice-<j>]`,
    `reports.dra`). An indexed Job's pods (`<job>-<index>-<id>`) match the same; `scheduled`:
    also those of the Jobs a CronJob starts (`<cronjob>-<scheduled minute>-<index>-<id>`)."""
    run = "(-[0-9]+)?" if scheduled else ""
    if per_gpu:
        return f"{model}-[0-9]+-gpu-[0-9]+(-slice-[0-9]+)?{run}-[a-z0-9]+-[a-z0-9]+"
    return f"{model}(-predictor(-[0-9]+-deployment)?)?{run}-[a-z0-9]+-[a-z0-9]+"


def gpu_selector(namespace: str, pod_regex: str) -> str:
    """The DCGM exporter's series of the GPUs that pods matching `pod_regex` hold."""
    return f'namespace="{namespace}", pod=~"{pod_regex}"'
