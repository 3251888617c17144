"""Greedy placement: first-fit or best-fit decreasing over a multi-dimensional capacity.

The baseline in benchmarks, the hint for CP-SAT, and the fallback when CP-SAT finds nothing
better in time. It honours every rule the CP-SAT model does, so its answer is always valid.

Each pool's GPUs are also kept as numpy rows (`_GpuTable`), so finding the GPUs with room for a
replica is one vector operation rather than a Python walk over every GPU: greedy then costs
about items x distinct sizes, not items x GPUs, and leaves the search its time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from solvers.clock import charge
from solvers.problem import Group, Option, Placement, Pool, Problem, Solution

Strategy = Literal["first", "best"]
# Deterministic seconds charged for greedy's work (`scripts/calibrate_clock.py`): its Python
# per step and per replica, and its numpy scans, which read every GPU row of the pool.
PLACE_STEP = 2.2e-5  # one step of a placement: the GPUs with room looked up, one chosen
GPU_ROW = 1.9e-9  # one GPU row of the pool's table read in such a step
REPLICA = 5.5e-6  # one replica placed, recorded and renumbered


@dataclass
class _Gpu:
    load: list[int]
    groups: Counter = field(default_factory=Counter)
    classes: Counter = field(default_factory=Counter)
    whole: bool = False
    layout: int | None = None
    free_slices: list[int] = field(default_factory=list)

    @property
    def used(self) -> bool:
        return self.whole or bool(self.groups)


@dataclass
class _Node:
    gpus: list[_Gpu]
    classes: Counter = field(default_factory=Counter)
    groups: Counter = field(default_factory=Counter)
    load: list[int] = field(default_factory=list)  # in the problem's node dimensions


class _GpuTable:
    """A pool's GPUs as rows (node-major: row = node * gpus_per_node + gpu), mirroring their
    `_Gpu` objects: what is free in each dimension, how many replicas each holds, whether
    whole-GPU replicas took it, and in a MIG pool whether it is cut and its free slices by
    type."""

    def __init__(self, capacity: tuple[int, ...], slice_types: int = 0,
                 classes: Iterable[str] = ()):
        self.capacity = np.array(capacity, dtype=np.int64)
        self.rows = 0
        # Per class named by a GPU-scope conflict rule: its replicas on each GPU.
        self.classes = {c: np.zeros(16, dtype=np.int64) for c in sorted(classes)}
        self.free = np.zeros((16, len(capacity)), dtype=np.int64)
        self.replicas = np.zeros(16, dtype=np.int64)
        self.whole = np.zeros(16, dtype=bool)
        self.cut = np.zeros(16, dtype=bool)
        self.slices = np.zeros((16, slice_types), dtype=np.int64)

    def grow(self, count: int) -> None:
        """`count` empty GPUs more at the end."""
        if self.rows + count > len(self.replicas):
            size = max(2 * len(self.replicas), self.rows + count)
            self.free = np.resize(self.free, (size, len(self.capacity)))
            self.replicas = np.resize(self.replicas, size)
            self.whole = np.resize(self.whole, size)
            self.cut = np.resize(self.cut, size)
            self.slices = np.resize(self.slices, (size, self.slices.shape[1]))
            self.classes = {c: np.resize(a, size) for c, a in self.classes.items()}
        new = slice(self.rows, self.rows + count)
        self.free[new] = self.capacity
        self.replicas[new] = 0
        self.whole[new] = False
        self.cut[new] = False
        self.slices[new] = 0
        for counts in self.classes.values():
            counts[new] = 0
        self.rows += count

    def without(self, rows: np.ndarray, classes: Iterable[str]) -> np.ndarray:
        """`rows`, in order, whose GPUs hold none of `classes`."""
        keep = np.ones(len(rows), dtype=bool)
        for c in classes:
            keep &= self.classes[c][rows] == 0
        return rows[keep]

    def count_classes(self, row: int, classes: Iterable[str], change: int) -> None:
        for c in classes:
            if c in self.classes:
                self.classes[c][row] += change

    def unused(self) -> np.ndarray:
        """Per row: whether the GPU holds nothing."""
        return (self.replicas[:self.rows] == 0) & ~self.whole[:self.rows]

    def free_per_node(self, per_node: int) -> np.ndarray:
        """Per node: how many of its GPUs hold nothing."""
        return self.unused().reshape(-1, per_node).sum(axis=1)

    def room_for(self, size: tuple[int, ...]) -> np.ndarray:
        """Per row: whether one replica of `size` fits what is free."""
        need = np.array(size, dtype=np.int64)
        return ((self.free[:self.rows] >= need) | (need == 0)).all(axis=1)

    def shared_with_room(self, size: tuple[int, ...]) -> np.ndarray:
        """Rows, in order, of GPUs that already hold shared replicas and have room for one of
        `size`."""
        held = (self.replicas[:self.rows] > 0) & ~self.whole[:self.rows]
        return np.flatnonzero(held & self.room_for(size))

    def empty(self) -> np.ndarray:
        """Rows, in order, of GPUs that hold nothing."""
        return np.flatnonzero((self.replicas[:self.rows] == 0) & ~self.whole[:self.rows])

    def slack(self, rows: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
        """Per row, the share of capacity each dimension has left after adding `size`, summed
        over the dimensions: best fit takes the least."""
        total = np.zeros(len(rows))
        for d, (cap, s) in enumerate(zip(self.capacity.tolist(), size, strict=True)):
            if cap:
                total = total + (self.free[rows, d] - s) / cap
        return total


class _PoolState:
    def __init__(self, pool: Pool, problem: Problem):
        self.pool = pool
        self.nodes: list[_Node] = []
        self.gpu_conflicts = _conflict_map(problem, "gpu")
        self.table = _GpuTable(pool.capacity, len(pool.slice_types), self.gpu_conflicts)
        self.node_conflicts = _conflict_map(problem, "node")

    def new_node(self) -> _Node | None:
        if len(self.nodes) >= self.pool.max_nodes:
            return None
        dims = len(self.pool.capacity)
        node = _Node([_Gpu([0] * dims) for _ in range(self.pool.gpus_per_node)],
                     load=[0] * len(self.pool.node_capacity))
        self.nodes.append(node)
        self.table.grow(self.pool.gpus_per_node)
        return node

    def truncate(self, nodes: int) -> None:
        """Drop every node from index `nodes` on."""
        del self.nodes[nodes:]
        self.table.rows = nodes * self.pool.gpus_per_node


def _conflict_map(problem: Problem, scope: str) -> dict[str, set[str]]:
    """For each class, the classes it may not meet within `scope`."""
    result: dict[str, set[str]] = {}
    for c in problem.conflicts:
        if c.scope == scope:
            result.setdefault(c.a, set()).add(c.b)
            result.setdefault(c.b, set()).add(c.a)
    return result


def _clashes(classes: frozenset[str], present: Counter, conflicts: dict[str, set[str]]) -> bool:
    return any(present[other] for c in classes for other in conflicts.get(c, ()))


def _node_room(pool: Pool, node: _Node, option: Option) -> int:
    """How many more replicas of `option` the node holds in its node dimensions."""
    return min(((cap - node.load[d]) // s for d, s, cap in option.node_demand(pool)),
               default=1 << 30)


def _node_admits(state: _PoolState, node: _Node, group: Group) -> bool:
    option = group.option(state.pool.name)
    if option.max_per_node is not None and node.groups[group.name] >= option.max_per_node:
        return False
    if _node_room(state.pool, node, option) <= 0:
        return False
    return not _clashes(group.classes, node.classes, state.node_conflicts)


def _room(pool: Pool, gpu: _Gpu, size: tuple[int, ...]) -> int:
    """How many more replicas of `size` fit on a shared GPU."""
    room = 1 << 30
    for load, cap, s in zip(gpu.load, pool.capacity, size, strict=True):
        if s:
            room = min(room, (cap - load) // s)
    return max(room, 0)


class _Placer:
    """Places one group's replicas into one pool, recording an undo log."""

    def __init__(self, state: _PoolState, group: Group, option: Option, strategy: Strategy):
        self.state, self.group, self.option, self.strategy = state, group, option, strategy
        self.placed: list[tuple[int, tuple[int, ...], str | None]] = []
        self.undo: list = []
        self.nodes_before = len(state.nodes)

    def _add(self, node_index: int, gpu_indexes: tuple[int, ...], slice_name: str | None,
             whole: bool, slice_index: int | None = None) -> None:
        node = self.state.nodes[node_index]
        name, classes = self.group.name, self.group.classes
        node.groups[name] += 1
        node.classes.update(classes)
        for d, need, _ in self.option.node_demand(self.state.pool):
            node.load[d] += need
        table, per_node = self.state.table, self.state.pool.gpus_per_node
        for g in gpu_indexes:
            gpu = node.gpus[g]
            gpu.groups[name] += 1
            gpu.classes.update(classes)
            gpu.whole = gpu.whole or whole
            row = node_index * per_node + g
            table.replicas[row] += 1
            table.whole[row] |= whole
            table.count_classes(row, classes, 1)
            if not whole and slice_index is None:
                gpu.load = [a + b for a, b in zip(gpu.load, self.option.size, strict=True)]
                table.free[row] -= self.option.size
            if slice_index is not None:
                gpu.free_slices[slice_index] -= 1
                table.slices[row, slice_index] -= 1
        self.placed.append((node_index, gpu_indexes, slice_name))

    def rollback(self) -> None:
        # Rebuilding touched GPUs from scratch is simpler than reversing each field.
        name, classes, size = self.group.name, self.group.classes, self.option.size
        table, per_node = self.state.table, self.state.pool.gpus_per_node
        for node_index, gpu_indexes, slice_name in self.placed:
            node = self.state.nodes[node_index]
            node.groups[name] -= 1
            node.classes.subtract(classes)
            for d, need, _ in self.option.node_demand(self.state.pool):
                node.load[d] -= need
            for g in gpu_indexes:
                gpu = node.gpus[g]
                gpu.groups[name] -= 1
                gpu.classes.subtract(classes)
                row = node_index * per_node + g
                table.replicas[row] -= 1
                table.count_classes(row, classes, -1)
                if self.option.whole_gpus:
                    gpu.whole = False
                    table.whole[row] = False
                elif slice_name is not None:
                    kinds = [s.name for s in self.state.pool.slice_types]
                    gpu.free_slices[kinds.index(slice_name)] += 1
                    table.slices[row, kinds.index(slice_name)] += 1
                else:
                    gpu.load = [a - b for a, b in zip(gpu.load, size, strict=True)]
                    table.free[row] += size
                gpu.groups += Counter()  # drops the zero counts, so `used` turns false
                if not gpu.used and gpu.layout is not None:
                    gpu.layout, gpu.free_slices = None, []
                    table.cut[row] = False
                    table.slices[row] = 0
        self.state.truncate(self.nodes_before)

    def place_all(self) -> bool:
        step = {0: self._place_shared}.get(self.option.whole_gpus, self._place_whole)
        if self.state.pool.mode == "mig" and not self.option.whole_gpus:
            step = self._place_mig
        remaining = self.option.count
        while remaining:
            charge(PLACE_STEP + GPU_ROW * self.state.table.rows * len(self.state.pool.capacity))
            placed = step(remaining)
            if not placed:
                self.rollback()
                return False
            remaining -= placed
        return True

    def _spread_room(self, node: _Node) -> int:
        if self.option.max_per_node is None:
            return 1 << 30
        return self.option.max_per_node - node.groups[self.group.name]

    def _admitting(self, rows: np.ndarray, *, gpu_rule: bool):
        """(node, GPU) of each of `rows`, in order, whose node admits the group (and, with
        `gpu_rule`, whose GPU holds no class it conflicts with)."""
        state, per_node = self.state, self.state.pool.gpus_per_node
        if gpu_rule:
            rows = state.table.without(rows, {other for c in self.group.classes
                                              for other in state.gpu_conflicts.get(c, ())})
        admits: dict[int, bool] = {}
        for row in rows.tolist():
            index, g = divmod(row, per_node)
            if index not in admits:
                admits[index] = _node_admits(state, state.nodes[index], self.group)
            if admits[index]:
                yield index, g

    def _place_shared(self, remaining: int) -> int:
        """Onto the first (or best-fitting) GPU in use with room, else a new GPU. Best fit is
        the least slack left, ties to the first GPU."""
        pool, size, table = self.state.pool, self.option.size, self.state.table
        rows = table.shared_with_room(size)
        if self.strategy == "best" and len(rows):
            rows = rows[np.argsort(table.slack(rows, size), kind="stable")]
        best = next(self._admitting(rows, gpu_rule=True), None)
        if best is None:
            best = self._open_gpu()
            if best is None:
                return 0
        index, g = best
        node = self.state.nodes[index]
        count = min(remaining, _room(pool, node.gpus[g], size), self._spread_room(node),
                    _node_room(pool, node, self.option))
        if count <= 0:
            return 0
        for _ in range(count):
            self._add(index, (g,), None, whole=False)
        return count

    def _open_gpu(self) -> tuple[int, int] | None:
        """The first empty GPU with room on a node that admits the group, else one on a new
        node if the pool has room."""
        state, size = self.state, self.option.size
        empty = state.table.empty()
        rows = empty[state.table.room_for(size)[empty]]
        found = next(self._admitting(rows, gpu_rule=False), None)
        if found is not None:
            return found
        new = state.new_node()
        if new is None:
            return None
        index = len(state.nodes) - 1
        return next(((index, g) for g, gpu in enumerate(new.gpus)
                     if _room(state.pool, gpu, size) > 0), None)

    def _place_whole(self, remaining: int) -> int:
        """Onto the first node (or the one with the fewest free GPUs, ties to the first) with
        `whole_gpus` free GPUs that admits the group, else a new node."""
        state, k = self.state, self.option.whole_gpus
        free_count = state.table.free_per_node(state.pool.gpus_per_node)
        nodes = np.flatnonzero(free_count >= k)
        if self.strategy == "best":
            nodes = nodes[np.argsort(free_count[nodes], kind="stable")]
        index = next((n for n in nodes.tolist()
                      if _node_admits(state, state.nodes[n], self.group)), None)
        if index is None:
            new = state.new_node()
            if new is None or k > len(new.gpus):
                return 0
            index = len(state.nodes) - 1
        free = [g for g, gpu in enumerate(state.nodes[index].gpus) if not gpu.used]
        self._add(index, tuple(free[:k]), None, whole=True)
        return 1

    def _fitting_slices(self) -> list[int]:
        kinds = self.state.pool.slice_types
        fits = [i for i, s in enumerate(kinds) if self.option.fits_slice(s)]
        return sorted(fits, key=lambda i: sum(kinds[i].capacity))

    def _place_mig(self, remaining: int) -> int:
        fitting = self._fitting_slices()
        if not fitting:
            return 0
        # The smallest fitting slice type free on a cut GPU of an admitting node, the first
        # such GPU in order.
        table, per_node = self.state.table, self.state.pool.gpus_per_node
        free = (table.slices[:table.rows] > 0) & table.cut[:table.rows, None]
        admits: dict[int, bool] = {}
        best = None
        for rank, kind in enumerate(fitting):
            for row in np.flatnonzero(free[:, kind]).tolist():
                index, g = divmod(row, per_node)
                if index not in admits:
                    admits[index] = _node_admits(self.state, self.state.nodes[index], self.group)
                if admits[index]:
                    best = (rank, index, g, kind)
                    break
            if best is not None:
                break
        if best is None:
            best = self._open_mig_gpu(fitting)
            if best is None:
                return 0
        _, index, g, kind = best
        self._add(index, (g,), self.state.pool.slice_types[kind].name, whole=False,
                  slice_index=kind)
        return 1

    def _open_mig_gpu(self, fitting: list[int]):
        pool = self.state.pool
        layouts = [(min(fitting.index(k) for k in fitting if layout[k]), -sum(layout), i)
                   for i, layout in enumerate(pool.mig_layouts)
                   if any(layout[k] for k in fitting)]
        if not layouts:
            return None
        _, _, choice = min(layouts)
        kind = next(k for k in fitting if pool.mig_layouts[choice][k])
        state, table = self.state, self.state.table
        rows = np.flatnonzero(table.unused() & ~table.cut[:table.rows])
        found = next(self._admitting(rows, gpu_rule=False), None)
        if found is None:
            if state.new_node() is None:
                return None
            found = (len(state.nodes) - 1, 0)
        index, g = found
        gpu = state.nodes[index].gpus[g]
        gpu.layout, gpu.free_slices = choice, list(pool.mig_layouts[choice])
        row = index * pool.gpus_per_node + g
        table.cut[row] = True
        table.slices[row] = pool.mig_layouts[choice]
        return (0, index, g, kind)


