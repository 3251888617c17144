"""The baseline: the placed models without sharing, priced per GPU-hour of the cheapest pool
that admits each and could hold one replica."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from planner.assembly.cost import baseline_cost_per_hour
from planner.demand.derive import derive
from planner.pipeline import SolverSettings, make_plan
from planner.registry.loader import load_registry
from planner.schemas import Pool
from tests.conftest import edit_yaml


def _pool(name: str, gpus_per_node: int, price_per_node_hour: float) -> Pool:
    return Pool.model_validate({"name": name, "gpu_type": "l4", "class": "dedicated",
                                "sharing": "exclusive", "instance_type": "g6.xlarge",
                                "gpus_per_node": gpus_per_node,
                                "price_per_node_hour": price_per_node_hour, "max_nodes": 4})


def _demand(pool: str, replicas: int, gpus_per_replica: int = 1):
    return SimpleNamespace(pool=pool, replicas=replicas, gpus_per_replica=gpus_per_replica)


def test_baseline_by_hand():
    pools = {p.name: p for p in [_pool("four-l4", 4, 4.6016), _pool("one-l4", 1, 0.8048),
                                 _pool("eight-h100", 8, 55.04)]}
    demands = [
        # 3 replicas at 4.6016 / 4 = 1.1504 per GPU-hour: 3.4512; 2 replicas at 0.8048: 1.6096
        [_demand("four-l4", 3), _demand("one-l4", 2)],
        # 1 replica of 2 GPUs at 55.04 / 8 = 6.88 per GPU-hour: 13.76
        [_demand("eight-h100", 1, 2)],
    ]
    assert baseline_cost_per_hour(pools, demands) == pytest.approx(1.6096 + 13.76)
    # 672 hours of February 2027: 15.3696 x 672 = 10,328.3712
    assert round(Decimal("15.3696") * 672, 2) == Decimal("10328.37")


def test_unplaced_models_are_left_out(registry: Path):
    """With one H100 node, a model that needs more H100s than it has stays out; the baseline
    counts the placed models only."""
    edit_yaml(registry / "cluster.yaml", lambda data: next(
        p for p in data["pools"] if p["name"] == "dedicated-h100").update(max_nodes=1))
    fleet = load_registry(registry)
    plan = make_plan(fleet, SolverSettings(method="greedy"))
    assert plan.summary.unplaced >= 1
    demands = derive(fleet)[0]
    pools = {p.name: p for p in fleet.cluster.pools}
    placed = [demands[m.name] for m in plan.models]
    unplaced = [demands[u.name] for u in plan.unplaced if demands[u.name]]
    assert unplaced, "an unplaced model that some pool could hold"
    assert plan.summary.baseline_cost_per_hour == pytest.approx(
        baseline_cost_per_hour(pools, placed), abs=1e-6)
    assert baseline_cost_per_hour(pools, placed + unplaced) > \
        plan.summary.baseline_cost_per_hour + 1
    assert plan.summary.baseline_cost_per_month == round(
        Decimal(repr(plan.summary.baseline_cost_per_hour)) * 730, 2)
