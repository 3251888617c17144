"""Latency and throughput of a serving function, closed loop and open loop.

`serve(n)` runs one batch of `n` requests and returns when their answers are ready, the way a
dynamically batching model server runs the requests in flight. Closed loop at concurrency `c`
keeps `c` requests in flight: every batch holds `c`, and each request's latency is the batch's
duration. Open loop sends requests at Poisson arrival times and measures each latency from its
scheduled send time, so a slow server cannot hide its queue (no coordinated omission).
Nothing here imports torch.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Serve = Callable[[int], None]


@dataclass(frozen=True)
class Window:
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class LevelResult:
    concurrency: int
    window: Window  # over the last windows together
    stable: bool
    windows: int


def _percentiles(latencies_s: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(np.array(latencies_s) * 1000, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def _agree(windows: list[Window], tolerance: float) -> bool:
    for values in ([w.throughput_rps for w in windows], [w.p99_ms for w in windows]):
        if max(values) > (1 + tolerance) * min(values):
            return False
    return True


def closed_loop(serve: Serve, concurrency: int, *, window_s: float = 1.0, max_windows: int = 10,
                tolerance: float = 0.10, clock=time.perf_counter) -> LevelResult:
    """Warm up with at least `concurrency` requests, then measure windows until the last three
    agree within `tolerance` on throughput and p99, or `max_windows` have run."""
    served = 0
    while served < max(concurrency, 2):
        serve(concurrency)
        served += concurrency
    windows: list[Window] = []
    all_latencies: list[list[float]] = []
    while len(windows) < max_windows:
        latencies, started = [], clock()
        while True:
            begin = clock()
            serve(concurrency)
            latencies.append(clock() - begin)
            if clock() - started >= window_s and len(latencies) >= 3:
                break
        elapsed = clock() - started
        p50, p95, p99 = _percentiles(latencies)
        windows.append(Window(concurrency * len(latencies) / elapsed, p50, p95, p99))
        all_latencies.append(latencies)
        if len(windows) >= 3 and _agree(windows[-3:], tolerance):
            break
    stable = len(windows) >= 3 and _agree(windows[-3:], tolerance)
    recent = [x for batch in all_latencies[-3:] for x in batch]
    p50, p95, p99 = _percentiles(recent)
    throughput = float(np.mean([w.throughput_rps for w in windows[-3:]]))
    return LevelResult(concurrency, Window(throughput, p50, p95, p99), stable, len(windows))


def open_loop(serve: Serve, rate_rps: float, *, duration_s: float, max_batch: int,
              seed: int = 0, clock=time.perf_counter, sleep=time.sleep) -> Window:
    """Serve Poisson arrivals at `rate_rps` for `duration_s`, batching what has arrived (up to
    `max_batch`); latency runs from each request's scheduled arrival to its answer."""
    rng = random.Random(seed)
    arrivals, t = [], 0.0
    while t < duration_s:
        t += rng.expovariate(rate_rps)
        arrivals.append(t)
    start = clock()
    latencies, next_index = [], 0
    while next_index < len(arrivals):
        now = clock() - start
        if arrivals[next_index] > now:
            sleep(max(arrivals[next_index] - now, 1e-6))  # never a sleep too short to count
            continue
        batch_end = next_index
        while batch_end < len(arrivals) and arrivals[batch_end] <= now and \
                batch_end - next_index < max_batch:
            batch_end += 1
        serve(batch_end - next_index)
        done = clock() - start
        latencies += [done - arrivals[i] for i in range(next_index, batch_end)]
        next_index = batch_end
    elapsed = clock() - start
    p50, p95, p99 = _percentiles(latencies)
    return Window(len(latencies) / max(elapsed, 1e-9), p50, p95, p99)


def rate_search(serve: Serve, slo_p99_ms: float, *, low_rps: float, high_rps: float,
                duration_s: float, max_batch: int, steps: int = 8,
                seed: int = 0) -> tuple[float, Window | None]:
    """The highest Poisson rate whose p99 meets the SLO, by binary search between the bounds;
    (0, None) when even `low_rps` misses it."""
    best: tuple[float, Window | None] = (0.0, None)
    low, high = low_rps, high_rps
    for step in range(steps):
        rate = low if step == 0 else math.sqrt(low * high)
        window = open_loop(serve, rate, duration_s=duration_s, max_batch=max_batch,
                           seed=seed + step)
        if window.p99_ms <= slo_p99_ms:
            best = (rate, window)
            low = rate
            if step == 0:
                continue
        elif step == 0:
            return best
        else:
            high = rate
        if high / low < 1.05:
            break
    return best
