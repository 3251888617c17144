"""Request arrival times per model: synthetic Poisson traffic on the diurnal curve, or a trace.

Synthetic: each hour, a model's arrivals are a Poisson process at that hour's rate
(`planner.traffic.hourly_rps`, repeated day after day): a Poisson count, then that many
uniform times within the hour. Each model draws from a generator seeded by the seed and its
name, so the same seed gives the same arrivals, and adding a model changes no other's.

A trace is a CSV file with a header and two columns, `model` and `timestamp_s` (seconds from
the trace's start, any order).
"""

from __future__ import annotations

import csv
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np

from planner.errors import InputError, Problem
from planner.traffic import HOURS_PER_DAY

SECONDS_PER_HOUR = 3600
TRACE_COLUMNS = ("model", "timestamp_s")
MAX_TRACE_BYTES = 1024 * 1024 * 1024  # a trace of tens of millions of requests


def synthetic(hourly: dict[str, tuple[float, ...]], hours: int, seed: int
              ) -> dict[str, np.ndarray]:
    """Sorted arrival seconds per model over `hours`, from each model's hourly rates."""
    result = {}
    starts = np.arange(hours, dtype=float) * SECONDS_PER_HOUR
    for name, rates in hourly.items():
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        per_hour = np.array([rates[h % HOURS_PER_DAY] for h in range(hours)])
        counts = rng.poisson(per_hour * SECONDS_PER_HOUR)
        times = np.repeat(starts, counts) + rng.uniform(0, SECONDS_PER_HOUR, int(counts.sum()))
        result[name] = np.sort(times)
    return result


def read_trace(path: Path) -> dict[str, np.ndarray]:
    """Sorted arrival seconds per model from a CSV trace; every bad row is an InputError
    naming the file, the line and the column."""
    if not path.is_file():
        raise InputError(Problem(path, None, None, "no such trace file; pass a CSV file with "
                                 "the columns model,timestamp_s"))
    if path.stat().st_size > MAX_TRACE_BYTES:
        raise InputError(Problem(path, None, None, f"larger than {MAX_TRACE_BYTES:,} bytes; "
                                 "split the trace"))
    times: dict[str, list[float]] = defaultdict(list)
    problems = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != TRACE_COLUMNS:
            raise InputError(Problem(path, 1, None, f"the header must be "
                                     f"{','.join(TRACE_COLUMNS)}, found {header!r}"))
        for row in reader:
            line = reader.line_num
            if len(row) != len(TRACE_COLUMNS):
                problems.append(Problem(path, line, None, f"expected 2 columns "
                                        f"({','.join(TRACE_COLUMNS)}), found {len(row)}"))
                continue
            model, stamp = row[0].strip(), row[1].strip()
            try:
                seconds = float(stamp)
            except ValueError:
                seconds = float("nan")
            if not np.isfinite(seconds) or seconds < 0:
                problems.append(Problem(path, line, "timestamp_s", f"'{stamp}' is not a number "
                                        "of seconds from the trace's start (0 or more)"))
                continue
            times[model].append(seconds)
            if len(problems) >= 20:
                break
    if problems:
        raise InputError(problems)
    return {name: np.sort(np.array(values)) for name, values in times.items()}
