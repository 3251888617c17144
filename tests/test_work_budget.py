"""The deterministic clock counts the work that takes the time: column generation's knapsack
tables (one-dimensional pricing, a sweep of every capacity value per piece) charge their cells,
so a budget of deterministic seconds bounds them. Before, on a large-capacity instance
(Gschwind and Irnich's csAA125_1, capacity 500,000) a 10 s budget ran about 24 s of CPU, of
which 8.9 s were 133 pricing tables (7.5 billion cells) charged nothing. The test counts the
work itself (cells), never the wall clock."""

from __future__ import annotations

import random
from collections import Counter

import pytest

import solvers.patterns as patterns
from bench.instances import _single_pool
from solvers.clock import TABLE_CELL
from solvers.engine import solve
from solvers.greedy import greedy
from solvers.verify import violations


def _large_capacity(capacity: int, items: int, seed: int):
    rng = random.Random(seed)
    weights = Counter((rng.randint(capacity // 10, capacity // 2),) for _ in range(items))
    return _single_pool((capacity,), weights, items)


def test_pricing_tables_stay_within_the_budget(monkeypatch: pytest.MonkeyPatch):
    """300 items of a capacity of 150,000: each pricing table has 45 million cells. One
    deterministic second allowed 3.4 billion cells before (148 tables); now every cell is on
    the clock, so the cells swept fit the budget."""
    swept = Counter()
    price = patterns._price_one_dimension

    def counted(capacity, weights, values, demand):
        swept["cells"] += (capacity + 1) * sum(
            min(n, capacity // w).bit_length()
            for w, n, v in zip(weights, demand, values, strict=True) if w and v > 0)
        swept["tables"] += 1
        return price(capacity, weights, values, demand)

    monkeypatch.setattr(patterns, "_price_one_dimension", counted)
    problem = _large_capacity(150_000, 300, 11)
    budget_s = 1.0
    solution = solve(problem, time_limit_s=budget_s, seed=0, deterministic=True)
    assert swept["tables"] > 0  # the instance is priced by table
    assert swept["cells"] * TABLE_CELL <= budget_s
    assert solution.seconds <= budget_s * 1.1
    assert violations(problem, solution) == []
    assert solution.lower_bound <= solution.cost <= greedy(problem, "first").cost
