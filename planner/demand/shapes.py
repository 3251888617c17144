"""A pool's node shapes in the engine: one engine pool per shape, one family per pool.

The engine buys nodes per engine pool. A pool with one shape is one engine pool of its own
name; a pool with several is one engine pool per shape, named `POOL/INSTANCE-TYPE` (and
`POOL/INSTANCE-TYPE/spot` for an instance type's spot offer), all of the pool's family, so a
model's replicas may spread over the shapes but not beyond the pool.

The plan numbers a pool's nodes across its shapes: the nodes of the first shape from 0, those
of the next after the first shape's `max_nodes`, and so on, so that a node's index alone says
its shape, and an earlier plan's nodes map back onto the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from planner.schemas import NodeShape, Pool
from solvers.problem import Placement, Solution


@dataclass(frozen=True)
class EngineShape:
    """One shape of a pool as the engine sees it: its engine pool and its first node index."""

    engine_pool: str
    shape: NodeShape
    first_node: int


def offered_twice(pool: Pool) -> set[str]:
    """The pool's instance types offered as both on-demand and spot capacity (a `spot`
    offer): their nodes say which capacity type they are."""
    return {s.instance_type for s in pool.declared_shapes() if s.spot is not None}


def engine_shapes(pool: Pool) -> list[EngineShape]:
    """The pool's shapes, its own first, with their engine pool names and node offsets."""
    result, offset = [], 0
    twice = offered_twice(pool)
    for shape in pool.shapes():
        suffix = "/spot" if shape.instance_type in twice and shape.capacity_type == "spot" \
            else ""
        name = f"{pool.name}/{shape.instance_type}{suffix}" if pool.several_shapes \
            else pool.name
        result.append(EngineShape(name, shape, offset))
        assert shape.max_nodes is not None  # Pool.shapes fills it in
        offset += shape.max_nodes
    return result


def shape_of(pool: Pool, node: int) -> NodeShape | None:
    """The shape of the pool's node `node` (a plan's index), or None beyond every shape."""
    for entry in engine_shapes(pool):
        assert entry.shape.max_nodes is not None
        if entry.first_node <= node < entry.first_node + entry.shape.max_nodes:
            return entry.shape
    return None


def _by_engine_pool(pools: list[Pool]) -> dict[str, tuple[str, int]]:
    return {e.engine_pool: (pool.name, e.first_node) for pool in pools
            for e in engine_shapes(pool)}


def to_plan_pools(pools: list[Pool], solution: Solution) -> Solution:
    """The engine's solution in the plan's terms: pool names and node indexes across shapes."""
    where = _by_engine_pool(pools)
    if all(name == pool for name, (pool, _) in where.items()):
        return solution
    placements = tuple(replace(p, pool=where[p.pool][0], node=where[p.pool][1] + p.node)
                       for p in solution.placements)
    layouts = {(where[name][0], where[name][1] + node, gpu): layout
               for (name, node, gpu), layout in solution.mig_layouts.items()}
    return replace(solution, placements=placements, mig_layouts=layouts)


def to_engine_pools(pools: list[Pool], placements: tuple[Placement, ...],
                    layouts: dict[tuple[str, int, int], int]
                    ) -> tuple[tuple[Placement, ...], dict[tuple[str, int, int], int]]:
    """A plan's placements (and MIG layouts) in the engine's terms, for a base solution; every
    node must exist in one of its pool's shapes."""
    shapes = {pool.name: engine_shapes(pool) for pool in pools}

    def engine(pool: str, node: int) -> tuple[str, int]:
        entry = next(e for e in shapes[pool] if e.first_node <= node
                     and (e.shape.max_nodes is None or node < e.first_node + e.shape.max_nodes))
        return entry.engine_pool, node - entry.first_node

    moved = []
    for p in placements:
        name, node = engine(p.pool, p.node)
        moved.append(replace(p, pool=name, node=node))
    mapped = {}
    for (pool, node, gpu), layout in layouts.items():
        name, local = engine(pool, node)
        mapped[(name, local, gpu)] = layout
    return tuple(moved), mapped
