"""Emptying the lightest bin: a local search for plain vector packing.

Packing k items into k - 1 fuller bins rarely succeeds in one step. This search instead keeps
a target, the lightest bin, and repeatedly lets CP-SAT redistribute the items of the target
and of a few other bins (the emptiest and some at random) among the same bins so that the
target ends strictly lighter. Each step is small (counts of item types per bin), and the
target only ever loses weight, so it drains until it is empty and one bin is gone; then the
next lightest becomes the target. The weight of a bin is its load summed over dimensions, each
as a share of capacity, which steers items into bins where every dimension has room.
"""

from __future__ import annotations

import random
from collections import Counter

from ortools.sat.python import cp_model

from solvers.clock import MODEL_TERM, charge, now
from solvers.sat import new_solver, run

Load = tuple[int, ...]
BIN_SCAN = 1e-6  # deterministic seconds per bin weighed and sorted in a step


def _weights(capacity: Load, sizes: list[Load]) -> list[int]:
    return [sum(s * 1000 // c for s, c in zip(size, capacity, strict=True) if c)
            for size in sizes]


def _drain(capacity: Load, sizes: list[Load], weights: list[int], bins: list[Counter],
           target: int, others: list[int], *, time_limit_s: float, seed: int) -> bool:
    """Move weight out of `target` into `others` (its items may swap with theirs); True when
    the target got lighter, with `bins` updated."""
    chosen = [target, *others]
    types = sorted({t for b in chosen for t in bins[b]})
    total: Counter[int] = Counter()
    for b in chosen:
        total.update(bins[b])
    model = cp_model.CpModel()
    count = {(t, b): model.new_int_var(0, total[t], "") for t in types for b in chosen}
    # Each count is a variable, a term of its type's sum and of each dimension's load, a
    # hint, and a value read back (a few terms' worth each, as measured).
    charge(MODEL_TERM * len(count) * (6 + len(capacity)))
    for t in types:
        model.add(sum(count[(t, b)] for b in chosen) == total[t])
    for b in chosen:
        for d, cap in enumerate(capacity):
            model.add(sum(sizes[t][d] * count[(t, b)] for t in types if sizes[t][d]) <= cap)
        for t in types:
            model.add_hint(count[(t, b)], bins[b][t])
    now = sum(weights[t] * n for t, n in bins[target].items())
    left = sum(weights[t] * count[(t, target)] for t in types)
    model.add(left <= now - 1)
    model.minimize(left)
    solver = new_solver(time_limit_s, seed)
    if run(solver, model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return False
    for b in chosen:
        bins[b] = Counter({t: solver.value(count[(t, b)]) for t in types
                           if solver.value(count[(t, b)])})
    return True


def empty_bins(capacity: Load, sizes: list[Load], packing: list[list[int]], *, goal: int,
               deadline: float, seed: int, window: int = 4,
               step_s: float = 0.1) -> list[list[int]]:
    """Fewer bins than `packing` (lists of item-type indexes) if the search finds them before
    `deadline`; stops at `goal` bins. Each step drains the target into `window` other bins
    within `step_s` (any strictly lighter target will do, so short steps pay off more than
    exact ones). Returns the best packing found."""
    rng = random.Random(seed)
    weights = _weights(capacity, sizes)
    bins = [Counter(b) for b in packing if b]
    best = [list(b.elements()) for b in bins]
    target, failures = None, 0
    while len(bins) > goal and now() < deadline - 0.01:
        load = [sum(weights[t] * n for t, n in b.items()) for b in bins]
        if target is None or failures > 3 * len(bins):
            lightest = sorted(range(len(bins)), key=lambda b: load[b])[:3]
            target, failures = rng.choice(lightest), 0
        rest = [b for b in range(len(bins)) if b != target]
        emptiest = sorted(rest, key=lambda b: load[b])[: window // 2]
        pool = [b for b in rest if b not in emptiest]
        others = emptiest + rng.sample(pool, min(len(pool), window - len(emptiest)))
        step = min(step_s, max(deadline - now(), 0.01))
        charge(BIN_SCAN * len(bins))
        if not _drain(capacity, sizes, weights, bins, target, others, time_limit_s=step,
                      seed=rng.randrange(1 << 30)):
            failures += 1
            continue
        if not bins[target]:
            del bins[target]
            target = None
            best = [list(b.elements()) for b in bins]
    return best
