"""One lazy cache replayed request by request: loads, waits, evictions, thrash.

The cache holds models up to its memory (its servers' memory together). A request to a model
that is not loaded starts its load, evicting loaded models by the policy until it fits, and
every request to that model until the load ends waits for it. A model still loading is never
evicted: a load that finds nothing else to evict starts when the earliest load in progress
ends, evicting that model. Requests to loaded models change nothing but the policy's
bookkeeping, so the replay steps from miss to miss, reading the hits between them from the
sorted arrival times (`numpy.searchsorted`); a day of many requests takes as many steps as the
cache has misses.

Policies: `lru` evicts the model whose last request is oldest; `lfu` the one with the fewest
requests so far in the replay (ties: the least recently used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

POLICIES = ("lru", "lfu")
P99_RANK = 0.99


@dataclass(frozen=True)
class CachedModel:
    name: str
    footprint_mib: int  # what the model takes in the cache while loaded: replicas x memory
    load_s: float


@dataclass(frozen=True)
class ModelOutcome:
    name: str
    requests: int
    loads: int
    waited: int  # requests that arrived while their model was loading
    p99_added_ms: float  # the 99th percentile (nearest rank) of the wait over all requests
    evictions: int
    thrash: int  # loads within the thrash window after the model's own eviction


@dataclass(frozen=True)
class CacheOutcome:
    cache: str
    policy: str
    capacity_mib: int
    horizon_s: float
    memory_mib_s: float  # the integral of the loaded models' memory over the replay
    models: tuple[ModelOutcome, ...]

    @property
    def memory_mib_hours(self) -> float:
        return self.memory_mib_s / 3600

    @property
    def occupancy(self) -> float:
        """The share of the cache's memory-time the loaded models used."""
        return self.memory_mib_s / (self.capacity_mib * self.horizon_s) \
            if self.capacity_mib and self.horizon_s else 0.0


def nearest_rank_p99(waits_s: np.ndarray, requests: int) -> float:
    """The 99th percentile of every request's wait (zero for the unwaited), nearest rank."""
    if requests == 0:
        return 0.0
    index = math.ceil(P99_RANK * requests) - 1
    unwaited = requests - len(waits_s)
    if index < unwaited:
        return 0.0
    return float(np.sort(waits_s)[index - unwaited])


@dataclass
class _Loaded:
    start_s: float
    ready_s: float


def replay(cache: str, models: list[CachedModel], capacity_mib: int,
           arrivals: dict[str, np.ndarray], policy: str, horizon_s: float,
           thrash_window_s: float) -> CacheOutcome:
    """Replay `arrivals` (sorted seconds per model) against one cache under `policy`."""
    if policy not in POLICIES:
        raise ValueError(f"unknown eviction policy {policy!r}; known: {', '.join(POLICIES)}")
    times = [np.asarray(arrivals.get(m.name, np.empty(0)), dtype=float) for m in models]
    count = len(models)
    next_index = [0] * count  # the next request of a model not loaded
    loaded: dict[int, _Loaded] = {}
    used_mib = 0
    loads, waited, evictions, thrash = [0] * count, [0] * count, [0] * count, [0] * count
    waits: list[list[np.ndarray]] = [[] for _ in models]
    evicted_at = [-math.inf] * count
    memory_mib_s = 0.0

    def last_use(k: int, now: float) -> float:
        seen = int(np.searchsorted(times[k], now, side="right"))
        return max(float(times[k][seen - 1]) if seen else -math.inf, loaded[k].start_s)

    def victim(now: float) -> int:
        ready = [k for k in loaded if loaded[k].ready_s <= now]
        if policy == "lru":
            return min(ready, key=lambda k: (last_use(k, now), k))
        return min(ready, key=lambda k: (int(np.searchsorted(times[k], now, side="right")),
                                          last_use(k, now), k))

    def evict(k: int, now: float) -> None:
        nonlocal used_mib, memory_mib_s
        memory_mib_s += models[k].footprint_mib * (now - loaded[k].start_s)
        used_mib -= models[k].footprint_mib
        evictions[k] += 1
        evicted_at[k] = now
        del loaded[k]
        next_index[k] = int(np.searchsorted(times[k], now, side="right"))

    while True:
        misses = [(float(times[i][next_index[i]]), i) for i in range(count)
                  if i not in loaded and next_index[i] < len(times[i])]
        if not misses:
            break
        arrival, i = min(misses)
        start = arrival
        while used_mib + models[i].footprint_mib > capacity_mib and loaded:
            if not any(entry.ready_s <= start for entry in loaded.values()):
                start = min(entry.ready_s for entry in loaded.values())
            evict(victim(start), start)
        ready = start + models[i].load_s
        loaded[i] = _Loaded(start, ready)
        used_mib += models[i].footprint_mib
        loads[i] += 1
        if arrival - evicted_at[i] <= thrash_window_s:
            thrash[i] += 1
        until = int(np.searchsorted(times[i], ready, side="left"))
        waits[i].append(ready - times[i][next_index[i]:until])
        waited[i] += until - next_index[i]
        next_index[i] = len(times[i])  # loaded: its requests are hits until evicted
    for k, entry in loaded.items():
        memory_mib_s += models[k].footprint_mib * max(0.0, horizon_s - entry.start_s)
    outcomes = tuple(
        ModelOutcome(name=m.name, requests=len(times[i]), loads=loads[i], waited=waited[i],
                     p99_added_ms=1000 * nearest_rank_p99(
                         np.concatenate(waits[i]) if waits[i] else np.empty(0), len(times[i])),
                     evictions=evictions[i], thrash=thrash[i])
        for i, m in enumerate(models))
    return CacheOutcome(cache=cache, policy=policy, capacity_mib=capacity_mib,
                        horizon_s=horizon_s, memory_mib_s=memory_mib_s, models=outcomes)
