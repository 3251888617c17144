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
import solvers.pricing as pricing
from bench.instances import _single_pool
from solvers.clock import TABLE_CELL, WorkClock, using
from solvers.greedy import greedy


def _large_capacity(capacity: int, items: int, seed: int):
    rng = random.Random(seed)
    weights = Counter((rng.randint(capacity // 10, capacity // 2),) for _ in range(items))
    return _single_pool((capacity,), weights, items)


def test_pricing_tables_stay_within_the_budget(monkeypatch: pytest.MonkeyPatch):
    """Column generation on 300 items of a capacity of 150,000 (each pricing table 45 million
    cells) with one deterministic second: before, it swept 3.4 billion cells in it (148
    tables); now every cell is on the clock, so the cells swept fit the budget."""
    swept = Counter()
    price = pricing.knapsack

    def counted(capacity, weights, values, demand):
        swept["cells"] += (capacity + 1) * sum(
            min(n, capacity // w).bit_length()
            for w, n, v in zip(weights, demand, values, strict=True) if w and v > 0)
        swept["tables"] += 1
        return price(capacity, weights, values, demand)

    monkeypatch.setattr(pricing, "knapsack", counted)
    problem = _large_capacity(150_000, 300, 11)
    sizes = [g.options[0].size for g in problem.groups]
    demand = [g.options[0].count for g in problem.groups]
    start = [tuple(int(t == i) for t in range(len(sizes))) for i in range(len(sizes))]
    budget_s = 1.0
    with using(WorkClock()) as clock:
        columns = patterns.generate_columns((150_000,), sizes, demand, start, budget_s)
    assert swept["tables"] > 1  # the instance is priced by table, round after round
    assert swept["cells"] * TABLE_CELL <= budget_s
    assert clock.spent <= budget_s * 1.1
    assert columns.lower_bound <= greedy(problem, "first").cost
