"""A model's request rate over a day, from its registry traffic: the diurnal curve.

The registry states a peak and a mean rate. The day's curve is a raised cosine with its top at
`PEAK_HOUR` (UTC) and its mean at `mean_rps`: rate(h) = mean x (1 + a cos(2 pi (h - PEAK_HOUR)
/ 24)), a = min(1, peak / mean - 1), taken at the middle of each hour. The amplitude is capped at
one so that the night never goes negative; a peak above twice the mean is then a burst within
the busiest hours, which replicas are sized for but the day's shape does not repeat. Without a
mean rate the model runs at its peak all day. The curve feeds the lazy cache's size (how many
lazily loaded models are active at once in the busiest hour) and the traffic simulation.
"""

from __future__ import annotations

import math

from planner.schemas import Traffic

HOURS_PER_DAY = 24
PEAK_HOUR = 14  # the busiest hour, UTC: early afternoon in Europe, morning in the Americas


def hourly_rps(traffic: Traffic) -> tuple[float, ...]:
    """The mean request rate of each hour of the day, 0 to 23 UTC."""
    if traffic.mean_rps is None:
        return (traffic.peak_rps,) * HOURS_PER_DAY
    mean = traffic.mean_rps
    amplitude = min(1.0, max(0.0, traffic.peak_rps / mean - 1)) if mean > 0 else 0.0
    return tuple(
        max(0.0, mean * (1 + amplitude * math.cos(
            2 * math.pi * (hour + 0.5 - PEAK_HOUR) / HOURS_PER_DAY)))
        for hour in range(HOURS_PER_DAY))
