"""`violations()`, the last check of every answer, names each broken rule.

A hand-made valid solution, then one change per rule family; each must be reported with its
exact message, in the order the checks run (groups, indexes, GPUs, nodes, cost).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from solvers.problem import Conflict, Group, Option, Placement, Pool, Problem, SliceType, Solution
from solvers.verify import violations

POOL = Pool("p", (100, 100), gpus_per_node=2, node_cost=10, max_nodes=3)
PROBLEM = Problem(("memory", "compute"), (POOL,), (
    Group("a", (Option("p", (60, 10), 2, max_per_node=1),), classes=frozenset({"x"})),
    Group("b", (Option("p", (30, 10), 1),), classes=frozenset({"y"})),
    Group("w", (Option("p", (0, 0), 1, whole_gpus=2),)),
), (Conflict("xy", "x", "y", "gpu"),))
VALID = Solution("feasible", 30, 0, (
    Placement("a", 0, "p", 0, (0,)),
    Placement("a", 1, "p", 1, (0,)),
    Placement("b", 0, "p", 0, (1,)),
    Placement("w", 0, "p", 2, (0, 1)),
))


def _moved(group: str, index: int, **change) -> Solution:
    """VALID with replica `index` of `group` changed."""
    return replace(VALID, placements=tuple(
        replace(p, **change) if (p.group, p.replica) == (group, index) else p
        for p in VALID.placements))


def test_a_valid_solution_has_none():
    assert violations(PROBLEM, VALID) == []


WITHOUT_B = replace(VALID, placements=tuple(p for p in VALID.placements if p.group != "b"))


@pytest.mark.parametrize("solution, expected", [
    (WITHOUT_B, ["b: neither placed nor listed as unplaced"]),
    (replace(WITHOUT_B, unplaced={"b": "no room"}), ["b: mandatory group left unplaced"]),
    (_moved("a", 1, replica=2), ["a: replicas [0, 2], expected 0..1"]),
    (_moved("a", 1, node=0),
     ["a: 2 replicas on node 0, spread allows 1",
      "p node 0 GPU 0: load [120, 20] exceeds capacity [100, 100]",
      "cost 30 differs from the open nodes' 20"]),
    (_moved("w", 0, gpus=(0,)), ["w/0: 1 GPUs, needs 2"]),
    (_moved("w", 0, gpus=(0, 2)), ["w/0: bad GPU indexes (0, 2)"]),
    (_moved("b", 0, node=3),
     ["b/0: node 3 beyond the pool's limit", "cost 30 differs from the open nodes' 40"]),
    (_moved("b", 0, node=2, gpus=(0,)),
     ["p node 2 GPU 0: a whole-GPU replica shares the GPU"]),
    (_moved("b", 0, gpus=(0,)), ["p node 0 GPU 0: conflict rule xy broken"]),
    (replace(VALID, cost=20), ["cost 20 differs from the open nodes' 30"]),
])
def test_each_broken_rule_is_named(solution: Solution, expected: list[str]):
    assert violations(PROBLEM, solution) == expected


def test_whole_gpu_demand_must_fit_each_gpu():
    heavy = Group("w", (Option("p", (120, 0), 1, whole_gpus=2),))
    problem = replace(PROBLEM, groups=(*PROBLEM.groups[:2], heavy))
    assert violations(problem, VALID) == [
        f"p node 2 GPU {g}: whole-GPU demand [120, 0] exceeds capacity [100, 100]"
        for g in (0, 1)]


def test_node_conflicts_are_checked():
    problem = replace(PROBLEM, conflicts=(Conflict("xy", "x", "y", "node"),))
    assert violations(problem, VALID) == ["p node 0: conflict rule xy broken"]


def test_mig_slices_are_checked():
    slices = (SliceType("small", (10, 150, 1)), SliceType("large", (40, 600, 1)))
    pool = Pool("mig", (80, 1000, 7), 1, 5, 3, mode="mig", slice_types=slices,
                mig_layouts=((7, 0), (3, 1)))
    problem = Problem(("memory", "compute", "replicas"), (pool,),
                      (Group("big", (Option("mig", (30, 500, 1), 2),)),))
    placements = (Placement("big", 0, "mig", 0, (0,), "large"),
                  Placement("big", 1, "mig", 0, (0,), "small"))
    solution = Solution("feasible", 5, 0, placements, mig_layouts={("mig", 0, 0): 1})
    assert violations(problem, solution) == ["mig node 0 GPU 0: big may not use slice small"]
    assert violations(problem, replace(solution, mig_layouts={("mig", 0, 0): 0})) == [
        "mig node 0 GPU 0: more large replicas than slices",
        "mig node 0 GPU 0: big may not use slice small"]
    assert violations(problem, replace(solution, mig_layouts={})) == [
        "mig node 0 GPU 0: MIG GPU without a layout"]
