"""Readers for the classic packing benchmark formats, as engine problems.

Each distinct item becomes one group whose count is its multiplicity, so identical items are
aggregated exactly as identical model replicas are.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from bench.cluster import Cluster, Node, Pod
from solvers.problem import Group, Option, Pool, Problem


def _single_pool(capacity: tuple[int, ...], items: Counter, max_bins: int) -> Problem:
    pool = Pool("bins", capacity, gpus_per_node=1, node_cost=1, max_nodes=max(max_bins, 1))
    groups = tuple(Group(f"item{i}", (Option("bins", size, count),))
                   for i, (size, count) in enumerate(sorted(items.items(), reverse=True)))
    dims = tuple(f"d{i}" for i in range(len(capacity)))
    return Problem(dims, (pool,), groups)


def read_bpp(path: Path) -> Problem:
    """BPPLIB text: n, capacity, then n weights (CRLF tolerated)."""
    numbers = [int(x) for x in path.read_text().split()]
    count, capacity, weights = numbers[0], numbers[1], numbers[2:]
    if len(weights) != count:
        raise ValueError(f"{path}: expected {count} weights, found {len(weights)}")
    return _single_pool((capacity,), Counter((w,) for w in weights), count)


def read_vbp(path: Path) -> Problem:
    """`.vbp`: dimensions, capacities, item types, then weights and demand per type."""
    numbers = [int(x) for x in path.read_text().split()]
    dims = numbers[0]
    capacity = tuple(numbers[1:1 + dims])
    types = numbers[1 + dims]
    items: Counter = Counter()
    rest = numbers[2 + dims:]
    for t in range(types):
        row = rest[t * (dims + 1):(t + 1) * (dims + 1)]
        items[tuple(row[:dims])] += row[dims]
    return _single_pool(capacity, items, sum(items.values()))


# openb QoS classes, highest first: best-effort pods are placed after all the others.
OPENB_PRIORITY = {"Guaranteed": 1, "LS": 1, "Burstable": 1, "BE": 0}


def read_openb(folder: Path) -> Cluster:
    """Alibaba's openb trace (cluster-trace-gpu-v2023): the GPU node list and the pod list.

    Nodes keep their CPU and memory; pods ask for CPU, memory and `num_gpu` GPUs of `gpu_milli`
    each. The trace's pods all leave `gpu_spec` (a GPU model constraint) empty; a pod that sets
    one is refused rather than silently placed anywhere.
    """
    with (folder / "openb_node_list_gpu_node.csv").open(newline="") as handle:
        nodes = tuple(Node(r["sn"], int(r["gpu"]), (int(r["cpu_milli"]), int(r["memory_mib"])))
                      for r in csv.DictReader(handle))
    pods = []
    with (folder / "openb_pod_list_default.csv").open(newline="") as handle:
        for line, r in enumerate(csv.DictReader(handle), start=2):
            if r["gpu_spec"]:
                raise ValueError(f"{folder}/openb_pod_list_default.csv:{line}: gpu_spec "
                                 f"{r['gpu_spec']!r} is not supported")
            if r["qos"] not in OPENB_PRIORITY:
                raise ValueError(f"{folder}/openb_pod_list_default.csv:{line}: unknown qos "
                                 f"{r['qos']!r}, expected one of {sorted(OPENB_PRIORITY)}")
            gpus = int(r["num_gpu"])
            pods.append(Pod(r["name"], (int(r["cpu_milli"]), int(r["memory_mib"])), gpus,
                            int(r["gpu_milli"]) if gpus else 0, OPENB_PRIORITY[r["qos"]]))
    return Cluster(("cpu_milli", "memory_mib"), nodes, tuple(pods))
