"""An upper bound on the GPU a cluster can allocate: an arc-flow linear relaxation.

Nodes with the same GPU count and capacity form a type. Per type, the GPUs are paths in an
arc-flow graph whose vertices are loads 0..GPU_MILLI (in steps of the common divisor of the
pod shares) and whose arcs add one pod's share; so no GPU is filled past its capacity, which is
what plain volume bounds miss (two 0.6-GPU pods never share a GPU). Pods are spread over the
types they fit, within each type's total CPU and memory. Every real placement is a feasible
point, so the LP optimum bounds the GPU milli any placement allocates. Its relaxation of the
"one node" rule for CPU, memory and multi-GPU pods is what keeps it loose, not the GPU level.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

from bench.cluster import GPU_MILLI, Cluster


def upper_bound_milli(cluster: Cluster) -> int:
    """The most GPU milli any placement allocates, rounded down."""
    from ortools.linear_solver import pywraplp

    types = Counter((n.gpus, n.capacity) for n in cluster.nodes)
    kinds = Counter((p.demand, p.gpus, p.gpu_milli) for p in cluster.pods if p.gpus)
    shares = sorted({milli for _, _, milli in kinds})
    if not shares:
        return 0
    step = math.gcd(GPU_MILLI, *shares)
    lp = pywraplp.Solver.CreateSolver("GLOP")
    infinity = lp.infinity()
    value = []
    spread = defaultdict(list)  # pod kind -> its variables over node types
    for (gpus, capacity), count in types.items():
        resources = defaultdict(list)
        share_use = defaultdict(list)  # share -> GPU slots it fills on this type
        for kind in kinds:
            demand, pod_gpus, milli = kind
            if pod_gpus > gpus or any(d > c for d, c in zip(demand, capacity, strict=True)):
                continue
            # No node of the type holds more of the kind than its own capacity allows.
            per_node = min([c // d for d, c in zip(demand, capacity, strict=True) if d]
                           + [gpus * (GPU_MILLI // milli if milli else gpus) // pod_gpus])
            var = lp.NumVar(0, float(per_node * count), "")
            spread[kind].append(var)
            value.append(pod_gpus * milli * var)
            share_use[milli].append(pod_gpus * var)
            for r, d in enumerate(demand):
                resources[r].append(d * var)
        for r, terms in resources.items():
            lp.Add(sum(terms) <= float(capacity[r] * count))
        if not gpus:
            continue
        arcs_out, arcs_in, by_share = defaultdict(list), defaultdict(list), defaultdict(list)
        for load in range(0, GPU_MILLI + 1, step):
            for milli in shares:
                if load + milli <= GPU_MILLI:
                    arc = lp.NumVar(0, infinity, "")
                    arcs_out[load].append(arc)
                    arcs_in[load + milli].append(arc)
                    by_share[milli].append(arc)
        for load in range(step, GPU_MILLI + 1, step):
            end = lp.NumVar(0, infinity, "")  # the GPU holds nothing more
            lp.Add(sum(arcs_in[load]) == sum(arcs_out[load]) + end)
        lp.Add(sum(arcs_out[0]) <= float(gpus * count))
        for milli in shares:
            lp.Add(sum(by_share[milli]) == sum(share_use[milli]))
    for kind, count in kinds.items():
        if spread[kind]:
            lp.Add(sum(spread[kind]) <= float(count))
    lp.Maximize(sum(value))
    if lp.Solve() != pywraplp.Solver.OPTIMAL:
        return sum(p.gpu_demand_milli for p in cluster.pods)
    return math.floor(lp.Objective().Value() + 1e-6)
