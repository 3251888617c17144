"""Loading: whether a model may be loaded on its first request (`lazy`), and what `auto` picks.

A lazily loaded model's first request after an idle spell waits for the load (the profile's
`load_time_s`) and is then served within the p99: if the two together exceed the request
timeout, that request fails, so `lazy` is refused. `auto` is lazy only where a cold start fits
the timeout and the model idles between requests longer than one load (mean_rps x load time
below one request), else warm; and warm where it would join no cache
(`planner.demand.lazy_cache.CachePlan.loading`). In a time-sliced pool lazily loaded models
share a cache (`planner.demand.lazy_cache`), sized here: it holds the models active at once in
the busiest hour, a model counting as active for a window after each of its requests.
"""

from __future__ import annotations

import math

from planner.schemas import ModelSpec
from profiles.schema import Profile


def cold_start_ms(model: ModelSpec, load_time_s: float) -> float:
    """A first request's latency after an idle spell: the load, then a p99 answer."""
    return load_time_s * 1000 + model.slo.p99_ms


def fastest_load_s(profiles: list[Profile]) -> float | None:
    """The shortest load any of the model's profiles measured; None when none did."""
    known = [p.load_time_s for p in profiles if p.load_time_s is not None]
    return min(known) if known else None


def lazy_problem(model: ModelSpec, load_time_s: float | None) -> str | None:
    """Why `lazy` cannot work for `model`, with the numbers; None when it can (or is unknown)."""
    if load_time_s is None or cold_start_ms(model, load_time_s) <= model.limits.timeout_ms:
        return None
    return (f"a cold start takes {load_time_s:g} s to load (load_time_s of its fastest profile) "
            f"plus the p99 of {model.slo.p99_ms:g} ms = {cold_start_ms(model, load_time_s):g} "
            f"ms, over timeout_ms {model.limits.timeout_ms}: its first request after an idle "
            "spell would time out; load it warm, or raise timeout_ms")


def auto_loading(model: ModelSpec, load_time_s: float | None) -> tuple[str, str]:
    """`auto`'s choice for `model` (`warm` or `lazy`) and the reason, for the plan."""
    if load_time_s is None:
        return "warm", "no load_time_s in its profile to judge a cold start"
    if lazy_problem(model, load_time_s):
        return "warm", (f"a cold start ({cold_start_ms(model, load_time_s):g} ms) would exceed "
                        f"timeout_ms {model.limits.timeout_ms}")
    mean = model.traffic.mean_rps
    if mean is None:
        return "warm", "no traffic.mean_rps to judge how long it idles"
    per_load = mean * load_time_s
    if per_load >= 1:
        return "warm", (f"busy: {per_load:.3g} requests arrive in one {load_time_s:g} s load "
                        f"at the mean of {mean:g} rps")
    return "lazy", (f"idle between requests: {per_load:.3g} requests arrive in one "
                    f"{load_time_s:g} s load at the mean of {mean:g} rps, and a cold start "
                    f"({cold_start_ms(model, load_time_s):g} ms) fits timeout_ms "
                    f"{model.limits.timeout_ms}")


def active_probability(rate_rps: float, window_s: float) -> float:
    """The chance that a model with Poisson arrivals at `rate_rps` had a request within the
    last `window_s`: that it counts as active (loaded) at a given moment."""
    return 1 - math.exp(-rate_rps * window_s)


def active_at_once(probabilities: list[float], overflow_probability: float) -> int:
    """The fewest cache slots that hold every active model but with `overflow_probability`.

    Models are active independently, each with its probability, so the count active follows
    a Poisson binomial distribution, computed exactly model by model (numpy, so that a pool of
    a thousand lazy models takes milliseconds).
    """
    import numpy as np  # here, not at the top: `planner validate` needs none of it

    distribution = np.zeros(len(probabilities) + 1)  # [n]: the chance that n are active
    distribution[0] = 1.0
    for count, p in enumerate(probabilities, start=1):
        distribution[1:count + 1] = (distribution[1:count + 1] * (1 - p)
                                     + distribution[:count] * p)
        distribution[0] *= 1 - p
    beyond = 1 - np.cumsum(distribution)  # [k]: the chance that more than k are active
    return int(np.argmax(beyond <= overflow_probability + 1e-12))
