"""Readers for the classic packing benchmark formats, as engine problems.

Each distinct item becomes one group whose count is its multiplicity, so identical items are
aggregated exactly as identical model replicas are.
"""

from __future__ import annotations

import csv
import re
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


class InstanceError(ValueError):
    """An instance file that is not a valid packing instance: the message names the file, the
    line and the field, and says what is expected."""


# A whole number as the benchmark formats write it: ASCII digits, perhaps a sign. Python's
# int() also takes "1_000" and other scripts' digits, which no instance file means.
_INTEGER = re.compile(r"[+-]?[0-9]+")


def _tokens(path: Path) -> list[tuple[str, int]]:
    """Every whitespace-separated token with its line number (CRLF tolerated)."""
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise InstanceError(f"{path}:{line}: byte {exc.object[exc.start]:#04x} is not text; "
                            "an instance file holds ASCII whole numbers") from None
    return [(token, line) for line, row in enumerate(text.split("\n"), start=1)
            for token in row.split()]


class _Reader:
    """Reads a file's integers in order, each checked against what its field allows."""

    def __init__(self, path: Path):
        self.path = path
        self.tokens = _tokens(path)
        self.position = 0

    def error(self, line: int | None, message: str) -> InstanceError:
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        return InstanceError(f"{where}: {message}")

    def take(self, field: str, *, least: int) -> int:
        """The next token as an integer of at least `least`."""
        if self.position >= len(self.tokens):
            last = self.tokens[-1][1] if self.tokens else None
            raise self.error(last, f"{field}: missing, the file ends early")
        token, line = self.tokens[self.position]
        self.position += 1
        if not _INTEGER.fullmatch(token):
            raise self.error(line, f"{field}: {token!r} is not an integer; sizes, capacities "
                             "and counts are whole numbers")
        value = int(token)
        if value < least:
            raise self.error(line, f"{field}: {value} is below {least}; "
                             + ("sizes cannot be negative" if least == 0 else
                                f"give at least {least}"))
        return value

    def end(self) -> None:
        if self.position < len(self.tokens):
            token, line = self.tokens[self.position]
            raise self.error(line, f"unexpected {token!r} after the last item; check the item "
                             "count")


def read_bpp(path: Path) -> Problem:
    """BPPLIB text: n, capacity, then n weights (CRLF tolerated). Weights are integers from 1
    to the capacity; anything else is an `InstanceError` naming the file, line and field."""
    reader = _Reader(path)
    count = reader.take("item count", least=1)
    capacity = reader.take("capacity", least=1)
    weights: Counter = Counter()
    for i in range(count):
        weight = reader.take(f"weight of item {i + 1}", least=1)
        if weight > capacity:
            raise reader.error(reader.tokens[reader.position - 1][1],
                               f"weight of item {i + 1}: {weight} exceeds the capacity "
                               f"{capacity}; no bin can hold it")
        weights[(weight,)] += 1
    reader.end()
    return _single_pool((capacity,), weights, count)


def read_vbp(path: Path) -> Problem:
    """`.vbp`: dimensions, capacities, item types, then weights and demand per type. Weights
    are integers from 0 to the capacity (not all 0), demands at least 1."""
    reader = _Reader(path)
    dims = reader.take("dimensions", least=1)
    capacity = tuple(reader.take(f"capacity {d + 1}", least=1) for d in range(dims))
    types = reader.take("item type count", least=1)
    items: Counter = Counter()
    for t in range(types):
        row = tuple(reader.take(f"item type {t + 1}, weight {d + 1}", least=0)
                    for d in range(dims))
        line = reader.tokens[reader.position - 1][1]
        demand = reader.take(f"item type {t + 1}, demand", least=1)
        if not any(row):
            raise reader.error(line, f"item type {t + 1}: every weight is 0; an item must "
                               "use some capacity")
        over = [d for d in range(dims) if row[d] > capacity[d]]
        if over:
            d = over[0]
            raise reader.error(line, f"item type {t + 1}, weight {d + 1}: {row[d]} exceeds "
                               f"the capacity {capacity[d]}; no bin can hold it")
        items[row] += demand
    reader.end()
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
