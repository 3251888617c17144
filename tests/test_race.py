"""Two searches of one packing side by side on the wall clock (`solvers.race`)."""

from __future__ import annotations

import os
import random
import time
from dataclasses import replace

import pytest

from scripts.zero_slack import cut_bin
from solvers import engine, race
from solvers.clock import WorkClock, now, using
from solvers.problem import Group, Option, Placement, Pool, Problem, Solution
from solvers.verify import violations

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the platform cannot fork")


def _never_done(answer) -> bool:
    return False


def test_the_rival_searches_in_another_process():
    seen: list = []

    def better(own, rival):
        seen.append((own, rival))
        return rival

    answer = race.race(lambda: ("own", os.getpid()), lambda: ("rival", os.getpid()),
                       deadline_s=time.perf_counter() + 60, done=_never_done, better=better)
    (own, rival), = seen
    assert own == ("own", os.getpid())
    assert rival[0] == "rival" and rival[1] != os.getpid()
    assert answer == rival


def test_an_answer_that_cannot_be_beaten_ends_the_other_search_at_once():
    def own() -> str:
        deadline = now() + 60
        while now() < deadline:
            time.sleep(0.005)
        # The wall clock has not reached the deadline: the rival's answer moved it.
        return "jumped" if time.perf_counter() < deadline else "timed out"

    kept: list = []
    race.race(own, lambda: "optimal", deadline_s=time.perf_counter() + 60,
              done=lambda answer: answer == "optimal",
              better=lambda own, rival: kept.append((own, rival)) or rival)
    assert kept == [("jumped", "optimal")]


def test_a_rival_that_fails_leaves_this_process_its_own_answer():
    def rival() -> str:
        raise RuntimeError("the rival fails")

    answer = race.race(lambda: "own", rival, deadline_s=time.perf_counter() + 60,
                       done=_never_done, better=lambda own, rival: rival)
    assert answer == "own"


def test_a_rival_that_does_not_answer_by_the_deadline_is_stopped(tmp_path):
    pid_file = tmp_path / "rival.pid"

    def rival() -> str:
        pid_file.write_text(str(os.getpid()))
        time.sleep(3600)
        return "rival"

    answer = race.race(lambda: "own", rival, deadline_s=time.perf_counter() + 3,
                       done=_never_done, better=lambda own, rival: rival)
    assert answer == "own"
    with pytest.raises(ChildProcessError):  # stopped and reaped
        os.waitpid(int(pid_file.read_text()), os.WNOHANG)


def test_only_the_wall_clock_with_two_workers_races():
    assert race.can_race(2) and not race.can_race(1)
    with using(WorkClock()):  # the counted clock: which process wins must not matter
        assert not race.can_race(2)


def _answer(status: str, cost: int, lower_bound: int) -> Solution:
    return Solution(status, cost, lower_bound, (Placement(f"m{cost}", 0, "p", 0, (0,)),))


def test_the_better_answer_keeps_the_higher_bound_of_the_two():
    own, rival = _answer("feasible", 5, 3), _answer("feasible", 4, 2)
    assert engine._better_of_two(own, rival) == _answer("feasible", 4, 3)
    # The rival's bound proves this process's packing optimal.
    assert engine._better_of_two(_answer("greedy", 4, 3), _answer("feasible", 5, 4)) \
        == _answer("optimal", 4, 4)
    assert engine._better_of_two(own, _answer("feasible", 5, 2)) == own  # a tie keeps its own
    assert engine._better_of_two(None, rival) == rival


# Sizes that greedy packs a bin over the bound, so the packing's search runs.
SIZES = [(3 * i) % 7 * 2 + 25 for i in range(40)]


def _packing(sizes: list[int], capacity: int) -> Problem:
    pool = Pool("p", (capacity,), gpus_per_node=1, node_cost=1, max_nodes=len(sizes))
    groups = tuple(Group(f"m{i}", (Option("p", (size,), 1),)) for i, size in enumerate(sizes))
    return Problem(("memory",), (pool,), groups, ())


def test_a_raced_packing_takes_the_bound_the_rival_proved(monkeypatch):
    problem = _packing(SIZES, 100)
    real, calls = engine._solve_as_patterns, []

    def unproven(problem: Problem, hint: Solution, *, time_limit_s: float, seed: int,
                 workers: int, rival: bool = False) -> Solution | None:
        calls.append((seed, workers, rival))  # the rival's calls stay in the rival
        found = real(problem, hint, time_limit_s=time_limit_s, seed=seed, workers=workers,
                     rival=rival)
        if not rival and found is not None:  # this process's own: its proof left out
            return replace(found, status="feasible", lower_bound=0)
        return found

    monkeypatch.setattr(engine, "_solve_as_patterns", unproven)
    solution = engine.solve(problem, time_limit_s=5, seed=3, workers=2)
    assert calls == [(3, 1, False)]
    assert violations(problem, solution) == []
    assert solution.status == "optimal" and solution.lower_bound == solution.cost


def test_the_counted_clock_never_forks(monkeypatch):
    def no_fork() -> int:
        raise AssertionError("forked on the counted clock")

    monkeypatch.setattr(os, "fork", no_fork)
    problem = _packing(SIZES, 100)
    solution = engine.solve(problem, time_limit_s=2, seed=0, workers=2, deterministic=True)
    assert violations(problem, solution) == []


def test_the_rival_leaves_the_fills_to_the_brim_to_the_search_it_races(monkeypatch):
    """30 bins of 1,000 cut in four pieces each (the optimum 30 by construction), the listing
    and the first local search stubbed out so that the phases after them run: the search's
    own fills bins to the brim, the rival leaves that to it and still ends at 30, proven."""
    rng = random.Random(0)
    problem = _packing([w for _ in range(30) for w in cut_bin(rng, 1000, 4)], 1000)
    monkeypatch.setattr(engine, "_list_tight",
                        lambda *args, **kwargs: (None, args[3], True))
    monkeypatch.setattr(engine, "_partial_search", lambda capacity, sizes, bins, *a, **k: bins)
    filled, real = [], engine._filled
    monkeypatch.setattr(engine, "_filled", lambda *a, **k: filled.append(1) or real(*a, **k))
    for rival in (False, True):
        filled.clear()
        with using(WorkClock()):
            hint = engine.greedy(problem, "first")
            found = engine._solve_as_patterns(problem, hint, time_limit_s=5, seed=1, workers=1,
                                              rival=rival)
        assert found is not None and violations(problem, found) == []
        assert (found.cost, found.status) == (30, "optimal")
        assert bool(filled) != rival