def _order_key(problem: Problem, group: Group) -> tuple:
    """Priority first, then the largest replicas first (the 'decreasing' in FFD)."""
    sizes = []
    for option in group.options:
        pool = problem.pool(option.pool)
        if option.whole_gpus:
            sizes.append(float(option.whole_gpus))
        else:
            sizes.append(max((s / c for s, c in zip(option.size, pool.capacity, strict=True)
                              if c), default=0.0))
    return (-group.priority, -max(sizes, default=0.0), group.name)


def _option_cost(problem: Problem, option: Option) -> float:
    """Estimated cost of one replica in a pool: the share of a node it occupies."""
    pool = problem.pool(option.pool)
    share = option.whole_gpus or max((s / c for s, c in zip(option.size, pool.capacity,
                                                            strict=True) if c), default=0.0)
    return pool.node_cost / pool.gpus_per_node * share * option.count


def fits_alone(pool: Pool, option: Option) -> bool:
    """Whether one replica fits an empty node of the pool at all."""
    if any(need > cap for _, need, cap in option.node_demand(pool)):
        return False
    if option.whole_gpus:
        return option.whole_gpus <= pool.gpus_per_node and all(
            a <= c for a, c in zip(option.size, pool.capacity, strict=True))
    if pool.mode == "mig":
        return any(option.fits_slice(s) and any(layout[i] for layout in pool.mig_layouts)
                   for i, s in enumerate(pool.slice_types))
    return all(a <= c for a, c in zip(option.size, pool.capacity, strict=True))


