"""A running server's measurements as a profile file, the one the planner reads.

Each concurrency level runs closed-loop windows (`profiles.endpoint`) until the last three
agree within the tolerance on throughput and p99, as the in-process profiler does; the point is
over those three windows together. After each level the server's device memory is read
(`profiles.server_memory`), and the point packs at that figure; the profile records the weakest
method any point needed. A streamed completions endpoint also gives each level's tokens: TTFT,
TPOT and output tokens per second, and the prefill rate where the server reports the prompt's
token count. Nothing here imports torch.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from profiles.endpoint import Answer, Endpoint, EndpointWindow, closed_loop_answers, window_of
from profiles.errors import ProfileError
from profiles.measure import MIN_WINDOWS, Window, until_stable
from profiles.schema import (
    CPU_DEVICE,
    MEMORY_METHODS,
    Environment,
    GenerationPoint,
    Memory,
    MemoryMethod,
    Point,
    Profile,
    Settings,
)
from profiles.server_memory import DeviceInfo, Reading


@dataclass(frozen=True)
class EndpointLevel:
    concurrency: int
    window: EndpointWindow  # over the last windows together
    stable: bool
    windows: int
    memory: Reading  # read after the level


def measure_level(endpoint: Endpoint, concurrency: int, *, window_s: float, max_windows: int,
                  tolerance: float, read_memory: Callable[[], Reading],
                  clock: Callable[[], float] = time.perf_counter) -> EndpointLevel:
    """Closed-loop windows at `concurrency` until the last three agree within `tolerance` on
    throughput and p99, or `max_windows` have run; then the server's memory."""

    def run_window(_run: int) -> tuple[Window, tuple[list[Answer], float]]:
        found, seconds = closed_loop_answers(endpoint, concurrency, duration_s=window_s,
                                             clock=clock)
        one = window_of(found, seconds)
        return (Window(one.throughput_rps, one.p50_ms, one.p95_ms, one.p99_ms, one.requests),
                (found, seconds))

    done = until_stable(run_window, max_windows=max_windows, tolerance=tolerance)
    recent = done.measured[-MIN_WINDOWS:]
    last = [a for found, _ in recent for a in found]
    return EndpointLevel(concurrency, window_of(last, sum(seconds for _, seconds in recent)),
                         done.stable, len(done.windows), read_memory())


def _point(level: EndpointLevel, max_concurrency: int) -> Point:
    w = level.window
    return Point(concurrency=level.concurrency, throughput_rps=round(w.throughput_rps, 3),
                 p50_ms=round(w.p50_ms, 3), p95_ms=round(w.p95_ms, 3), p99_ms=round(w.p99_ms, 3),
                 peak_memory_mib=round(level.memory.mib, 1), stable=level.stable,
                 beyond_limit=level.concurrency > max_concurrency)


def _generation(level: EndpointLevel) -> GenerationPoint | None:
    """The level's tokens, where the stream and the server's token counts give them all."""
    w = level.window
    if (w.ttft_p50_ms is None or w.ttft_p99_ms is None or w.tpot_p50_ms is None
            or w.tpot_p99_ms is None or not w.tokens_per_s or not w.prompt_tokens):
        return None
    return GenerationPoint(
        concurrency=level.concurrency, ttft_p50_ms=round(w.ttft_p50_ms, 3),
        ttft_p99_ms=round(w.ttft_p99_ms, 3), tpot_p50_ms=round(w.tpot_p50_ms, 3),
        tpot_p99_ms=round(w.tpot_p99_ms, 3),
        prefill_tokens_per_s=round(level.concurrency * w.prompt_tokens
                                   / (w.ttft_p50_ms / 1000), 1),
        decode_tokens_per_s=round(w.tokens_per_s, 1), peak_memory_mib=round(level.memory.mib, 1))


def endpoint_profile(model: str, gpu_type: str, endpoint: Endpoint,
                     levels: list[EndpointLevel], *, device: DeviceInfo | None,
                     window_s: float, max_windows: int, tolerance: float,
                     max_concurrency: int) -> Profile:
    """The profile of `model` on `gpu_type` from the levels measured through `endpoint`."""
    if not levels:
        raise ProfileError("no concurrency level was measured")
    methods = {level.memory.method for level in levels}
    weakest = max(methods, key=MEMORY_METHODS.index)
    warnings = []
    if weakest == "stated":
        warnings.append("memory stated with --memory-mib, not measured: no device was "
                        "readable by the profiler")
    generation = [g for level in levels if (g := _generation(level)) is not None]
    if endpoint.protocol == "openai" and len(generation) < len(levels):
        warnings.append("the server reported no prompt token count (stream_options."
                        "include_usage), so the profile has no generation points")
        generation = []
    host = gpu_type == CPU_DEVICE
    environment = Environment(
        backend="cuda" if device is not None else "server",
        device_name=device.name if device else "", device_uuid=device.uuid if device else "",
        driver_version=device.driver_version if device else "", host=platform.node(),
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return Profile(
        model=model, gpu_type=gpu_type, method="measured",
        basis=f"measured through the server at {endpoint.url} over {endpoint.protocol}, as its "
              "clients see it",
        environment=environment,
        settings=Settings(concurrency=[level.concurrency for level in levels],
                          window_s=window_s, max_windows=max_windows,
                          stability_tolerance=tolerance, warmup_requests=1,
                          mode="closed-loop", protocol=endpoint.protocol),
        memory=Memory(kind="host" if host else "device",
                      measured_by=cast(MemoryMethod, weakest)),
        warnings=warnings, points=[_point(level, max_concurrency) for level in levels],
        generation=generation)
