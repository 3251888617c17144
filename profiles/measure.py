"""Latency and throughput of a serving function, closed loop and open loop.

`serve(n)` runs one batch of `n` requests and returns when their answers are ready, the way a
dynamically batching model server runs the requests in flight. Closed loop at concurrency `c`
keeps `c` requests in flight: every batch holds `c`, and each request's latency is the batch's
duration. Open loop sends requests at Poisson arrival times and measures each latency from its
scheduled send time, so a slow server cannot hide its queue (no coordinated omission).
A `Budget` bounds a whole run: each level, and the rate search, gets an equal share of what is
left, and its windows are shortened to fit three in that share. Nothing here imports torch.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

Serve = Callable[[int], None]
Clock = Callable[[], float]
Measured = TypeVar("Measured")

MIN_WINDOWS = 3  # windows that must agree for a point to be stable


@dataclass(frozen=True)
class Window:
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int = 0  # answers the percentiles are over


@dataclass(frozen=True)
class LevelResult:
    concurrency: int
    window: Window  # over the last windows together
    stable: bool
    windows: int
    cut_short: bool = False  # the budget ran out before the windows agreed
    window_s: float = 0.0  # the window length used, shortened to fit the budget


@dataclass(frozen=True)
class Budget:
    """A deadline on `clock` for a whole run, shared out among the parts still to measure so
    that a slow early level cannot starve the later ones; without `deadline` it never ends."""

    clock: Clock = time.perf_counter
    deadline: float | None = None

    @classmethod
    def of(cls, seconds: float | None, clock: Clock = time.perf_counter) -> Budget:
        return cls(clock, None if seconds is None else clock() + seconds)

    def share_s(self, parts: int) -> float | None:
        """An equal share of the time left among `parts` parts (0 once spent); None: unbounded."""
        if self.deadline is None:
            return None
        return max(self.deadline - self.clock(), 0.0) / max(parts, 1)


def _percentiles(latencies_s: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(np.array(latencies_s) * 1000, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def _agree(windows: list[Window], tolerance: float) -> bool:
    for values in ([w.throughput_rps for w in windows], [w.p99_ms for w in windows]):
        if max(values) > (1 + tolerance) * min(values):
            return False
    return True


@dataclass(frozen=True)
class Windows(Generic[Measured]):
    """Windows run at one level, with what each measured, and whether the last agreed."""

    windows: list[Window]
    measured: list[Measured]
    stable: bool  # the last MIN_WINDOWS agree
    out_of_time: bool  # ended because no time was left for another window


def until_stable(run_window: Callable[[int], tuple[Window, Measured] | None], *,
                 max_windows: int, tolerance: float) -> Windows[Measured]:
    """Windows run one after another until the last `MIN_WINDOWS` agree within `tolerance` on
    throughput and p99, `max_windows` have run, or `run_window` (given the windows run so far)
    returns None, having no time for another. Every profiler measures a level this way."""
    windows: list[Window] = []
    measured: list[Measured] = []
    out_of_time = False
    while len(windows) < max_windows:
        found = run_window(len(windows))
        if found is None:
            out_of_time = True
            break
        windows.append(found[0])
        measured.append(found[1])
        if len(windows) >= MIN_WINDOWS and _agree(windows[-MIN_WINDOWS:], tolerance):
            break
    stable = len(windows) >= MIN_WINDOWS and _agree(windows[-MIN_WINDOWS:], tolerance)
    return Windows(windows, measured, stable, out_of_time)


def closed_loop(serve: Serve, concurrency: int, *, window_s: float = 1.0, max_windows: int = 10,
                tolerance: float = 0.10, clock: Clock = time.perf_counter,
                budget_s: float | None = None) -> LevelResult:
    """Warm up with at least `concurrency` requests, then measure windows until the last three
    agree within `tolerance` on throughput and p99, or `max_windows` have run.

    With `budget_s` the level, warm-up included, ends by that time and is then `cut_short`
    unless its windows agreed: windows are shortened so that three fit in what the warm-up
    left (stability cannot be judged on fewer), the last one is cut to end on time, and none
    starts with less than half a window left. A window still runs at least three batches, so
    a level overruns its share by at most those."""
    started_level = clock()
    served = 0
    while served < max(concurrency, 2):
        serve(concurrency)
        served += concurrency
    deadline = None if budget_s is None else started_level + budget_s
    if deadline is not None:
        window_s = min(window_s, max(deadline - clock(), 0.0) / MIN_WINDOWS)
    length_s = window_s

    def run_window(run: int) -> tuple[Window, list[float]] | None:
        length = length_s
        if deadline is not None:
            left_s = deadline - clock()
            if run and left_s < length_s / 2:
                return None  # too little left for a window worth comparing
            length = min(length_s, max(left_s, 0.0))  # the last one ends on time
        latencies, started = [], clock()
        while True:
            begin = clock()
            serve(concurrency)
            latencies.append(clock() - begin)
            if clock() - started >= length and len(latencies) >= 3:
                break
        elapsed = clock() - started
        p50, p95, p99 = _percentiles(latencies)
        return Window(concurrency * len(latencies) / elapsed, p50, p95, p99,
                      concurrency * len(latencies)), latencies

    found = until_stable(run_window, max_windows=max_windows, tolerance=tolerance)
    recent = [x for batch in found.measured[-MIN_WINDOWS:] for x in batch]
    p50, p95, p99 = _percentiles(recent)
    throughput = float(np.mean([w.throughput_rps for w in found.windows[-MIN_WINDOWS:]]))
    return LevelResult(concurrency, Window(throughput, p50, p95, p99, concurrency * len(recent)),
                       found.stable, len(found.windows),
                       cut_short=found.out_of_time and not found.stable, window_s=window_s)


def closed_loop_levels(serve: Serve, levels: tuple[int, ...], *, window_s: float,
                       max_windows: int, tolerance: float, budget: Budget,
                       parts_after: int = 0) -> Iterator[LevelResult]:
    """Each level in turn, each given an equal share of the budget left among the levels still
    to run and `parts_after` later parts (the rate search)."""
    for index, level in enumerate(levels):
        yield closed_loop(serve, level, window_s=window_s, max_windows=max_windows,
                          tolerance=tolerance, clock=budget.clock,
                          budget_s=budget.share_s(len(levels) - index + parts_after))


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
    return Window(len(latencies) / max(elapsed, 1e-9), p50, p95, p99, len(latencies))


@dataclass(frozen=True)
class RateResult:
    """What a rate search found, and enough of what it tried to explain a zero."""

    rate_rps: float  # the highest rate that met the SLO; 0 when none did
    window: Window | None  # the window at that rate
    first_rps: float  # the first, lowest rate tried
    first: Window | None  # its window; None when the budget allowed no step
    steps: int
    cut_short: bool  # the budget ended the search before it converged


def rate_search(serve: Serve, slo_p99_ms: float, *, low_rps: float, high_rps: float,
                duration_s: float, max_batch: int, steps: int = 8, seed: int = 0,
                budget: Budget | None = None, sleep: Callable[[float], None] = time.sleep
                ) -> RateResult:
    """The highest Poisson rate whose p99 meets the SLO, by binary search between the bounds;
    rate 0 when even `low_rps` misses it. Under a `budget` (whose clock the loops run on) each
    step lasts at most an equal share of the time left among the steps still allowed."""
    budget = budget or Budget()
    best: tuple[float, Window | None] = (0.0, None)
    first: Window | None = None
    low, high = low_rps, high_rps
    taken, cut_short = 0, False
    for step in range(steps):
        share = budget.share_s(steps - step)
        if share is not None and share <= 0:
            cut_short = True
            break
        rate = low if step == 0 else math.sqrt(low * high)
        window = open_loop(serve, rate, duration_s=min(duration_s, share or duration_s),
                           max_batch=max_batch, seed=seed + step, clock=budget.clock,
                           sleep=sleep)
        taken += 1
        first = first or window
        if window.p99_ms <= slo_p99_ms:
            best = (rate, window)
            low = rate
            if step == 0:
                continue
        elif step == 0:
            break
        else:
            high = rate
        if high / low < 1.05:
            break
    return RateResult(best[0], best[1], low_rps, first, taken, cut_short)