def unplaced_reason(problem: Problem, group: Group) -> str:
    """Why a group found no room: its demand against each pool it may use."""
    reasons = []
    for option in group.options:
        pool = problem.pool(option.pool)
        if option.whole_gpus > pool.gpus_per_node:
            reason = f"{option.whole_gpus} GPUs per replica, a node has {pool.gpus_per_node}"
        elif any(need > cap for _, need, cap in option.node_demand(pool)):
            demand = ", ".join(f"{problem.node_dimensions[d]} {need}"
                               for d, need, _ in option.node_demand(pool))
            capacity = ", ".join(f"{problem.node_dimensions[d]} {cap}"
                                 for d, _, cap in option.node_demand(pool))
            reason = f"one replica ({demand}) is larger than a node ({capacity})"
        elif not fits_alone(pool, option):
            demand = ", ".join(f"{d} {s}" for d, s in zip(problem.dimensions, option.size,
                                                          strict=True))
            reason = f"one replica ({demand}) is larger than a GPU or slice"
        elif option.max_per_node is not None and \
                option.max_per_node * pool.max_nodes < option.count:
            reason = (f"spread allows {option.max_per_node} per node on at most "
                      f"{pool.max_nodes} nodes, {option.count} replicas needed")
        else:
            reason = (f"no room for {option.count} replicas within {pool.max_nodes} nodes "
                      "after higher priorities")
        reasons.append(f"{pool.name}: {reason}")
    return "; ".join(reasons)


