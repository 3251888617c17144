"""Profiling models one fresh process each, and turning the numbers into profile files."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

from profiles.errors import ProfileError
from profiles.schema import (
    Environment,
    GenerationPoint,
    Memory,
    Point,
    Profile,
    RateSearch,
    Settings,
)
from profiles.worker import Request, measure


def run_isolated(request: Request) -> dict:
    """Measure in a freshly spawned process; its errors come back as ProfileError."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        try:
            return pool.submit(measure, replace(request, started_at=time.time())).result()
        except BrokenProcessPool:
            raise ProfileError(f"{request.model}: the profiling process died (out of memory?)"
                               ) from None


def to_profile(model: str, gpu_type: str, request: Request, raw: dict) -> Profile:
    points = [Point(**{k: v for k, v in p.items() if k != "windows"}) for p in raw["points"]]
    rate = None
    if raw.get("rate_search") is not None:
        found = raw["rate_search"]
        rate = RateSearch(slo_p99_ms=request.slo_p99_ms, rate_rps=found["rate_rps"],
                          p50_ms=found.get("p50_ms"), p95_ms=found.get("p95_ms"),
                          p99_ms=found.get("p99_ms"), cut_short=found["cut_short"],
                          reason=found["reason"])
    return Profile(
        model=model, gpu_type=gpu_type, method="measured",
        basis="" if raw["memory"]["kind"] == "device" else
        "measured on CPU: memory is the process's peak host RSS, not GPU memory",
        environment=Environment(**raw["environment"]),
        settings=Settings(concurrency=list(request.concurrency), window_s=request.window_s,
                          max_windows=request.max_windows,
                          stability_tolerance=request.tolerance,
                          warmup_requests=max(request.concurrency), mode="closed-loop",
                          cpu_threads=None if raw["memory"]["kind"] == "device"
                          else request.cpu_threads, max_time_s=request.max_time_s,
                          **_generation_settings(request)),
        memory=Memory(**raw["memory"]), load_time_s=raw["load_time_s"],
        warnings=raw["warnings"], rate_search=rate, points=points,
        generation=[GenerationPoint(**g) for g in raw.get("generation", [])])


def _generation_settings(request: Request) -> dict:
    if request.generation is None:
        return {}
    return {"input_tokens": request.generation[0], "output_tokens": request.generation[1],
            "rounds": request.rounds}
