"""Wall time of `planner simulate-traffic`'s work on the demo: synthetic arrivals for the
demo's lazy caches, then each cache replayed under LRU and LFU.

    python scripts/bench_traffic.py [--days 1] [--seed 0]

Plans the demo with the greedy solver (not timed), then prints CSV
`phase,seconds,requests,cold_starts` on stdout: `arrivals` (numpy Poisson draws and sorting)
and one `replay <cache> <policy>` line each.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from planner.pipeline import SolverSettings, make_plan
from planner.registry.loader import load_registry
from planner.registry.locate import resolve_registry
from planner.replay.arrivals import synthetic
from planner.replay.cache import POLICIES, replay
from planner.replay.run import members_of
from planner.traffic import hourly_rps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    fleet = load_registry(resolve_registry(None)[0])
    plan = make_plan(fleet, SolverSettings(method="greedy"))
    caches = [(pool.gpu_type, c) for pool in plan.pools for c in pool.caches
              if c.placed or not c.reserved]
    members = {c.name: members_of(plan, fleet, c, gpu) for gpu, c in caches}
    hours = 24 * args.days
    start = time.perf_counter()
    arrivals = synthetic({m.name: hourly_rps(fleet.models[m.name].traffic)
                          for group in members.values() for m in group}, hours, args.seed)
    print("phase,seconds,requests,cold_starts")
    print(f"arrivals,{time.perf_counter() - start:.3f},"
          f"{sum(len(a) for a in arrivals.values())},")
    for _, cache in caches:
        for policy in POLICIES:
            start = time.perf_counter()
            outcome = replay(cache.name, members[cache.name], cache.servers * cache.memory_mib,
                             {m.name: arrivals.get(m.name, np.empty(0))
                              for m in members[cache.name]}, policy, hours * 3600.0, 300.0)
            print(f"replay {cache.name} {policy},{time.perf_counter() - start:.3f},"
                  f"{sum(m.requests for m in outcome.models)},"
                  f"{sum(m.loads for m in outcome.models)}")


if __name__ == "__main__":
    main()