def greedy(problem: Problem, strategy: Strategy = "best") -> Solution:
    """Place groups in priority-then-size order, each into its cheapest pool that has room."""
    states = {pool.name: _PoolState(pool, problem) for pool in problem.pools}
    placements: list[Placement] = []
    unplaced: dict[str, str] = {}
    for group in sorted(problem.groups, key=lambda g: _order_key(problem, g)):
        for option in sorted(group.options, key=lambda o: _option_cost(problem, o)):
            placer = _Placer(states[option.pool], group, option, strategy)
            if placer.place_all():
                placements += [Placement(group.name, r, option.pool, node, gpus, slice_name)
                               for r, (node, gpus, slice_name) in enumerate(placer.placed)]
                break
        else:
            unplaced[group.name] = unplaced_reason(problem, group)
    return _compact(problem, states, placements, unplaced)


def _compact(problem: Problem, states: dict[str, _PoolState], placements: list[Placement],
             unplaced: dict[str, str]) -> Solution:
    """Renumber nodes so that the used ones come first, and price them."""
    charge(REPLICA * len(placements))
    renumber: dict[tuple[str, int], int] = {}
    used: Counter = Counter()  # nodes numbered so far per pool
    for p in placements:
        key = (p.pool, p.node)
        if key not in renumber:
            renumber[key] = used[p.pool]
            used[p.pool] += 1
    placements = [Placement(p.group, p.replica, p.pool, renumber[(p.pool, p.node)], p.gpus,
                            p.slice) for p in placements]
    layouts = {}
    for (pool_name, node_index), new_index in renumber.items():
        for g, gpu in enumerate(states[pool_name].nodes[node_index].gpus):
            if gpu.layout is not None and gpu.used:
                layouts[(pool_name, new_index, g)] = gpu.layout
    cost = sum(problem.pool(pool).node_cost for pool, _ in renumber)
    return Solution(status="greedy", cost=cost, lower_bound=0, placements=tuple(placements),
                    unplaced=unplaced, mig_layouts=layouts)
