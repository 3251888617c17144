"""The engine's input and output: plain integers in frozen dataclasses."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

Scope = Literal["gpu", "node"]


@dataclass(frozen=True)
class SliceType:
    """One MIG profile: a hardware partition of a GPU with its own capacity vector."""

    name: str
    capacity: tuple[int, ...]


@dataclass(frozen=True)
class Pool:
    """Identical nodes of `gpus_per_node` identical GPUs, bought per node.

    `mode` is `shared` (replicas share a GPU up to its capacity vector) or `mig` (each GPU is
    cut by one of `mig_layouts`, counts per slice type, and each slice holds one replica).
    `node_capacity` is what one node holds in the problem's node dimensions (every replica on
    the node draws on it, whatever its GPUs); empty means the nodes are not limited there.
    Pools of one `family` (node shapes of one pool, each a pool of its own nodes) count as one
    pool for a group: its replicas may spread over the family's pools, but over no other.
    """

    name: str
    capacity: tuple[int, ...]
    gpus_per_node: int
    node_cost: int
    max_nodes: int
    mode: Literal["shared", "mig"] = "shared"
    slice_types: tuple[SliceType, ...] = ()
    mig_layouts: tuple[tuple[int, ...], ...] = ()
    node_capacity: tuple[int, ...] = ()
    family: str = ""

    @property
    def max_gpus(self) -> int:
        return self.max_nodes * self.gpus_per_node

    @property
    def family_name(self) -> str:
        """The family the pool belongs to: its own name unless it is one shape of several."""
        return self.family or self.name


@dataclass(frozen=True)
class Option:
    """One pool a group may use: its per-replica demand there and how many replicas it needs.

    `whole_gpus` > 0 means each replica takes that many whole GPUs on one node, and each of
    them must hold `size` (the demand per GPU); 0 means replicas share GPUs by `size`.
    `max_per_node` caps the replicas on one node (the spread rule). In a MIG pool, `slice`
    (if set) is the one slice type every replica must use, so that all replicas can share one
    resource request. `node_size` is one replica's demand on its node, in the problem's node
    dimensions.
    """

    pool: str
    size: tuple[int, ...]
    count: int
    whole_gpus: int = 0
    max_per_node: int | None = None
    slice: str | None = None
    node_size: tuple[int, ...] = ()

    def node_demand(self, pool: Pool) -> tuple[tuple[int, int, int], ...]:
        """(dimension, demand, capacity) for each node dimension that limits this option in
        `pool`: the option needs some of it and the pool's nodes are limited there."""
        return tuple((d, s, c) for d, (s, c) in enumerate(zip(self.node_size, pool.node_capacity,
                                                                strict=False)) if s)

    def fits_slice(self, kind: SliceType) -> bool:
        return (self.slice is None or self.slice == kind.name) and all(
            a <= c for a, c in zip(self.size, kind.capacity, strict=True))


@dataclass(frozen=True)
class Group:
    """Identical replicas that all go to one pool, or (if `optional`) all stay unplaced.

    A higher `priority` is placed first; `classes` feed the conflict rules.
    """

    name: str
    options: tuple[Option, ...]
    priority: int = 0
    optional: bool = False
    classes: frozenset[str] = frozenset()

    @cached_property
    def _by_pool(self) -> dict[str, Option]:
        return {o.pool: o for o in self.options}

    def option(self, pool: str) -> Option:
        """The option in `pool`, which the group must be able to use (KeyError otherwise)."""
        return self._by_pool[pool]

    def find_option(self, pool: str) -> Option | None:
        """The option in `pool`, or None where the group may not use it."""
        return self._by_pool.get(pool)


@dataclass(frozen=True)
class Conflict:
    """Groups of class `a` and groups of class `b` never share one GPU (or one node)."""

    name: str
    a: str
    b: str
    scope: Scope


@dataclass(frozen=True)
class Problem:
    """Pools, groups and conflicts. `dimensions` name the entries of each GPU's capacity and
    each option's `size`; `node_dimensions` those of `node_capacity` and `node_size`."""

    dimensions: tuple[str, ...]
    pools: tuple[Pool, ...]
    groups: tuple[Group, ...]
    conflicts: tuple[Conflict, ...] = ()
    node_dimensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.conflicts:
            return
        sides = {(c.a, c.b): c for c in self.conflicts}
        for group in self.groups:  # a group of one class is on one side of every rule
            for a, b in itertools.permutations(group.classes, 2) if len(group.classes) > 1 \
                    else ():
                if (a, b) in sides:
                    raise ValueError(f"group {group.name} is on both sides of conflict "
                                     f"{sides[(a, b)].name}")

    @cached_property
    def _index(self) -> tuple[dict[str, Pool], dict[str, Group]]:
        return {p.name: p for p in self.pools}, {g.name: g for g in self.groups}

    def pool(self, name: str) -> Pool:
        return self._index[0][name]

    def group(self, name: str) -> Group:
        return self._index[1][name]


def nodes_cost(pools: Iterable[Pool], placements: Iterable[Placement]) -> int:
    """The price of every node of `pools` that holds at least one of `placements`."""
    used = {(p.pool, p.node) for p in placements}
    return sum(pool.node_cost * sum(1 for name, _ in used if name == pool.name)
               for pool in pools)


@dataclass(frozen=True)
class Placement:
    """Where one replica runs: pool, node index, the GPU indexes on that node, MIG slice."""

    group: str
    replica: int
    pool: str
    node: int
    gpus: tuple[int, ...]
    slice: str | None = None


@dataclass(frozen=True)
class Solution:
    """An assignment with its status, cost, a proven lower bound on cost, and what stayed out.

    `status` is `optimal`, `feasible` or `greedy`. `lower_bound` bounds the cost of placing
    the same groups; `unplaced` maps each left-out group to its reason.
    """

    status: str
    cost: int
    lower_bound: int
    placements: tuple[Placement, ...]
    unplaced: dict[str, str] = field(default_factory=dict)
    mig_layouts: dict[tuple[str, int, int], int] = field(default_factory=dict)
    seconds: float = 0.0
    moved: int = 0

    @property
    def gap(self) -> float:
        return 0.0 if self.cost == 0 else max(0.0, (self.cost - self.lower_bound) / self.cost)

    def nodes(self, pool: str) -> set[int]:
        return {p.node for p in self.placements if p.pool == pool}

    def gpus(self, pool: str) -> set[tuple[int, int]]:
        return {(p.node, g) for p in self.placements if p.pool == pool for g in p.gpus}
