"""The deterministic mode: counted work instead of seconds, so the same input and seed give the
same plan on any machine. Runs are separate processes with different hash seeds, so set and
dict orders that vary between processes would show up as a difference."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ortools.sat.python import cp_model

from planner.registry.locate import write_demo
from solvers.clock import (
    SAT_SECOND,
    SOLVE_CALL,
    SOLVE_TERM,
    WorkClock,
    charge,
    current,
    now,
    using,
)
from solvers.engine import solve
from solvers.problem import Group, Option, Pool, Problem
from solvers.sat import new_solver, run
from tests.conftest import ROOT

# One process plans a synthetic fleet on counted work and writes its plan file.
FLEET_PLAN = """
import sys
from pathlib import Path
from bench.synthetic import generate_fleet
from planner.pipeline import SolverSettings, make_plan
from planner.planfile import dump_plan
settings = SolverSettings(time_limit_s=1.0, seed=7, workers=2, deterministic=True)
Path(sys.argv[1]).write_text(dump_plan(make_plan(generate_fleet(300, 7), settings)))
"""


def _process(args: list[str], hash_seed: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)


def test_demo_plan_files_are_byte_identical(tmp_path: Path):
    registry = tmp_path / "registry"
    write_demo(registry)
    plans = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"out-{hash_seed}"
        result = _process(["-m", "planner", "plan", "--registry", str(registry), "--out",
                           str(out), "--seed", "3", "--workers", "2", "--deterministic"],
                          hash_seed)
        assert result.returncode == 0, result.stderr
        plans.append((out / "plan.yaml").read_bytes())
    assert plans[0] == plans[1]
    assert b"\n  deterministic: true\n" in plans[0]


def test_synthetic_fleet_plan_files_are_byte_identical(tmp_path: Path):
    plans = []
    for hash_seed in ("3", "4"):
        path = tmp_path / f"plan-{hash_seed}.yaml"
        result = _process(["-c", FLEET_PLAN, str(path)], hash_seed)
        assert result.returncode == 0, result.stderr
        plans.append(path.read_bytes())
    assert plans[0] == plans[1]
    assert b"registry: <generated fleet of 300>\n" in plans[0]


def _packing() -> Problem:
    pool = Pool("p", (100, 100), gpus_per_node=2, node_cost=3, max_nodes=20)
    # Greedy's cost is above the first lower bound here, so the search runs to prove it.
    groups = tuple(Group(f"m{i}", (Option("p", (8 * i % 45 + 22, 13 * i % 40 + 26),
                                          1 + i % 3),)) for i in range(14))
    return Problem(("memory", "compute"), (pool,), groups)


def test_workers_do_not_change_a_deterministic_solve():
    problem = _packing()
    one = solve(problem, time_limit_s=0.5, seed=2, workers=1, deterministic=True)
    two = solve(problem, time_limit_s=0.5, seed=2, workers=4, deterministic=True)
    assert one.placements == two.placements and one.seconds == two.seconds
    assert one.cost == one.lower_bound == 24
    # The seconds a deterministic solve reports are the work it counted, within its budget
    # and the margin of its last step.
    assert 0 < one.seconds <= 0.5 * 1.1


def test_work_clock_counts_cp_sat_and_charges():
    model = cp_model.CpModel()
    x = [model.new_int_var(0, 10, f"x{i}") for i in range(30)]
    model.add(sum(x) == 77)
    model.maximize(sum((i % 7) * v for i, v in enumerate(x)))
    with using(WorkClock()) as clock:
        assert current() is clock and now() == 0
        solver = new_solver(5.0, seed=1, workers=8)
        assert solver.parameters.num_workers == 1
        # 5 counted seconds are 5 / SAT_SECOND of CP-SAT's deterministic seconds.
        assert solver.parameters.max_deterministic_time == pytest.approx(5.0 / SAT_SECOND)
        assert solver.parameters.max_time_in_seconds > 1e9  # no wall-clock limit
        run(solver, model)
        # CP-SAT's deterministic time, and what the solve costs around its search: a fixed
        # cost and one per variable and constraint (30 variables, 1 constraint), all counted
        # times SAT_SECOND.
        around = SOLVE_CALL + SOLVE_TERM * 31
        assert now() == pytest.approx((around + solver.deterministic_time) * SAT_SECOND)
        assert now() > around * SAT_SECOND
        assert solver.parameters.max_deterministic_time == pytest.approx(5.0 / SAT_SECOND
                                                                         - around)
        spent = now()
        charge(0.25)
        assert now() == pytest.approx(spent + 0.25 * SAT_SECOND)
    assert not current().deterministic  # the wall clock again outside the block
