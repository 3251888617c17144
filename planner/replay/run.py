"""The traffic replay of a plan: its lazy caches, their members' load times from the
registry's profiles, arrivals synthetic or from a trace, each cache under each policy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from planner.errors import InputError, Problem
from planner.planfile import LazyCachePlan, Plan
from planner.registry.fleet import Fleet
from planner.replay.arrivals import SECONDS_PER_HOUR, read_trace, synthetic
from planner.replay.cache import CachedModel, CacheOutcome, replay
from planner.traffic import hourly_rps


@dataclass(frozen=True)
class Replay:
    seed: int | None  # None for a trace
    hours: float
    outcomes: tuple[CacheOutcome, ...]
    ignored_requests: int  # requests in a trace to models outside every cache


def members_of(plan: Plan, fleet: Fleet, cache: LazyCachePlan, gpu_type: str
             ) -> list[CachedModel]:
    members = []
    for name in cache.members:
        model = plan.model(name)
        profile = fleet.profiles.get((name, gpu_type))
        if model is None or name not in fleet.models:
            raise InputError(Problem(None, None, None, f"the plan's cache {cache.name} holds "
                                     f"{name}, which the registry does not have; plan the "
                                     "registry again"))
        if profile is None or profile.load_time_s is None:
            raise InputError(Problem(None, None, None, f"{name} has no load_time_s in its "
                                     f"{gpu_type} profile, so its loads cannot be replayed; "
                                     "profile it again"))
        members.append(CachedModel(name, model.replicas * model.memory_mib, profile.load_time_s))
    return members


def replay_plan(plan: Plan, fleet: Fleet, *, policies: tuple[str, ...], hours: float | None,
                seed: int, trace: Path | None, thrash_window_s: float) -> Replay:
    """Every cache of `plan` (placed, or sized without being reserved) replayed under every
    policy in `policies`."""
    caches = [(pool.device, cache) for pool in plan.pools for cache in pool.caches
              if cache.placed or not cache.reserved]
    members = {cache.name: members_of(plan, fleet, cache, gpu_type) for gpu_type, cache in caches}
    names = [m.name for group in members.values() for m in group]
    ignored = 0
    if trace is not None:
        arrivals = read_trace(trace)
        ignored = sum(len(t) for name, t in arrivals.items() if name not in names)
        last = max((float(t[-1]) for t in arrivals.values() if len(t)), default=0.0)
        span_hours = hours if hours is not None else max(1, math.ceil(last / SECONDS_PER_HOUR))
        horizon = span_hours * SECONDS_PER_HOUR
        arrivals = {name: t[t < horizon] for name, t in arrivals.items()}
        used_seed = None
    else:
        span_hours = hours if hours is not None else 24
        arrivals = synthetic({name: hourly_rps(fleet.models[name].traffic) for name in names},
                             math.ceil(span_hours), seed)
        horizon = span_hours * SECONDS_PER_HOUR
        arrivals = {name: t[t < horizon] for name, t in arrivals.items()}
        used_seed = seed
    outcomes = tuple(
        replay(cache.name, members[cache.name], cache.servers * cache.memory_mib,
               {m.name: arrivals.get(m.name, np.empty(0)) for m in members[cache.name]},
               policy, horizon, thrash_window_s)
        for _, cache in caches for policy in policies)
    return Replay(seed=used_seed, hours=span_hours, outcomes=outcomes, ignored_requests=ignored)
