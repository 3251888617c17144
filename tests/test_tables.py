"""The terminal tables say what their labels say: replicas are replicas, not GPUs; memory per
replica is per replica; replicas moved against a base plan are listed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from planner.planfile import Plan, load_plan
from reports.summary import render_summary
from reports.tables import moved_replicas, plan_tables


@pytest.fixture(scope="module")
def demo_out(greedy_demo_out: Path) -> Path:
    return greedy_demo_out


@pytest.fixture(scope="module")
def plan(demo_out: Path) -> Plan:
    return load_plan(demo_out / "plan.yaml")


def test_pool_table_counts_replicas_not_gpus(plan: Plan):
    pools = plan_tables(plan)[0]
    replicas = [int(cell) for cell in pools.columns[5].cells]
    by_pool = {m.pool: 0 for m in plan.models}
    for model in plan.models:
        if model.cache is None:  # a cache's members run in its servers
            by_pool[model.pool] += model.replicas
    for pool in plan.pools:
        by_pool[pool.name] = by_pool.get(pool.name, 0) + sum(c.servers for c in pool.caches
                                                              if c.placed)
    assert replicas == [by_pool.get(p.name, 0) for p in plan.pools]
    # 49 pods, less the 5 lazily loaded members of the demo's cache, plus its one server
    assert sum(replicas) == plan.summary.replicas == 45
    multi = next(m for m in plan.models if m.gpus_per_replica > 1)
    row = [p.name for p in plan.pools].index(multi.pool)
    gpus_used, _ = str(list(pools.columns[4].cells)[row]).split("/")
    assert replicas[row] < int(gpus_used)


def test_summary_memory_per_replica_and_per_gpu(plan: Plan):
    multi = next(m for m in plan.models if m.gpus_per_replica > 1)
    [row] = [line for line in render_summary(plan).splitlines()
             if line.startswith(f"| {multi.name} |")]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[5] == f"{multi.memory_mib * multi.gpus_per_replica:,} MiB"
    assert cells[6] == f"{multi.memory_mib:,} MiB"


def _move_one(plan: Plan) -> tuple[Plan, str]:
    """The plan with one replica moved from the first node of its pool to the second."""
    data = plan.model_dump(mode="json", by_alias=True)
    pool = next(p for p in data["pools"] if len(p["nodes"]) > 1 and p["sharing"] != "mig"
                and not p["nodes"][0]["gpus"][0]["whole"])
    slot = pool["nodes"][0]["gpus"][0]["replicas"].pop()
    pool["nodes"][1]["gpus"][0]["replicas"].append(slot)
    return Plan.model_validate(data), slot["model"]


def test_moved_replicas_names_the_nodes(plan: Plan):
    moved, model = _move_one(plan)
    pool = next(p for p in plan.pools if p.name == plan.model(model).pool)  # type: ignore[union-attr]
    assert moved_replicas(plan, moved) == [(model, 1, [pool.nodes[0].name],
                                            [pool.nodes[1].name])]
    assert moved_replicas(plan, plan) == []


def test_plan_with_base_prints_the_moves(cli, demo_out: Path, tmp_path: Path, plan: Plan):
    moved, model = _move_one(plan)
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(moved.model_dump(mode="json", by_alias=True)))
    result = cli("plan", "--solver", "greedy", "--base", base, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    new = load_plan(tmp_path / "out" / "plan.yaml")
    printed = next(line for line in result.stdout.splitlines()
                   if "replicas moved against the base plan" in line)
    assert printed.split("│")[2].strip() == str(new.solver.moved_replicas)
    assert "Moved against the base plan" in result.stdout
    moves = moved_replicas(moved, new)
    assert sum(n for _, n, _, _ in moves) == new.solver.moved_replicas
    for name, count, _, _ in moves:
        assert any(line.split("│")[1].strip() == name and line.split("│")[2].strip() == str(count)
                   for line in result.stdout.splitlines() if line.count("│") == 5)
