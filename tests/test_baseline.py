"""The baseline: the placed models without sharing a GPU, in whole nodes of the shape where
each one's replica costs least."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from planner.assembly.cost import baseline_cost_per_hour
from planner.demand.derive import derive
from planner.pipeline import SolverSettings, make_plan
from planner.registry.loader import load_registry
from planner.schemas import Cluster
from tests.conftest import edit_yaml


def _pool(name: str, instance_type: str, gpus_per_node: int, price_per_node_hour: float,
          **more) -> dict:
    return {"name": name, "gpu_type": "l4", "class": "dedicated", "sharing": "exclusive",
            "instance_type": instance_type, "gpus_per_node": gpus_per_node,
            "price_per_node_hour": price_per_node_hour, "max_nodes": 4, **more}


CLUSTER = Cluster.model_validate({
    "gpu_types": {"l4": {"memory_mib": 23034, "product": "NVIDIA-L4"}},
    "instance_types": {
        "four": {"cpu_milli": 48000, "memory_mib": 196608,
                 "reserved": {"cpu_milli": 440, "memory_mib": 16823}},
        "one": {"cpu_milli": 16000, "memory_mib": 65536,
                "reserved": {"cpu_milli": 360, "memory_mib": 6993}},
        "eight": {"cpu_milli": 192000, "memory_mib": 2097152,
                  "reserved": {"cpu_milli": 800, "memory_mib": 159364}}},
    "pools": [_pool("four-l4", "four", 4, 4.6016,
                    other_shapes=[{"instance_type": "one", "gpus_per_node": 1,
                                   "price_per_node_hour": 1.3232}]),
              _pool("eight-h100", "eight", 8, 55.04)]})


def _demand(pool: str, replicas: int, gpus_per_replica: int = 1, *, cpu_milli: int = 1000,
            max_per_node: int | None = None):
    return SimpleNamespace(pool=pool, replicas=replicas, gpus_per_replica=gpus_per_replica,
                           cpu_milli=cpu_milli, host_memory_mib=1024, max_per_node=max_per_node)


def test_baseline_by_hand():
    demands = [
        # 3 replicas; a 4-GPU node (1.1504 a replica) is cheaper than a 1-GPU one (1.3232)
        [_demand("four-l4", 3)],
        # 2 replicas of 2 GPUs on the 8-GPU node: half a node
        [_demand("eight-h100", 2, 2)],
        # 14,000 CPU milli each: a 4-GPU node (47,560 allocatable) holds three (1.5339 a
        # replica), a 1-GPU node (15,640) one (1.3232): the 1-GPU shape, two nodes
        [_demand("four-l4", 2, cpu_milli=14000)],
        # 2 replicas, at most 1 a node: they fill 1/2 of a 4-GPU node, but need two nodes
        [_demand("four-l4", 2, max_per_node=1)],
    ]
    # four-l4/four: 3/4 + 2/4 of a node, at least two nodes for the spread: 2 x 4.6016;
    # four-l4/one: 2 x 1.3232; eight-h100: 1 x 55.04.
    assert baseline_cost_per_hour(CLUSTER, demands) == pytest.approx(
        2 * 4.6016 + 2 * 1.3232 + 55.04)
    # 672 hours of February 2027: 66.8896 x 672 = 44,949.81
    assert round(Decimal("66.8896") * 672, 2) == Decimal("44949.81")


def test_a_model_no_shape_holds_is_left_out():
    assert baseline_cost_per_hour(CLUSTER, [[_demand("four-l4", 1, 8)], []]) == 0


def test_unplaced_models_are_left_out(registry: Path):
    """With one H100 node, a model that needs more H100s than it has stays out; the baseline
    counts the placed models only."""
    edit_yaml(registry / "cluster.yaml", lambda data: next(
        p for p in data["pools"] if p["name"] == "dedicated-h100").update(max_nodes=1))
    fleet = load_registry(registry)
    plan = make_plan(fleet, SolverSettings(method="greedy"))
    assert plan.summary.unplaced >= 1
    demands = derive(fleet)[0]
    placed = [demands[m.name] for m in plan.models]
    unplaced = [demands[u.name] for u in plan.unplaced if demands[u.name]]
    assert unplaced, "an unplaced model that some pool could hold"
    assert plan.summary.baseline_cost_per_hour == pytest.approx(
        baseline_cost_per_hour(fleet.cluster, placed), abs=1e-6)
    assert baseline_cost_per_hour(fleet.cluster, placed + unplaced) > \
        plan.summary.baseline_cost_per_hour + 1
    assert plan.summary.baseline_cost_per_month == round(
        Decimal(repr(plan.summary.baseline_cost_per_hour)) * 730, 2)
