"""The engine's progress steps: what a long solve shows while it works."""

from __future__ import annotations

import io

from rich.console import Console

from planner.demand.derive import derive
from planner.demand.to_engine import build_problem
from planner.registry.loader import load_registry
from solvers.engine import Step, solve


def test_steps_report_best_cost_and_bound_up_to_the_answer(registry):
    fleet = load_registry(registry)
    problem = build_problem(fleet, derive(fleet)[0])
    steps: list[Step] = []
    solution = solve(problem, time_limit_s=20, seed=1, workers=1, progress=steps.append)
    assert steps[0].phase == "greedy" and steps[0].best_cost is None
    assert any(s.phase.startswith("solving part 1 of ") for s in steps)
    costs = [s.best_cost for s in steps if s.best_cost is not None]
    assert costs == sorted(costs, reverse=True)  # the best so far never gets worse
    for step in steps:
        assert 0.0 <= step.time_spent <= 1.0
        if step.lower_bound is not None and step.best_cost is not None:
            assert step.lower_bound <= step.best_cost
    assert steps[-1].phase == "checking the answer"
    assert (steps[-1].best_cost, steps[-1].lower_bound) == (solution.cost, solution.lower_bound)


def test_the_bar_shows_phase_best_and_bound_in_currency(monkeypatch):
    from planner.cli import console
    from planner.cli.plan import _solve_progress, step_text

    step = Step("solving part 2 of 3", best_cost=2_198_512, lower_bound=2_113_378,
                time_spent=0.5)
    assert step_text(step, "USD") == ("solving: solving part 2 of 3; best 219.8512 USD/h, "
                                      "bound 211.3378 USD/h")
    assert step_text(Step("greedy"), "EUR") == "solving: greedy"
    screen = io.StringIO()
    monkeypatch.setattr(console, "err", Console(file=screen, force_terminal=True, width=150))
    with _solve_progress("USD") as show:
        show(step)
    assert "best 219.8512 USD/h, bound 211.3378 USD/h" in screen.getvalue()
